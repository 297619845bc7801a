package web

import (
	"encoding/json"

	"github.com/statehub/statehub/hub"
)

// A WebSocket's pipeline: its reader applies one write after another without waiting for their
// fsyncs (hub.WriteOptions.Pending), so the writes of one socket share fsyncs, and an answer
// goroutine, started while answers wait, sends them in request order, each once its commit is
// durable. At most wsMaxPipeline answers wait: past that the reader stops reading the socket (TCP
// backpressure) until the oldest is sent. Requests other than writes wait until every earlier
// answer has been sent (drain), then run on the reader as before. A write that is durable at once
// (memory only) with none waiting before it is answered on the reader, which writes such answers
// itself once it has no request buffered (writeOwn): no goroutine between the request and its
// answer. The answer goroutine likewise writes the last answer waiting itself.

// wsMaxPipeline bounds the answers of one socket that wait for durability.
const wsMaxPipeline = 256

// wsPending is one request's answer in the pipeline: a (the answer) or err, shown once p is
// durable, or p's error (503 after a journal failure) instead.
type wsPending struct {
	id  json.RawMessage
	p   hub.Pending
	a   wsAnswer
	err error
}

// reply answers it after every earlier answer: at once on the reader when none waits and it has
// nothing to wait for, else through the answer goroutine. Only the reader calls it.
func (c *wsConn) reply(it wsPending) {
	c.pmu.Lock()
	direct := !c.answering && it.p.Ready()
	c.pmu.Unlock()
	if direct {
		c.show(&it, nil, true) // the reader writes it (writeOwn)
		return
	}
	c.slots <- struct{}{} // blocks while wsMaxPipeline answers wait
	c.pmu.Lock()
	c.pend = append(c.pend, it)
	if !c.answering {
		c.answering = true
		c.wg.Add(1)
		go c.answerLoop()
	}
	c.pmu.Unlock()
}

// answerLoop sends the waiting answers in order and returns once none is left. Every answer's wait
// runs, even when the connection is ending, so every commit is published. The last answer waiting
// it writes itself, as the reader does (writeOwn): a lone write's answer has no writer's goroutine
// between its commit and the socket, and answers that wait together still leave in one write.
func (c *wsConn) answerLoop() {
	defer c.wg.Done()
	for {
		c.pmu.Lock()
		if len(c.pend) == 0 {
			c.answering = false
			if c.drained != nil {
				close(c.drained)
				c.drained = nil
			}
			c.pmu.Unlock()
			return
		}
		it := c.pend[0]
		c.pend[0] = wsPending{}
		c.pend = c.pend[1:]
		last := len(c.pend) == 0
		c.pmu.Unlock()
		c.show(&it, it.p.Wait(), last)
		if last {
			c.writeOwn()
		}
		<-c.slots
	}
}

// show queues its answer once its wait has returned err: the answer, it.err, or err (503 after a
// journal failure). With own, the caller writes it itself (writeOwn): its queueing does not start
// the writer.
func (c *wsConn) show(it *wsPending, err error, own bool) {
	if own {
		c.outMu.Lock()
		c.deferred = true
		c.outMu.Unlock()
		defer func() {
			c.outMu.Lock()
			c.deferred = false
			c.outMu.Unlock()
		}()
	}
	switch {
	case err != nil:
		c.fail(it.id, err)
	case it.err != nil:
		c.fail(it.id, it.err)
	default:
		c.answer(it.a)
	}
}

// drain returns once every answer queued so far has been sent. Only the reader calls it.
func (c *wsConn) drain() {
	c.pmu.Lock()
	if !c.answering {
		c.pmu.Unlock()
		return
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	ch := c.drained
	c.pmu.Unlock()
	<-ch
}

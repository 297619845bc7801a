package web

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeWatch notices when the client of a stream taken over from net/http closes or resets its
// connection, with no goroutine per connection: one goroutine waits in epoll for all of them,
// for the peer's FIN (EPOLLRDHUP), a reset or an error. It is what lets an idle stream hold no
// goroutine (TestSSEIdleStreamsHaveNoGoroutine) and still release its subscription as soon as its
// client leaves (TestSSEClientGone).
type closeWatch struct {
	epfd int
	mu   sync.Mutex
	next int32
	gone map[int32]func()
}

var (
	watchOnce sync.Once
	watcher   *closeWatch // nil when epoll cannot be had: keep-alives find gone clients then
)

// watchClose calls gone, once, in the watch's goroutine, when conn's peer closes it, resets it
// or it fails. It must not block. unwatch must be called before conn is closed.
func watchClose(conn net.Conn, gone func()) (unwatch func()) {
	watchOnce.Do(startCloseWatch)
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = tc.NetConn() // a TLS connection's TCP connection
	}
	sc, ok := conn.(syscall.Conn)
	if watcher == nil || !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	w := watcher
	w.mu.Lock()
	w.next++
	id := w.next
	w.gone[id] = gone
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLET, Fd: id}
	var cerr error
	if err := raw.Control(func(fd uintptr) { cerr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || cerr != nil {
		w.forget(id)
		return func() {}
	}
	return func() {
		raw.Control(func(fd uintptr) { unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
		w.forget(id)
	}
}

func startCloseWatch() {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	watcher = &closeWatch{epfd: epfd, gone: map[int32]func(){}}
	go watcher.loop()
}

func (w *closeWatch) forget(id int32) {
	w.mu.Lock()
	delete(w.gone, id)
	w.mu.Unlock()
}

// loop waits for the watched connections' events for the life of the process.
func (w *closeWatch) loop() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // streams find gone clients at their keep-alives
		}
		for _, ev := range events[:n] {
			w.mu.Lock()
			gone := w.gone[ev.Fd]
			delete(w.gone, ev.Fd)
			w.mu.Unlock()
			if gone != nil {
				gone()
			}
		}
	}
}

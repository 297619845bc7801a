// Package cutproxy is a TCP proxy for tests of clients that must survive lost connections: a
// test puts it between a client and a server, then cuts every connection, takes the server away
// (new connections are accepted and closed at once) and back, or points it at another server (a
// restarted one).
//
// Concurrency: every method is safe for concurrent use. Each proxied connection has two copying
// goroutines, which end when either side closes or the proxy cuts it.
package cutproxy

import (
	"io"
	"net"
	"sync"
)

// Proxy forwards connections accepted on a loopback port to a backend address.
type Proxy struct {
	ln      net.Listener
	mu      sync.Mutex
	backend string
	down    bool
	conns   map[net.Conn]struct{} // both sides of every proxied connection
}

// New starts a proxy to backend (host:port) on a free loopback port. Close stops it.
func New(backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// URL is the proxy's address as an http:// URL.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops accepting and cuts every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.SetDown(true)
	return err
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		backend := p.backend
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c, backend)
	}
}

func (p *Proxy) pipe(c net.Conn, backend string) {
	b, err := net.Dial("tcp", backend)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if _, ok := p.conns[c]; !ok { // cut meanwhile
		p.mu.Unlock()
		b.Close()
		return
	}
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	p.drop(c)
	p.drop(b)
}

func (p *Proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Cut closes every connection through the proxy; new ones are served.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// SetDown(true) cuts every connection and, until SetDown(false), closes new ones as soon as they
// are accepted: a server that is away.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}

// SetBackend sends later connections to addr.
func (p *Proxy) SetBackend(addr string) {
	p.mu.Lock()
	p.backend = addr
	p.mu.Unlock()
}

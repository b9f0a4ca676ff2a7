package proxy

import (
	"container/list"
	"errors"
	"net"
	"net/http"
	"sync"
)

// ConnLimiter bounds the API listener's client connections. Each accepted
// connection holds a slot until it closes. When every slot is taken, the
// connection that has been idle longest (a keep-alive connection between
// requests) is closed to make room, so that a flood of idle connections
// cannot lock honest clients out; when none is idle, Accept waits for a
// slot, one freed by a connection that closes or goes idle, and new clients
// wait in the kernel's accept queue rather than cost keygate memory and
// goroutines. Connections in the middle of a request are
// never closed for room: the server's read and write timeouts bound them.
//
// Use it as both the listener wrapper and the server's ConnState hook:
//
//	cl := NewConnLimiter(4096)
//	srv := &http.Server{ConnState: cl.ConnState}
//	srv.Serve(ContractListener(cl.Listener(ln)))
//
// Closing an idle connection can race with a request the client is just
// sending on it, as the server's own IdleTimeout does: that request fails
// on the client and is safe to retry, since keygate never read it.
type ConnLimiter struct {
	slots chan struct{}

	mu   sync.Mutex
	idle *list.List                 // idle connections, oldest first
	pos  map[net.Conn]*list.Element // where each idle connection is in idle
	// idled wakes an Accept waiting for a slot when a connection goes idle
	idled chan struct{}

	onWait func() // called when Accept starts waiting for a slot; tests only
}

// NewConnLimiter returns a limiter of max connections; max must be > 0.
func NewConnLimiter(max int) (*ConnLimiter, error) {
	if max <= 0 {
		return nil, errors.New("proxy: connection limit must be > 0")
	}
	return &ConnLimiter{slots: make(chan struct{}, max), idle: list.New(), pos: map[net.Conn]*list.Element{}, idled: make(chan struct{}, 1)}, nil
}

// Listener wraps l so that it holds at most the limiter's number of
// connections open at once.
func (c *ConnLimiter) Listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, c: c, done: make(chan struct{})}
}

// Open returns the number of connections holding a slot.
func (c *ConnLimiter) Open() int { return len(c.slots) }

// ConnState is the http.Server hook that tells the limiter which
// connections are idle.
func (c *ConnLimiter) ConnState(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.pos[conn]; ok {
		c.idle.Remove(e)
		delete(c.pos, conn)
	}
	if s == http.StateIdle {
		c.pos[conn] = c.idle.PushBack(conn)
		select {
		case c.idled <- struct{}{}:
		default:
		}
	}
}

// evictIdle closes the connection idle longest and reports whether there
// was one. Its slot is free once Close returns.
func (c *ConnLimiter) evictIdle() bool {
	c.mu.Lock()
	e := c.idle.Front()
	if e == nil {
		c.mu.Unlock()
		return false
	}
	conn := c.idle.Remove(e).(net.Conn)
	delete(c.pos, conn)
	c.mu.Unlock()
	_ = conn.Close()
	return true
}

type limitListener struct {
	net.Listener
	c         *ConnLimiter
	done      chan struct{}
	closeOnce sync.Once
}

// Accept accepts the next connection, then takes a slot for it: a free
// one, else one freed by closing the connection idle longest, else the
// first one freed, by a connection closing or going idle. The connection
// waits unanswered meanwhile, as do those behind it in the kernel's queue.
func (l *limitListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		select {
		case l.c.slots <- struct{}{}:
			return &limitConn{Conn: conn, release: l.release}, nil
		default:
		}
		if l.c.evictIdle() {
			continue
		}
		if !waited && l.c.onWait != nil {
			l.c.onWait()
		}
		waited = true
		select {
		case l.c.slots <- struct{}{}:
			return &limitConn{Conn: conn, release: l.release}, nil
		case <-l.c.idled: // a connection went idle: close it for room
		case <-l.done:
			conn.Close()
			return nil, net.ErrClosed
		}
	}
}

func (l *limitListener) release() { <-l.c.slots }

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when it is first closed.
type limitConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

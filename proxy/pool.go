package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// connPool holds the connections to one upstream (scheme and host): at most
// upstreamConns open, the idle ones in a stack so the most recently used
// goes out first and the others age out.
type connPool struct {
	t      *UpstreamTransport
	scheme string
	host   string      // as in the URL
	addr   string      // host:port to dial
	tls    *tls.Config // nil for http

	mu      sync.Mutex
	open    int // connections open or being dialed
	idle    []*pconn
	waiters []chan *pconn // requests waiting for a connection, first first
	watch   *time.Timer   // runs watchIdle while connections are idle
	armed   bool
	armedAt time.Time
}

// errPoolWait is returned when no connection was free in time.
var errPoolWait = errors.New("proxy: no upstream connection free in time")

// get returns an idle connection young enough to reuse, a new one while
// fewer than upstreamConns are open, or waits until deadline for one.
// reused reports a pooled connection.
func (p *connPool) get(ctx context.Context, deadline time.Time) (pc *pconn, err error) {
	p.mu.Lock()
	pc, stale := p.popIdle()
	if pc == nil && p.open < upstreamConns {
		p.open++
		p.mu.Unlock()
		closeAll(stale)
		return p.dial(ctx, deadline)
	}
	var wait chan *pconn
	if pc == nil {
		wait = make(chan *pconn, 1)
		p.waiters = append(p.waiters, wait)
	}
	p.mu.Unlock()
	closeAll(stale)
	if pc != nil {
		return pc, nil
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case pc = <-wait:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errPoolWait
	}
	if err != nil {
		p.mu.Lock()
		if i := slices.Index(p.waiters, wait); i >= 0 {
			p.waiters = slices.Delete(p.waiters, i, i+1)
			p.mu.Unlock()
			return nil, err
		}
		p.mu.Unlock()
		// handed a connection or a slot just as the wait ended: pass it on
		if pc = <-wait; pc != nil {
			p.put(pc)
		} else {
			p.release()
		}
		return nil, err
	}
	if pc == nil { // a slot, not a connection
		return p.dial(ctx, deadline)
	}
	return pc, nil
}

// popIdle takes the most recently used idle connection that may still be
// reused; older ones are taken out of the pool and returned as stale, for
// the caller to close outside the lock. p.mu is held.
func (p *connPool) popIdle() (pc *pconn, stale []*pconn) {
	now := p.t.now()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(c.idleAt) < p.t.retireAfter(c.up) {
			return c, stale
		}
		// idle past what the backend allows; the ones below waited longer
		p.t.retired.Add(1)
		p.open--
		stale = append(stale, c)
	}
	return nil, stale
}

func closeAll(cs []*pconn) {
	for _, c := range cs {
		c.c.Close()
	}
}

// dial opens a connection in a slot already counted in p.open, within the
// dial timeout, the TLS handshake timeout and deadline.
func (p *connPool) dial(ctx context.Context, deadline time.Time) (*pconn, error) {
	pc, err := p.connect(ctx, deadline)
	if err != nil {
		p.release()
		return nil, err
	}
	return pc, nil
}

func (p *connPool) connect(ctx context.Context, deadline time.Time) (*pconn, error) {
	step := min(p.t.timeout, 5*time.Second)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	d := net.Dialer{Timeout: step, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(dctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	up := p.t.wrap(raw)
	var c net.Conn = up
	if p.tls != nil {
		up.records = &recordScan{}
		tc := tls.Client(up, p.tls)
		hctx, cancel := context.WithTimeout(dctx, step)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			up.Close()
			return nil, err
		}
		if proto := tc.ConnectionState().NegotiatedProtocol; proto != "" && proto != "http/1.1" {
			up.Close()
			return nil, fmt.Errorf("proxy: upstream negotiated %q, want http/1.1", proto)
		}
		c = tc
	}
	pc := &pconn{pool: p, up: up, c: c}
	pc.tls, _ = c.(*tls.Conn)
	pc.lim.r = c
	pc.br = bufio.NewReaderSize(&pc.lim, 4<<10)
	pc.abort = func() { _ = c.SetDeadline(aLongTimeAgo) }
	return pc, nil
}

// put hands pc to the longest waiting request, or keeps it idle.
func (p *connPool) put(pc *pconn) {
	now := p.t.now()
	pc.idleAt, pc.polled, pc.pollStep = now, 0, minLearned
	pc.pollAt = now.Add(pc.pollStep)
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.mu.Unlock()
		w <- pc
		return
	}
	p.idle = append(p.idle, pc)
	p.arm(pc.pollAt)
	p.mu.Unlock()
}

// arm makes the watch run at the latest at. p.mu is held.
func (p *connPool) arm(at time.Time) {
	if p.armed && !at.Before(p.armedAt) {
		return
	}
	p.armed, p.armedAt = true, at
	d := max(at.Sub(p.t.now()), time.Millisecond)
	if p.watch == nil {
		p.watch = time.AfterFunc(d, p.watchIdle)
	} else {
		p.watch.Reset(d)
	}
}

// maxPollStep bounds the time between two looks at an idle connection.
const maxPollStep = time.Second

// watchIdle looks at the idle connections no request came for. One idle
// past what the backend allows is closed. One the backend closed, or sent
// anything on unasked, is closed too, and its idle time so far teaches the
// transport the backend's idle timeout: the time of the last look that
// found it open, a lower bound, so the lesson never retires connections too
// late. Looks come at 10, 20, 40 ms... and then every second after a
// connection went idle: a few system calls for a connection idle for
// seconds, none for a busy one.
func (p *connPool) watchIdle() {
	now := p.t.now()
	p.mu.Lock()
	var stale []*pconn
	keep := p.idle[:0]
	var next time.Time
	for _, c := range p.idle {
		age := now.Sub(c.idleAt)
		limit := p.t.retireAfter(c.up)
		if age >= limit {
			stale = append(stale, c)
			continue
		}
		if !now.Before(c.pollAt) {
			if c.up.peerClosed() {
				if c.polled >= minLearned {
					p.t.learn(c.polled)
				}
				stale = append(stale, c)
				continue
			}
			c.polled, c.pollStep = age, min(c.pollStep*2, maxPollStep)
			c.pollAt = now.Add(c.pollStep)
		}
		keep = append(keep, c)
		due := c.pollAt
		if end := c.idleAt.Add(limit); end.Before(due) {
			due = end
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	p.open -= len(stale)
	p.t.retired.Add(uint64(len(stale)))
	clear(p.idle[len(keep):])
	p.idle = keep
	p.armed = false
	if !next.IsZero() {
		p.arm(next)
	}
	p.mu.Unlock()
	closeAll(stale)
}

// discard closes pc and frees its slot.
func (p *connPool) discard(pc *pconn) {
	pc.c.Close()
	p.release()
}

// release frees a slot: the longest waiting request gets it to dial.
func (p *connPool) release() {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.mu.Unlock()
		w <- nil
		return
	}
	p.open--
	p.mu.Unlock()
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	stale := p.idle
	p.open -= len(stale)
	p.idle = nil
	p.mu.Unlock()
	closeAll(stale)
}

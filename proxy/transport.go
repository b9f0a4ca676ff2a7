package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Backends close idle keep-alive connections on their own schedule (Node.js
// after 5 s, gunicorn after 2 s). When one does so just as keygate reuses
// the connection, the request dies although the backend never read it, and
// the client would get a 500. UpstreamTransport keeps that from happening
// in two ways, and never by sending a request twice:
//
//   - It retires a pooled connection before the backend would close it: one
//     idle longer than TransportOptions.IdleTimeout, than 3/4 of the
//     backend's own `Keep-Alive: timeout=N` hint, or than 3/4 of the idle
//     time after which the backend was last seen closing a connection, or
//     dropping a request sent on a connection idle that long (as load
//     balancers that forget idle flows without a word do; that one request
//     is lost, the next ones are not). Idle connections are looked at now
//     and then (connPool.watchIdle) without a goroutine per connection;
//     one the backend closed teaches the timeout.
//   - Just before the first byte of a request goes on a reused connection,
//     it asks the kernel whether the backend has already closed it (its FIN
//     or RST is queued) or sent anything unasked; such a connection is not
//     written to either.
//
// A request refused that way provably never left keygate: not one byte of
// it was written. Only such a request is sent again, on another connection.
// A request of which any byte was written is never replayed, whatever the
// error: the backend may have read it.

// defaultUpstreamIdle is TransportOptions.IdleTimeout's default.
const defaultUpstreamIdle = 30 * time.Second

// minLearned is the shortest idle close keygate learns from: shorter ones
// are answers cut short or backends that crashed mid-request, not idle
// timeouts.
const minLearned = 10 * time.Millisecond

// maxSendAttempts bounds the connections a request may be refused on
// before it is sent (each refusal also sweeps the idle pool).
const maxSendAttempts = 4

// errNotSent marks a write refused before any byte of a request was sent.
var errNotSent = errors.New("proxy: upstream connection retired before the request was sent")

// TransportOptions configures NewUpstreamTransport. The zero value uses the
// defaults.
type TransportOptions struct {
	// Timeout bounds an exchange up to the answer's header (waiting for a
	// pooled connection, the dial and the TLS handshake, at most 5 s each,
	// included), and the body too when the request's context has no
	// deadline; 0 means 10s.
	Timeout time.Duration
	// CAPEM holds PEM certificates trusted for an https upstream besides the
	// system roots; nil means the system roots only.
	CAPEM []byte
	// IdleTimeout retires a pooled connection idle this long; set it below the
	// backend's keep-alive timeout. 0 means 30s. Shorter limits the backend
	// announces or shows apply too.
	IdleTimeout time.Duration
}

// UpstreamTransport is keygate's upstream client, also usable as an
// http.RoundTripper: a lean HTTP/1.1 client (HTTP/2 is never used, also
// over TLS, where it offers ALPN "http/1.1" only) whose exchanges run in
// the caller's goroutine on a pool of at most 256 connections per upstream;
// past that, requests wait for a connection within the timeout. Pooled
// connections are retired before the backend closes them, and a request is
// sent again only when none of it was sent. Use NewUpstreamTransport; the
// zero value is not usable.
type UpstreamTransport struct {
	timeout time.Duration
	tls     *tls.Config // base for https upstreams: roots, TLS 1.2+, http/1.1
	idle    time.Duration
	learned atomic.Int64 // ns: idle time after which the backend closes; 0 unknown
	learnAt atomic.Int64 // unix ns of the last observation behind learned
	now     func() time.Time

	mu    sync.Mutex
	pools map[string]*connPool // by scheme and host
	last  atomic.Pointer[connPool]

	replays atomic.Uint64 // requests sent again: none of them had been written
	retired atomic.Uint64 // pooled connections not reused: too old or closed
}

// NewUpstreamTransport returns the upstream transport configured by o.
func NewUpstreamTransport(o TransportOptions) *UpstreamTransport {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultUpstreamIdle
	}
	return &UpstreamTransport{
		timeout: o.Timeout,
		tls:     &tls.Config{RootCAs: rootsWith(o.CAPEM), MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		idle:    o.IdleTimeout,
		now:     time.Now,
		pools:   map[string]*connPool{},
	}
}

// CloseIdleConnections closes the pooled connections.
func (t *UpstreamTransport) CloseIdleConnections() {
	t.mu.Lock()
	pools := make([]*connPool, 0, len(t.pools))
	for _, p := range t.pools {
		pools = append(pools, p)
	}
	t.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// maxRoundTripBody bounds the request bodies RoundTrip reads to send.
const maxRoundTripBody = 16 << 20

// RoundTrip sends r with the lean client and returns its answer, whose body
// must be read to its end or closed. The body of r is read whole first (at
// most 16 MiB); Host, framing and connection headers in r.Header are
// refused (the client writes its own), and so is anything holding a control
// byte.
func (t *UpstreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := readAll(r.Body, maxRoundTripBody+1, r.ContentLength)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > maxRoundTripBody || r.ContentLength > 0 && int64(len(b)) != r.ContentLength {
			return nil, fmt.Errorf("%w: body length does not match ContentLength or is over %d bytes", errBadRequest, maxRoundTripBody)
		}
		body = b
	}
	if r.URL == nil || (r.URL.Scheme != "http" && r.URL.Scheme != "https") || r.URL.Host == "" {
		return nil, fmt.Errorf("%w: URL must be http or https with a host", errBadRequest)
	}
	o := &outRequest{
		method: cmp.Or(r.Method, http.MethodGet),
		scheme: r.URL.Scheme,
		addr:   r.URL.Host,
		host:   cmp.Or(r.Host, r.URL.Host),
		path:   cmp.Or(r.URL.EscapedPath(), "/"),
		query:  r.URL.RawQuery,
		header: r.Header,
		body:   body,
		close:  r.Close,
	}
	resp, err := t.send(r.Context(), o)
	if err != nil {
		return nil, err
	}
	resp.Request = r
	return resp, nil
}

// send writes o on a pooled connection and reads the answer's head; the
// answer's body holds the connection until it is read to its end or closed.
// A request is sent again, on another connection, only when not one byte
// of it was written (the connection was retired at the last moment), at
// most maxSendAttempts times; a request of which any byte was written is
// never replayed, whatever the error: the backend may have read it.
func (t *UpstreamTransport) send(ctx context.Context, o *outRequest) (*http.Response, error) {
	buf := wireBufs.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 64<<10 {
			wireBufs.Put(buf)
		}
	}()
	wire, err := appendRequest((*buf)[:0], o)
	*buf = wire[:0]
	if err != nil {
		return nil, err
	}
	p, err := t.pool(o.scheme, o.addr)
	if err != nil {
		return nil, err
	}
	head := t.now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(head) {
		head = d
	}
	for attempt := 1; ; attempt++ {
		pc, err := p.get(ctx, head)
		if err != nil {
			return nil, err
		}
		before := pc.up.written.Load()
		resp, err := pc.exchange(ctx, wire, o.method, head, o.close)
		if err == nil {
			return resp, nil
		}
		p.discard(pc)
		// Not one byte of the request reached the socket: the backend
		// cannot have read it, whichever side gave up on the connection.
		// (Past the deadline nothing is tried again: there is no time.)
		unsent := pc.up.written.Load() == before && !errors.Is(err, os.ErrDeadlineExceeded)
		if unsent && pc.up.gone && pc.polled >= minLearned {
			// the backend closed it while idle, after the last look that
			// found it open: a lower bound of its idle timeout
			t.learn(pc.polled)
		}
		if !unsent || attempt == maxSendAttempts || ctx.Err() != nil {
			return nil, err
		}
		// The pool may hold more connections as old or as dead: sweep it
		// rather than be refused by each in turn.
		p.closeIdle()
		t.replays.Add(1)
	}
}

// pool returns the connection pool of an upstream.
func (t *UpstreamTransport) pool(scheme, host string) (*connPool, error) {
	if p := t.last.Load(); p != nil && p.scheme == scheme && p.host == host {
		return p, nil // keygate has one upstream: no lock, no key to build
	}
	key := scheme + "://" + host
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pools[key]; p != nil {
		t.last.Store(p)
		return p, nil
	}
	u := url.URL{Host: host}
	name, port := u.Hostname(), u.Port()
	if name == "" {
		return nil, fmt.Errorf("%w: invalid upstream host", errBadRequest)
	}
	p := &connPool{t: t, scheme: scheme, host: host}
	switch scheme {
	case "http":
		p.addr = net.JoinHostPort(name, cmp.Or(port, "80"))
	case "https":
		p.addr = net.JoinHostPort(name, cmp.Or(port, "443"))
		p.tls = t.tls.Clone()
		p.tls.ServerName = name
	default:
		return nil, fmt.Errorf("%w: scheme %q", errBadRequest, scheme)
	}
	t.pools[key] = p
	t.last.Store(p)
	return p, nil
}

// rootsWith returns the system roots plus the PEM certificates in caPEM, or
// nil (the system roots, as crypto/tls loads them) when caPEM is empty.
func rootsWith(caPEM []byte) *x509.CertPool {
	if len(caPEM) == 0 {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(caPEM)
	return pool
}

// retireAfter is how long conn may stay idle and still be reused.
func (t *UpstreamTransport) retireAfter(c *upConn) time.Duration {
	d := t.idle
	if h := time.Duration(c.hinted.Load()); h > 0 {
		d = min(d, h*3/4)
	}
	if l := t.learnedNow(); l > 0 {
		d = min(d, l*3/4)
	}
	return d
}

// learnTTL is how long a learned idle timeout holds without a new
// observation: one early close (a backend restarting drops connections
// whatever their idle time) must not cost keep-alive for good.
const learnTTL = 10 * time.Minute

// learnedNow returns the learned idle timeout, or 0 when there is none or
// it is older than learnTTL.
func (t *UpstreamTransport) learnedNow() time.Duration {
	l := time.Duration(t.learned.Load())
	if l == 0 || t.now().UnixNano()-t.learnAt.Load() > int64(learnTTL) {
		return 0
	}
	return l
}

// learn records that the backend closed a connection idle for d: the
// shortest such time counts at once, longer ones (a backend restarted with
// a longer timeout) only slowly, and all of it is forgotten learnTTL after
// the last observation.
func (t *UpstreamTransport) learn(d time.Duration) {
	for {
		old := t.learned.Load()
		next := int64(d)
		if cur := int64(t.learnedNow()); cur > 0 && next > cur {
			next = cur + (next-cur)/8
		}
		if t.learned.CompareAndSwap(old, next) {
			t.learnAt.Store(t.now().UnixNano())
			return
		}
	}
}

func (t *UpstreamTransport) wrap(c net.Conn) *upConn {
	u := &upConn{Conn: c, t: t}
	if sc, ok := c.(syscall.Conn); ok {
		if u.raw, _ = sc.SyscallConn(); u.raw != nil {
			u.peek = u.peekFunc()
		}
	}
	return u
}

// upConn is an upstream connection that knows when it went idle, what the
// backend announced, how many bytes were written on it, and whether it
// refuses a new request's write when it is too old or already closed by the
// backend.
type upConn struct {
	net.Conn
	t   *UpstreamTransport
	raw syscall.RawConn // nil when the kernel cannot be asked
	// peek, run by raw.Control, sets gone when the backend's FIN or RST, or
	// any byte, is queued; nil where the kernel cannot be asked. Only the
	// connection's user (an exchange, or the pool's watch while it is
	// idle) runs it, one at a time.
	peek    func(fd uintptr)
	gone    bool
	peekBuf [1]byte

	// records, for a connection carrying TLS, follows the record framing
	// of what was read (pconn.drained); nil otherwise. Only the
	// connection's user reads.
	records *recordScan

	written atomic.Int64
	hinted  atomic.Int64 // ns from Keep-Alive: timeout=N; 0 none
	closed  atomic.Bool  // closed by keygate

	mu        sync.Mutex
	lastWrite time.Time
	lastRead  time.Time // when the last answer bytes arrived
}

func (c *upConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	now := c.t.now()
	reused := !c.lastRead.IsZero() && !c.lastRead.Before(c.lastWrite) // a new request after an answer
	idle := now.Sub(c.lastRead)
	c.mu.Unlock()
	if reused && (idle >= c.t.retireAfter(c) || c.peerClosed()) {
		c.t.retired.Add(1)
		return 0, errNotSent
	}
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	c.mu.Lock()
	c.lastWrite = now
	c.mu.Unlock()
	return n, err
}

func (c *upConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.records != nil {
		c.records.feed(p[:n])
	}
	now := c.t.now()
	c.mu.Lock()
	var idle time.Duration
	if n == 0 && err != nil && !c.lastRead.IsZero() {
		if c.lastRead.Before(c.lastWrite) {
			// A request on a reused connection got no answer at all: the
			// backend (or a load balancer that drops idle flows without a
			// word) had given up on it after at most this long.
			idle = c.lastWrite.Sub(c.lastRead)
		} else {
			idle = now.Sub(c.lastRead) // closed while idle
		}
	}
	if n > 0 {
		c.lastRead = now
	}
	c.mu.Unlock()
	if idle >= minLearned && !c.closed.Load() && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		c.t.learn(idle)
	}
	return n, err
}

func (c *upConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// hint records a `Keep-Alive: timeout=N` announcement.
func (c *upConn) hint(v string) {
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 && n <= 3600 {
			c.hinted.Store(int64(time.Duration(n) * time.Second))
		}
	}
}

// peerClosed reports whether the backend's FIN or RST is already queued on
// the connection, without reading anything.
func (c *upConn) peerClosed() bool {
	if c.peek == nil {
		return false
	}
	c.gone = false
	if err := c.raw.Control(c.peek); err != nil {
		return false
	}
	return c.gone
}

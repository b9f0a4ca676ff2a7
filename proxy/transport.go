package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
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
//     is lost, the next ones are not).
//   - Just before the first byte of a request goes on a reused connection,
//     it asks the kernel whether the backend has already closed it (its FIN
//     or RST is queued); such a connection is not written to either.
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
	// Timeout bounds the wait for the upstream's answer headers, the dial and
	// the TLS handshake (at most 5 s each); 0 means 10s.
	Timeout time.Duration
	// CAPEM holds PEM certificates trusted for an https upstream besides the
	// system roots; nil means the system roots only.
	CAPEM []byte
	// IdleTimeout retires a pooled connection idle this long; set it below the
	// backend's keep-alive timeout. 0 means 30s. Shorter limits the backend
	// announces or shows apply too.
	IdleTimeout time.Duration
}

// UpstreamTransport is keygate's upstream http.RoundTripper: an
// http.Transport whose pooled connections are retired before the backend
// closes them, and which resends a request only when none of it was sent.
// Use NewUpstreamTransport; the zero value is not usable.
type UpstreamTransport struct {
	base    *http.Transport
	idle    time.Duration
	learned atomic.Int64 // ns: idle time after which the backend closes; 0 unknown
	learnAt atomic.Int64 // unix ns of the last observation behind learned
	now     func() time.Time

	replays atomic.Uint64 // requests sent again: none of them had been written
	retired atomic.Uint64 // writes refused on connections too old or closed
}

// NewUpstreamTransport returns the upstream transport configured by o.
func NewUpstreamTransport(o TransportOptions) *UpstreamTransport {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultUpstreamIdle
	}
	t := &UpstreamTransport{idle: o.IdleTimeout, now: time.Now}
	t.base = newHTTPTransport(o.Timeout, o.CAPEM)
	t.base.IdleConnTimeout = o.IdleTimeout
	dialer := &net.Dialer{Timeout: min(o.Timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	t.base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return t.wrap(c), nil
	}
	return t
}

// CloseIdleConnections closes the pooled connections.
func (t *UpstreamTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// RoundTrip sends r once, or again on another connection when the one it
// was given was refused before any byte of r was written.
func (t *UpstreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	replayable := r.Body == nil || r.Body == http.NoBody
	if !replayable && r.ContentLength >= 0 && r.ContentLength <= 16<<20 {
		b, err := readAll(r.Body, r.ContentLength+1, r.ContentLength)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body, replayable = b, true
	}
	a := &sendAttempt{}
	a.trace.GotConn = a.gotConn
	ctx := httptrace.WithClientTrace(r.Context(), &a.trace)
	for attempt := 1; ; attempt++ {
		a.conn, a.before = nil, 0
		req := r.WithContext(ctx)
		if body != nil {
			a.body.Reset(body)
			req.Body = &a.body
		}
		resp, err := t.base.RoundTrip(req)
		if err == nil {
			if a.conn != nil {
				a.conn.hint(resp.Header.Get("Keep-Alive"))
			}
			return resp, nil
		}
		// Not one byte of req reached the socket: the backend cannot have
		// read it, whichever side gave up on the connection. (The transport
		// returns only once its writer is done with req.)
		unsent := a.conn != nil && a.conn.written.Load() == a.before
		if !unsent || !replayable || attempt == maxSendAttempts || r.Context().Err() != nil {
			return nil, err
		}
		// The pool may hold more connections as old or as dead: sweep it
		// rather than be refused by each in turn.
		t.base.CloseIdleConnections()
		t.replays.Add(1)
	}
}

// sendAttempt is what RoundTrip learns of the connection a request got, in
// one allocation with the trace that tells it.
type sendAttempt struct {
	conn   *upConn
	before int64 // bytes written on conn before the request
	body   memBody
	trace  httptrace.ClientTrace
}

func (a *sendAttempt) gotConn(info httptrace.GotConnInfo) {
	if a.conn = connOf(info.Conn); a.conn != nil {
		a.before = a.conn.written.Load()
	}
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

// connOf finds the upConn under a pooled connection (under TLS for https).
func connOf(c net.Conn) *upConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	u, _ := c.(*upConn)
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
	// peek, run by raw.Control, sets gone when the backend's FIN or RST is
	// queued; nil where the kernel cannot be asked. Only the connection's
	// writer uses them, one request at a time.
	peek    func(fd uintptr)
	gone    bool
	peekBuf [1]byte

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

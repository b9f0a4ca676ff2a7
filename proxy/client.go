package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The lean upstream client: keygate reads whole request bodies and whole
// bounded answers, so net/http's streaming transport (a read and a write
// goroutine per connection, header cloning, copy buffers) buys it nothing.
// Each exchange runs in the caller's goroutine on a pooled HTTP/1.1
// connection: the request goes out in one write, the answer is read with
// http.ReadResponse, and the connection goes back to the pool only when the
// answer was read to its end, nothing else arrived, and neither side asked
// to close it.

// Bounds on what an upstream may send before its answer's body.
const (
	maxAnswerHead = 64 << 10 // status line and header fields, interim answers included
	maxInterim    = 5        // 1xx answers skipped before the final one
)

// outRequest is a request as the lean client writes it: keygate builds it
// from what it checked, and the client still refuses anything that would
// change the framing (a CR, LF or other control byte, a framing header).
type outRequest struct {
	method string
	scheme string // http or https
	addr   string // the upstream's host[:port], as in its URL: where to dial
	host   string // the Host header
	path   string // escaped path of the request target
	query  string // escaped query without '?'; "" none
	header http.Header
	body   []byte
	close  bool // ask the backend to close the connection after the answer
}

// errBadRequest marks a request the client refused to write: nothing of it
// left keygate.
var errBadRequest = errors.New("proxy: request refused before sending")

// wireBufs hold requests as they go on the wire.
var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendRequest appends o as HTTP/1.1 to b: the request line, Host, the
// header fields in name order, Content-Length and the body. It refuses a
// method or header name that is not a token, a target, host or value with a
// control byte, and header names the client sets itself (framing and
// connection management), before writing anything.
func appendRequest(b []byte, o *outRequest) ([]byte, error) {
	if !validToken(o.method) {
		return b, fmt.Errorf("%w: invalid method", errBadRequest)
	}
	if o.path == "" || o.path[0] != '/' || !validTarget(o.path) || !validTarget(o.query) {
		return b, fmt.Errorf("%w: invalid request target", errBadRequest)
	}
	if o.host == "" || !validTarget(o.host) {
		return b, fmt.Errorf("%w: invalid Host", errBadRequest)
	}
	b = append(b, o.method...)
	b = append(b, ' ')
	b = append(b, o.path...)
	if o.query != "" {
		b = append(b, '?')
		b = append(b, o.query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, o.host...)
	b = append(b, "\r\n"...)
	var arr [24]string
	names := arr[:0]
	for k := range o.header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !validToken(k) {
			return b, fmt.Errorf("%w: invalid header name", errBadRequest)
		}
		if clientOwned(k) {
			return b, fmt.Errorf("%w: header %s is the client's to set", errBadRequest, k)
		}
		for _, v := range o.header[k] {
			if !validValue(v) {
				return b, fmt.Errorf("%w: control character in header %s", errBadRequest, k) // never the value: it may be a credential
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if o.close {
		b = append(b, "Connection: close\r\n"...)
	}
	if len(o.body) > 0 || o.method == http.MethodPost || o.method == http.MethodPut || o.method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(o.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, o.body...), nil
}

// clientOwned reports the header names (canonical) that frame the message
// or manage the connection: the client writes them itself, or not at all.
func clientOwned(name string) bool {
	switch name {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
		"Te", "Trailer", "Upgrade", "Expect":
		return true
	}
	return false
}

// validToken reports an RFC 9110 token: a method or a header name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}

// validTarget reports a request target, query or Host of visible ASCII:
// no space, control byte, DEL or byte a backend could decode two ways.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validValue reports a header field value without control bytes (tab
// aside), so it cannot end the field or the header early.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// pconn is one pooled upstream connection, used by one exchange at a time
// in the caller's goroutine.
type pconn struct {
	pool  *connPool
	up    *upConn   // the TCP connection: retirement, peek, byte counts
	c     net.Conn  // up, or TLS over it
	tls   *tls.Conn // c for https; nil for http
	lim   headLimit
	br    *bufio.Reader
	abort func() // ends a blocked read or write: the request's context is done

	// while idle, under the pool's lock
	idleAt   time.Time
	pollAt   time.Time     // when watchIdle looks at it next
	pollStep time.Duration // between its looks, doubling
	polled   time.Duration // idle time at the last look that found it open
}

// headLimit bounds what the answer's head may take: the bufio.Reader of a
// connection reads through it.
type headLimit struct {
	r   io.Reader
	n   int64
	rec []byte // while the head is read: every byte read, to look back at (framedTwice)
	on  bool
}

var errHeadTooLarge = errors.New("proxy: upstream answer header too large")

func (l *headLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.on {
		l.rec = append(l.rec, p[:n]...)
	}
	return n, err
}

// aLongTimeAgo is a deadline already past: it ends blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// headRequest tells http.ReadResponse that the answer to a HEAD has no body.
var headRequest = &http.Request{Method: http.MethodHead}

var (
	errFramedTwice = errors.New("proxy: upstream answer framed two ways (Transfer-Encoding with Content-Length, or in HTTP/1.0)")
	errInterim     = errors.New("proxy: upstream sent too many or unexpected interim (1xx) answers")
	errClosed      = errors.New("proxy: read on a closed upstream answer")
)

// exchange writes wire on pc and reads the answer's head, skipping interim
// answers. head bounds everything up to the final answer's header; the body
// is bounded by the context's deadline, or by the client's timeout when the
// context has none. The answer's body gives pc back to its pool, or closes
// it, once read to its end or closed. On error pc is left to the caller.
func (pc *pconn) exchange(ctx context.Context, wire []byte, method string, head time.Time, close bool) (*http.Response, error) {
	if err := pc.c.SetDeadline(head); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, pc.abort)
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return nil, err
	}
	if _, err := pc.c.Write(wire); err != nil {
		return fail(err)
	}
	var req *http.Request
	if method == http.MethodHead {
		req = headRequest
	}
	pc.lim.n, pc.lim.on, pc.lim.rec = maxAnswerHead, true, pc.lim.rec[:0]
	var resp *http.Response
	for interim := 0; ; interim++ {
		start := len(pc.lim.rec) - pc.br.Buffered() // this answer's head in rec
		r, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(answerError(err))
		}
		if r.StatusCode >= 200 {
			resp = r
			// net/http reads an answer with both Transfer-Encoding and
			// Content-Length by the former and drops the latter, and an
			// HTTP/1.0 one with Transfer-Encoding by its length, dropping
			// the coding: which framing the backend meant is unknown (RFC
			// 9112 6.1 and 6.3: faulty framing, close the connection)
			chunked, http10 := r.TransferEncoding != nil, !r.ProtoAtLeast(1, 1)
			if (chunked || http10) && framedTwice(pc.lim.rec[start:len(pc.lim.rec)-pc.br.Buffered()], chunked, http10) {
				return fail(errFramedTwice) // its body is never read: the connection is closed
			}
			break
		}
		// an interim answer has no body; 101 would hand the connection
		// over to another protocol, which keygate never asked for
		if r.StatusCode != http.StatusContinue && r.StatusCode != http.StatusEarlyHints && r.StatusCode != http.StatusProcessing ||
			interim == maxInterim {
			return fail(errInterim)
		}
	}
	pc.lim.n, pc.lim.on = 1<<62, false // the body: its reader bounds it
	if cap(pc.lim.rec) > 8<<10 {
		pc.lim.rec = nil // a large head is rare: do not keep its memory with the connection
	}
	body, ok := ctx.Deadline()
	if !ok {
		body = pc.pool.t.now().Add(pc.pool.t.timeout)
	}
	if err := pc.c.SetReadDeadline(body); err != nil {
		return fail(err)
	}
	// A context that ended since the head was read had its abort (a past
	// deadline) replaced just now by the body's: end the exchange here.
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	pc.up.hint(resp.Header.Get("Keep-Alive"))
	resp.Body = &answerBody{pc: pc, rc: resp.Body, stop: stop, keep: !resp.Close && !close}
	return resp, nil
}

// answerBody is an upstream answer's body on a pooled connection. Its
// connection goes back to the pool only when the body was read to its end,
// the reader holds nothing more (a body longer than its Content-Length, a
// second answer the backend pipelined), neither side asked to close, and
// the request's context did not end the exchange; in every other case the
// connection is closed, never reused.
type answerBody struct {
	pc   *pconn
	rc   io.ReadCloser
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *answerBody) Read(p []byte) (int, error) {
	if b.done {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errClosed
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.release()
	} else if err != nil {
		err = answerError(err)
	}
	return n, err
}

// errMalformed stands for net/http's errors about an answer it could not
// parse, which quote the backend's bytes: a backend that echoes a request
// into a malformed answer would put the request's credential in keygate's
// log.
var errMalformed = errors.New("proxy: upstream answer malformed")

// answerError returns err when it is about the connection (an end, a
// timeout, a network or TLS error: no byte of the answer in it) or one of
// the client's own, and errMalformed otherwise.
func answerError(err error) error {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errHeadTooLarge) || errors.As(err, &ne) {
		return err
	}
	return errMalformed
}

// Close ends the exchange. Unread bytes are not drained: the connection is
// closed instead, so an endless answer costs nothing more.
func (b *answerBody) Close() error {
	if !b.done {
		b.release()
	}
	return nil
}

func (b *answerBody) release() {
	b.done = true
	stopped := b.stop() // false: the context ended the exchange, the deadline is spent
	pc := b.pc
	if b.eof && b.keep && stopped && pc.br.Buffered() == 0 && pc.drained() {
		pc.pool.put(pc)
		return
	}
	pc.pool.discard(pc)
}

// drained reports that TLS holds no byte beyond the answer: the kernel
// peek sees only what is still queued, and the bufio.Reader only what it
// asked for. The start of a record TLS read ahead but cannot decrypt yet
// shows only in the record framing; a read with a deadline already past
// returns the decrypted bytes TLS holds, or times out at once without
// touching the connection.
func (pc *pconn) drained() bool {
	if pc.tls == nil {
		return true
	}
	if !pc.up.records.whole() {
		return false
	}
	if pc.tls.SetReadDeadline(aLongTimeAgo) != nil {
		return false
	}
	var one [1]byte
	n, err := pc.tls.Read(one[:])
	return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// framedTwice reports whether an answer's head (status line and header
// fields, as received) has a field that contradicts its framing: a
// Content-Length in a chunked answer, a Transfer-Encoding in an HTTP/1.0
// one.
func framedTwice(head []byte, chunked, http10 bool) bool {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			return false
		}
		head = head[i+1:]
		if chunked && hasPrefixFold(head, "content-length:") || http10 && hasPrefixFold(head, "transfer-encoding:") {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with lower, a lower-case ASCII
// string, in any case.
func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		if lowerByte(b[i]) != lower[i] {
			return false
		}
	}
	return true
}

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend is an HTTP/1.1 backend on a loopback port whose answers a test
// writes byte for byte. It records every request it read, with the number
// of the connection it came on (1, 2, ...), and every byte it received.
type rawBackend struct {
	ln net.Listener
	// answer returns the bytes to write for the i-th request (from 1) read
	// on connection conn, and bytes to write once the test sends on goOn
	// (empty: close the connection then).
	answer func(conn, i int, req *http.Request) (now []byte, after []byte)
	sent   chan struct{} // one signal per `after` written
	goOn   chan struct{} // lets the backend write an `after`

	mu    sync.Mutex
	conns int
	reqs  []rawRequest
	bytes int
}

type rawRequest struct {
	conn int
	path string
	body string
}

func startRawBackend(t *testing.T, answer func(conn, i int, req *http.Request) ([]byte, []byte)) *rawBackend {
	t.Helper()
	return startRaw(t, nil, answer)
}

// startRaw starts a rawBackend, over TLS with config when not nil.
func startRaw(t *testing.T, config *tls.Config, answer func(conn, i int, req *http.Request) ([]byte, []byte)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if config != nil {
		ln = tls.NewListener(ln, config)
	}
	b := &rawBackend{ln: ln, answer: answer, sent: make(chan struct{}, 16), goOn: make(chan struct{})}
	var wg sync.WaitGroup
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Store(c, true)
			b.mu.Lock()
			b.conns++
			n := b.conns
			b.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer open.Delete(c); b.serve(c, n) }()
		}
	}()
	return b
}

// countingReader counts the bytes a backend received.
type countingReader struct {
	r io.Reader
	b *rawBackend
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.mu.Lock()
	c.b.bytes += n
	c.b.mu.Unlock()
	return n, err
}

func (b *rawBackend) serve(c net.Conn, conn int) {
	defer c.Close()
	br := bufio.NewReader(countingReader{c, b})
	for i := 1; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, rawRequest{conn: conn, path: req.URL.Path, body: string(body)})
		b.mu.Unlock()
		now, after := b.answer(conn, i, req)
		if _, err := c.Write(now); err != nil {
			return
		}
		if after != nil {
			<-b.goOn // the client has read the answer
			if _, err := c.Write(after); err != nil {
				return
			}
			if len(after) == 0 { // the backend's idle timer fires
				c.Close()
			}
			b.sent <- struct{}{}
		}
	}
}

func (b *rawBackend) URL() string { return "http://" + b.ln.Addr().String() }

func (b *rawBackend) seen() (conns int, reqs []rawRequest, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns, append([]rawRequest(nil), b.reqs...), b.bytes
}

// okAnswer is a complete answer with body s.
func okAnswer(s string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(s)) + "\r\n\r\n" + s)
}

// getVia sends a GET for path through tr and returns the answer's body.
func getVia(tr *UpstreamTransport, base, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestClientRefusesControlBytes: a header name or value, Host, method or
// target that could end a field or the request line early, and a header
// that frames the message, are refused before a single byte is written:
// the backend is never even connected to.
func TestClientRefusesControlBytes(t *testing.T) {
	b := startRawBackend(t, func(int, int, *http.Request) ([]byte, []byte) { return okAnswer(`{}`), nil })
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	tests := []struct {
		name string
		edit func(o *outRequest)
	}{
		{"CR LF in a value", func(o *outRequest) { o.header["X-Request-Id"] = []string{"a\r\nX-Injected: 1"} }},
		{"LF alone in a value", func(o *outRequest) { o.header["X-Request-Id"] = []string{"a\nX-Injected: 1"} }},
		{"NUL in a value", func(o *outRequest) { o.header["X-Request-Id"] = []string{"a\x00b"} }},
		{"CR LF in a name", func(o *outRequest) { o.header["X-A\r\nX-Injected"] = []string{"1"} }},
		{"space in a name", func(o *outRequest) { o.header["X A"] = []string{"1"} }},
		{"Content-Length in the header", func(o *outRequest) { o.header["Content-Length"] = []string{"0"} }},
		{"Transfer-Encoding in the header", func(o *outRequest) { o.header["Transfer-Encoding"] = []string{"chunked"} }},
		{"Host in the header", func(o *outRequest) { o.header["Host"] = []string{"evil.example"} }},
		{"Connection in the header", func(o *outRequest) { o.header["Connection"] = []string{"close"} }},
		{"CR LF in Host", func(o *outRequest) { o.host = "backend\r\nX-Injected: 1" }},
		{"space in the path", func(o *outRequest) { o.path = "/get-key HTTP/1.1\r\nX: y" }},
		{"CR LF in the query", func(o *outRequest) { o.query = "a=1\r\nX: y" }},
		{"space in the method", func(o *outRequest) { o.method = "POST /x HTTP/1.1\r\n" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &outRequest{
				method: http.MethodPost, scheme: "http", addr: b.ln.Addr().String(), host: b.ln.Addr().String(),
				path: "/get-key", header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{}`),
			}
			tc.edit(o)
			resp, err := tr.send(context.Background(), o)
			if err == nil {
				resp.Body.Close()
			}
			if !errors.Is(err, errBadRequest) {
				t.Errorf("send(%s) = %v, want errBadRequest", tc.name, err)
			}
			if conns, reqs, n := b.seen(); conns != 0 || len(reqs) != 0 || n != 0 {
				t.Errorf("backend saw %d connections, %d requests and %d bytes, want none", conns, len(reqs), n)
			}
		})
	}
	// and through RoundTrip, as an http.RoundTripper
	req, _ := http.NewRequest(http.MethodGet, b.URL()+"/get-key", nil)
	req.Header["X-Custom"] = []string{"1\r\n\r\nGET /block-key HTTP/1.1"}
	if resp, err := tr.RoundTrip(req); !errors.Is(err, errBadRequest) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("RoundTrip with CR LF in a header = %v, want errBadRequest", err)
	}
	if conns, _, n := b.seen(); conns != 0 || n != 0 {
		t.Errorf("backend saw %d connections and %d bytes, want none", conns, n)
	}
}

// TestClientWritesOneCanonicalRequest: the request goes out as keygate
// built it: request line, Host, header fields in name order, its own
// Content-Length and the body bytes, all in one write.
func TestClientWritesOneCanonicalRequest(t *testing.T) {
	o := &outRequest{
		method: http.MethodPost, host: "backend:8080", path: "/activate-key", query: "a=1",
		header: http.Header{"X-Request-Id": {"r1"}, "Content-Type": {"application/json"}, "Accept-Encoding": {"identity"}},
		body:   []byte(`{"k":1}`),
	}
	got, err := appendRequest(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /activate-key?a=1 HTTP/1.1\r\nHost: backend:8080\r\nAccept-Encoding: identity\r\nContent-Type: application/json\r\n" +
		"X-Request-Id: r1\r\nContent-Length: 7\r\n\r\n{\"k\":1}"
	if string(got) != want {
		t.Errorf("appendRequest = %q, want %q", got, want)
	}
	o.body, o.method = nil, http.MethodPost
	if got, _ := appendRequest(nil, o); !strings.Contains(string(got), "Content-Length: 0\r\n") {
		t.Errorf("appendRequest(empty POST) = %q, want Content-Length: 0", got)
	}
}

// TestClientNeverReusesAfterUnaskedBytes: bytes the backend sends beyond
// its answer (a body longer than its Content-Length, a second answer it
// pipelined, arriving with the answer or while the connection is idle)
// never reach the next request: the connection is closed, and the next
// request gets its own answer on a new one.
func TestClientNeverReusesAfterUnaskedBytes(t *testing.T) {
	const first, second = `{"n":1}`, `{"n":2}`
	smuggled := okAnswer(`{"n":"smuggled"}`)
	tests := []struct {
		name       string
		now, after []byte
	}{
		{"body longer than Content-Length", append(okAnswer(first), "EXTRA"...), nil},
		{"second answer pipelined", append(okAnswer(first), smuggled...), nil},
		{"bytes after the answer, while idle", okAnswer(first), []byte("EXTRA")},
		{"second answer after the first, while idle", okAnswer(first), smuggled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
				if conn == 1 && i == 1 {
					return tc.now, tc.after
				}
				return okAnswer(second), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			if got, err := getVia(tr, b.URL(), "/one"); err != nil || got != first {
				t.Fatalf("first answer = %q, %v, want %s", got, err, first)
			}
			if tc.after != nil {
				b.goOn <- struct{}{}
				<-b.sent
				waitIdleSeen(t, tr)
			}
			got, err := getVia(tr, b.URL(), "/two")
			if err != nil || got != second {
				t.Errorf("second answer = %q, %v, want %s", got, err, second)
			}
			if conns, reqs, _ := b.seen(); conns != 2 || len(reqs) != 2 || reqs[1].conn != 2 {
				t.Errorf("backend saw %d connections and requests %+v, want the second request on connection 2", conns, reqs)
			}
		})
	}
}

// TestClientTLSNeverReusesAfterUnaskedBytes: over TLS, bytes the backend
// sent beyond its answer may sit decrypted inside TLS, where neither the
// kernel peek nor the bufio.Reader sees them; they never reach the next
// request either.
func TestClientTLSNeverReusesAfterUnaskedBytes(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for _, size := range []int{100, 3000, 4000, 5000, 9000, 14000} {
		t.Run(itoa(size), func(t *testing.T) {
			first := `{"n":"` + strings.Repeat("a", size) + `"}`
			const second = `{"n":2}`
			b := startRaw(t, srv.TLS, func(conn, i int, _ *http.Request) ([]byte, []byte) {
				if conn == 1 && i == 1 {
					return okAnswer(first), okAnswer(`{"n":"smuggled"}`) // two writes: the second in records of its own
				}
				return okAnswer(second), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second, CAPEM: caPEM})
			t.Cleanup(tr.CloseIdleConnections)
			base := "https://" + b.ln.Addr().String()
			go func() { b.goOn <- struct{}{} }() // the second write right after the answer, not after the client read it
			if got, err := getVia(tr, base, "/one"); err != nil || got != first {
				t.Fatalf("first answer = %.40q, %v, want %.40s", got, err, first)
			}
			<-b.sent // the unasked bytes are on their way before the next request is
			if got, err := getVia(tr, base, "/two"); err != nil || got != second {
				t.Errorf("second answer = %q, %v, want %s", got, err, second)
			}
			if conns, reqs, _ := b.seen(); conns != 2 || len(reqs) != 2 || reqs[1].conn != 2 {
				t.Errorf("backend saw %d connections, the second request on connection %d, want 2 and 2", conns, reqs[len(reqs)-1].conn)
			}
		})
	}
}

// waitIdleSeen waits until the kernel shows the unasked bytes queued on
// tr's idle connection, or until the watch closed it.
func waitIdleSeen(t *testing.T, tr *UpstreamTransport) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		seen := true
		tr.mu.Lock()
		for _, p := range tr.pools {
			p.mu.Lock()
			for _, c := range p.idle {
				seen = seen && c.up.peerClosed()
			}
			p.mu.Unlock()
		}
		tr.mu.Unlock()
		if seen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend's late bytes never showed")
		}
	}
}

// TestClientInterimAnswers: interim answers (100, 102, 103) are skipped,
// their header fields with them; more than maxInterim of them, or a 101,
// fail the exchange (a contract 500 through the gateway) and close the
// connection.
func TestClientInterimAnswers(t *testing.T) {
	const final = `{"message":"License valid","code":0}`
	interim := func(n int, line string) []byte {
		return []byte(strings.Repeat("HTTP/1.1 "+line+"\r\nLink: </internal.example>\r\n\r\n", n))
	}
	tests := []struct {
		name   string
		head   []byte
		status int
	}{
		{"100 Continue", interim(1, "100 Continue"), 200},
		{"102 and 103", append(interim(1, "102 Processing"), interim(1, "103 Early Hints")...), 200},
		{"as many as allowed", interim(maxInterim, "103 Early Hints"), 200},
		{"one too many", interim(maxInterim+1, "103 Early Hints"), 500},
		{"101 Switching Protocols", interim(1, "101 Switching Protocols"), 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
				if conn == 1 && i == 1 {
					return append(append([]byte(nil), tc.head...), okAnswer(final)...), nil
				}
				return okAnswer(final), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			g := newGateway(t, withUpstreamURL(b.URL()), func(o *Options) { o.Transport = tr })
			a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if a.status != tc.status || a.header.Get("Link") != "" {
				t.Errorf("answer = %d %s (Link %q), want %d without Link", a.status, a.raw, a.header.Get("Link"), tc.status)
			}
			if got := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); got.status != 200 {
				t.Errorf("next answer = %d %s, want 200", got.status, got.raw)
			}
			wantConns := 1
			if tc.status != 200 {
				wantConns = 2 // the connection that failed is not reused
			}
			if conns, _, _ := b.seen(); conns != wantConns {
				t.Errorf("backend saw %d connections, want %d", conns, wantConns)
			}
		})
	}
}

// TestClientNotReusedAfterCutAnswer: an answer keygate did not read to its
// end (over the success cap, endless, cut off by the backend or by the
// timeout) closes its connection; the next request gets a new one, never
// the rest of the old answer.
func TestClientNotReusedAfterCutAnswer(t *testing.T) {
	big := `{"message":"` + strings.Repeat("a", 300<<10) + `","code":0}`
	tests := []struct {
		name string
		ans  []byte
	}{
		{"over the cap, Content-Length", okAnswer(big)},
		{"over the cap, chunked", []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("4000\r\n"+strings.Repeat("a", 0x4000)+"\r\n", 20) + "0\r\n\r\n")},
		{"error over its cap", []byte("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(big)) + "\r\n\r\n" + big)},
		{"cut off", []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message\":")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
				if conn == 1 {
					return tc.ans, nil
				}
				return okAnswer(`{"message":"License valid","code":0}`), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			g := newGateway(t, withUpstreamURL(b.URL()), withTimeout(time.Second), func(o *Options) { o.Transport = tr })
			first := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if first.status == 200 {
				t.Errorf("first answer = %d %s, want a contract error", first.status, first.raw)
			}
			if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != 200 {
				t.Errorf("next answer = %d %s, want 200", a.status, a.raw)
			}
			if conns, reqs, _ := b.seen(); conns != 2 || len(reqs) != 2 || reqs[1].conn != 2 {
				t.Errorf("backend saw %d connections and requests %+v, want the second request on connection 2", conns, reqs)
			}
		})
	}
}

// TestClientContextEndsExchange: a request whose context ends while the
// backend holds the answer (the client went away) returns at once with the
// context's error, and its connection is not reused.
func TestClientContextEndsExchange(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 {
			arrived <- struct{}{}
			<-release
		}
		return okAnswer(`{}`), nil
	})
	defer close(release)
	// an hour: only the cancel can end the exchange before the backend answers
	tr := NewUpstreamTransport(TransportOptions{Timeout: time.Hour})
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL()+"/held", nil)
	go func() { <-arrived; cancel() }()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip after cancel = %v, want context.Canceled", err)
	}
	if got, err := getVia(tr, b.URL(), "/next"); err != nil || got != `{}` {
		t.Errorf("next answer = %q, %v, want {}", got, err)
	}
	if conns, _, _ := b.seen(); conns != 2 {
		t.Errorf("backend saw %d connections, want 2: the cancelled one is not reused", conns)
	}
}

// TestClientPoolWaits: with every connection busy, a request waits for one
// (within the timeout) instead of dialing more than upstreamConns; when
// the wait ends with none free, it fails without a byte sent.
func TestClientPoolWaits(t *testing.T) {
	var held sync.WaitGroup
	release := make(chan struct{})
	b := startRawBackend(t, func(conn, i int, req *http.Request) ([]byte, []byte) {
		if req.URL.Path == "/hold" {
			held.Done()
			<-release
		}
		return okAnswer(`{}`), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: time.Minute})
	t.Cleanup(tr.CloseIdleConnections)
	held.Add(upstreamConns)
	errs := make(chan error, upstreamConns)
	for range upstreamConns {
		go func() { _, err := getVia(tr, b.URL(), "/hold"); errs <- err }()
	}
	held.Wait() // every connection is busy
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL()+"/late", nil)
	if resp, err := tr.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errPoolWait) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("RoundTrip with every connection busy = %v, want the deadline", err)
	}
	waited := make(chan error, 1)
	go func() { _, err := getVia(tr, b.URL(), "/waited"); waited <- err }()
	close(release)
	for range upstreamConns {
		if err := <-errs; err != nil {
			t.Errorf("held request: %v", err)
		}
	}
	if err := <-waited; err != nil {
		t.Errorf("request that waited for a connection: %v", err)
	}
	conns, reqs, _ := b.seen()
	if conns != upstreamConns {
		t.Errorf("backend saw %d connections, want %d", conns, upstreamConns)
	}
	for _, r := range reqs {
		if r.path == "/late" {
			t.Error("the request that gave up waiting reached the backend")
		}
	}
}

// TestClientNoGoroutinePerConnection: pooled connections hold no goroutine
// (net/http's transport keeps two per connection), and none is left once
// the pool is closed.
func TestClientNoGoroutinePerConnection(t *testing.T) {
	const conns = 20
	var arrived sync.WaitGroup
	arrived.Add(conns)
	all := make(chan struct{})
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if i == 1 {
			arrived.Done()
			<-all
		}
		return okAnswer(`{}`), nil
	})
	before := runtime.NumGoroutine()
	tr := NewUpstreamTransport(TransportOptions{Timeout: time.Minute})
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := getVia(tr, b.URL(), "/x"); errs <- err }()
	}
	arrived.Wait()
	close(all)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// conns backend goroutines, one per connection; the client adds none
	if got := runtime.NumGoroutine() - before; got > conns+conns/4 {
		t.Errorf("goroutines with %d idle pooled connections = %d more, want at most %d (the backend's)", conns, got, conns+conns/4)
	}
	tr.CloseIdleConnections()
	b.ln.Close()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines = %d after closing the pool, want at most %d", runtime.NumGoroutine(), before)
		}
	}
}

// FuzzAppendRequest: whatever a header value, query or body holds, the
// client either refuses the request or writes one that a server reads as
// exactly one request with the same method, target, header values and body.
func FuzzAppendRequest(f *testing.F) {
	for _, s := range []string{"plain", "a\r\nX-Injected: 1", "tab\there", "\x00", "\x7f", "é", ""} {
		f.Add(s, "a=1", "{}")
	}
	f.Fuzz(func(t *testing.T, value, query, body string) {
		o := &outRequest{
			method: http.MethodPost, host: "backend", path: "/activate-key", query: query,
			header: http.Header{"X-Request-Id": {value}, "Content-Type": {"application/json"}}, body: []byte(body),
		}
		wire, err := appendRequest(nil, o)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Errorf("appendRequest error %v, want errBadRequest", err)
			}
			return
		}
		br := bufio.NewReader(strings.NewReader(string(wire)))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("ReadRequest(%q) = %v", wire, err)
		}
		got, err := io.ReadAll(req.Body)
		if err != nil || string(got) != body {
			t.Errorf("body read = %q, %v, want %q", got, err, body)
		}
		if req.Method != http.MethodPost || req.URL.Path != "/activate-key" || req.URL.RawQuery != query || req.Host != "backend" {
			t.Errorf("request line read as %s %s?%s Host %s", req.Method, req.URL.Path, req.URL.RawQuery, req.Host)
		}
		if v := req.Header.Values("X-Request-Id"); len(v) != 1 || v[0] != strings.Trim(value, " \t") {
			t.Errorf("X-Request-Id read as %q, want %q", v, value)
		}
		if len(req.Header) != 3 { // X-Request-Id, Content-Type, Content-Length
			t.Errorf("header read as %v, want 3 fields", req.Header)
		}
		if br.Buffered() != 0 {
			t.Errorf("%d bytes left after the request: a second request", br.Buffered())
		}
	})
}

// TestClientAnswerHeadBounded: an answer head larger than maxAnswerHead (one
// endless header line, or many fields) fails the exchange, a contract 500
// through the gateway, instead of growing keygate's memory.
func TestClientAnswerHeadBounded(t *testing.T) {
	tests := []struct {
		name   string
		head   string
		status int
	}{
		{"just under the bound", "X-Pad: " + strings.Repeat("a", maxAnswerHead-200) + "\r\n", 200},
		{"one long line", "X-Pad: " + strings.Repeat("a", maxAnswerHead) + "\r\n", 500},
		{"many fields", strings.Repeat("X-Pad: aaaaaaaaaaaaaaaa\r\n", maxAnswerHead/16), 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const body = `{"message":"License valid","code":0}`
			b := startRawBackend(t, func(int, int, *http.Request) ([]byte, []byte) {
				return []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + tc.head + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			g := newGateway(t, withUpstreamURL(b.URL()), func(o *Options) { o.Transport = tr })
			if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != tc.status {
				t.Errorf("answer = %d %s, want %d", a.status, a.raw, tc.status)
			}
		})
	}
}

// TestUpstreamLearnsFromConnectionClosedWhileIdle: a pooled connection the
// backend closed while idle, found closed just before a request is written
// on it, teaches the transport the backend's idle timeout: at least as
// long as the last look that found it open. The request goes out on a new
// connection.
func TestUpstreamLearnsFromConnectionClosedWhileIdle(t *testing.T) {
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 {
			return okAnswer(`{}`), []byte{} // nothing more: the connection is closed on goOn
		}
		return okAnswer(`{}`), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	if _, err := getVia(tr, b.URL(), "/one"); err != nil {
		t.Fatal(err)
	}
	p, err := tr.pool("http", b.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const lastOpen = 50 * time.Millisecond
	p.mu.Lock()
	pc := p.idle[0]
	pc.polled = lastOpen                  // the last look found it open after 50ms idle
	pc.pollAt = time.Now().Add(time.Hour) // and the watch looks no more
	p.mu.Unlock()
	b.goOn <- struct{}{}
	<-b.sent
	for deadline := time.Now().Add(5 * time.Second); !pc.up.peerClosed(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the backend's FIN never showed")
		}
	}
	if _, err := getVia(tr, b.URL(), "/two"); err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(tr.learned.Load()); got != lastOpen {
		t.Errorf("learned = %s, want %s", got, lastOpen)
	}
	if got := tr.replays.Load(); got != 1 {
		t.Errorf("replays = %d, want 1 (nothing of the request was written on the closed connection)", got)
	}
}

// TestClientNoReplayPastDeadline: a request whose deadline passed before a
// byte of it was written fails at once: it is not tried again on other
// connections, and the idle pool is not swept for it.
func TestClientNoReplayPastDeadline(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if i == 1 {
			arrived.Done()
			<-both
		}
		return okAnswer(`{}`), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	errs := make(chan error, 2)
	for range 2 { // two pooled connections
		go func() { _, err := getVia(tr, b.URL(), "/pool"); errs <- err }()
	}
	arrived.Wait()
	close(both)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	tr.timeout = time.Nanosecond // every deadline is past when the write comes
	if _, err := getVia(tr, b.URL(), "/late"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("request past its deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	p, _ := tr.pool("http", b.ln.Addr().String())
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if got := tr.replays.Load(); got != 0 || idle != 1 {
		t.Errorf("replays = %d and %d idle connections left, want 0 and 1", got, idle)
	}
}

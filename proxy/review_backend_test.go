package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileBackendFraming: answers a backend frames oddly or twice (the
// attacker's review of the lean client). Each answer goes to the first
// request on connection 1; whatever keygate made of it, the answer within
// the contract carries none of the backend's stray bytes or headers, and the
// next request gets its own answer, on a new connection whenever the first
// one could hold anything more.
func TestHostileBackendFraming(t *testing.T) {
	const good = `{"message":"License valid","code":0}`
	smuggled := string(okAnswer(`{"message":"smuggled","code":0}`))
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name   string
		ans    string
		status int  // of the first answer
		reuse  bool // connection 1 may carry the second request
	}{
		{"Transfer-Encoding and Content-Length, the rest pipelined",
			head + "Content-Length: " + itoa(5+len(smuggled)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 500, false},
		{"Content-Length then Transfer-Encoding, a valid chunked body",
			head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(good), 500, false},
		{"HTTP/1.0 keep-alive with Transfer-Encoding and Content-Length",
			"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: " + itoa(5+len(smuggled)) + "\r\n\r\n0\r\n\r\n" + smuggled, 500, false},
		{"HTTP/1.0 keep-alive with Transfer-Encoding, a body by length",
			"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good, 500, false},
		{"a space before a Content-Length's colon", head + "Content-Length : " + itoa(len(good)) + "\r\n\r\n" + good + smuggled, 500, false},
		{"two different Content-Lengths", head + "Content-Length: 36\r\nContent-Length: 3\r\n\r\n" + good, 500, false},
		{"204 with a body", "HTTP/1.1 204 No Content\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, 200, false},
		{"304 with a body", "HTTP/1.1 304 Not Modified\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, 500, false},
		// a body without a length ends when the connection does; this one never does: bounded by the timeout
		{"HTTP/1.0 without a length, never closed", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + good, 500, false},
		{"keep-alive HTTP/1.0 with a length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n" + "Content-Type: application/json\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good, 200, true},
		{"chunked with extensions and a trailer",
			head + "Transfer-Encoding: chunked\r\nTrailer: X-Backend-Host\r\n\r\n" + itoa16(len(good)) + ";ext=\"10.0.0.5\"\r\n" + good + "\r\n0\r\nX-Backend-Host: 10.0.0.5\r\n\r\n", 200, true},
		{"an interim with a Content-Length, then a chunked answer",
			"HTTP/1.1 103 Early Hints\r\nContent-Length: 0\r\n\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(good), 200, true},
		{"Content-Length in a chunked answer's trailer",
			head + "Transfer-Encoding: chunked\r\n\r\n" + itoa16(len(good)) + "\r\n" + good + "\r\n0\r\nContent-Length: 3\r\n\r\n", 200, true},
		{"a trailer without end", head + "Transfer-Encoding: chunked\r\n\r\n" + itoa16(len(good)) + "\r\n" + good + "\r\n0\r\nX-Trailer: " +
			strings.Repeat("a", 64<<10) + "\r\n", 500, false},
		{"chunk extensions without data", head + "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\n \r\n", 300) + "0\r\n\r\n", 500, false},
		{"an interim answer with a body", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhello" + string(okAnswer(good)), 500, false},
		{"Connection: close left open", head + "Connection: close\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good, 200, false},
		{"a status of four digits", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", 500, false},
		// RFC 9112 5.2: obs-fold is read as a space, then checked like any value
		{"a header folded over two lines", head + "Cache-Control: no-store,\r\n 10.0.0.5\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good, 200, true},
		{"a control byte in a header value", head + "Cache-Control: no-store\x01\x00\rX: 10.0.0.5\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good, 500, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
				if conn == 1 && i == 1 {
					return []byte(tc.ans), nil
				}
				return okAnswer(good), nil
			})
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			g := newGateway(t, withUpstreamURL(b.URL()), func(o *Options) { o.Transport = tr })
			a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if a.status != tc.status {
				t.Errorf("first answer = %d %s, want %d", a.status, a.raw, tc.status)
			}
			for _, stray := range []string{"smuggled", "10.0.0.5"} {
				if strings.Contains(string(a.raw), stray) || strings.Contains(headerText(a.header), stray) {
					t.Errorf("first answer = %v %s, want nothing of %q", a.header, a.raw, stray)
				}
			}
			for k, vs := range a.header {
				for _, v := range vs {
					if !validValue(v) {
						t.Errorf("first answer header %s = %q, want no control byte", k, v)
					}
				}
			}
			next := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if next.status != 200 || next.msg != "License valid" {
				t.Errorf("next answer = %d %s, want 200 %s", next.status, next.raw, good)
			}
			_, reqs, _ := b.seen()
			if len(reqs) != 2 || (!tc.reuse && reqs[1].conn == 1) {
				t.Errorf("backend saw requests %+v, want the second one on a new connection", reqs)
			}
		})
	}
}

func chunked(s string) string { return itoa16(len(s)) + "\r\n" + s + "\r\n0\r\n\r\n" }

func itoa16(n int) string { return strconv.FormatInt(int64(n), 16) }

func headerText(h http.Header) string {
	var sb strings.Builder
	_ = h.Write(&sb)
	return sb.String()
}

// TestClientLateAnswerNotReadByNext: the backend answers only after keygate
// gave up on the request (its timeout passed: a contract 500); that late
// answer, meant for the first client, never reaches the next one.
func TestClientLateAnswerNotReadByNext(t *testing.T) {
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 && i == 1 {
			return []byte{}, okAnswer(`{"message":"the first client's","code":0}`)
		}
		return okAnswer(`{"message":"License valid","code":0}`), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	g := newGateway(t, withUpstreamURL(b.URL()), withTimeout(200*time.Millisecond), func(o *Options) { o.Transport = tr })
	if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != 500 {
		t.Fatalf("first answer = %d %s, want 500 (the backend held it past the timeout)", a.status, a.raw)
	}
	b.goOn <- struct{}{} // the late answer goes out now (or fails: keygate closed that connection)
	a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
	if a.status != 200 || a.msg != "License valid" {
		t.Errorf("next answer = %d %s, want 200 License valid", a.status, a.raw)
	}
}

// TestClientSlowBodyBounded: a backend that sends its answer's head and
// then its body a byte every few milliseconds, each byte well within any
// per-read timeout, is cut off by the request's deadline (a contract 500),
// and its connection is not reused.
func TestClientSlowBodyBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
					return
				}
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for range tick.C { // until keygate closes the connection
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
		}
	}()
	tr := NewUpstreamTransport(TransportOptions{Timeout: time.Hour}) // only the request's deadline can end it
	t.Cleanup(tr.CloseIdleConnections)
	g := newGateway(t, withUpstreamURL("http://"+ln.Addr().String()), withTimeout(300*time.Millisecond), func(o *Options) { o.Transport = tr })
	if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != 500 {
		t.Errorf("answer = %d %s, want 500", a.status, a.raw)
	}
}

// TestUpstreamErrorLogsNoSecret: a broken backend that echoes what it read
// (the token, the license key) into an answer net/http cannot parse: the
// parser's error quotes the offending line, and keygate logs the error; the
// log names neither secret.
func TestUpstreamErrorLogsNoSecret(t *testing.T) {
	token := testTokens["global"]
	tests := []struct {
		name string
		head func(auth, body string) string
	}{
		{"status line", func(auth, body string) string { return "HTTP/1.1 " + auth + "\r\n\r\n" }},
		{"status code", func(auth, body string) string { return "HTTP/1.1 2" + body + " OK\r\n\r\n" }},
		{"header line", func(auth, body string) string { return "HTTP/1.1 200 OK\r\n" + auth + " " + body + "\r\n\r\n" }},
		{"protocol", func(auth, body string) string { return body + " 200 OK\r\n\r\n" }},
		{"trailer", func(auth, body string) string {
			return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n" + auth + " " + body + "\r\n\r\n"
		}},
		{"Content-Length", func(auth, body string) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: " + auth + "\r\nContent-Length: " + body + "\r\n\r\n"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startRawBackend(t, func(conn, i int, req *http.Request) ([]byte, []byte) {
				body, _ := io.ReadAll(req.Body)
				return []byte(tc.head(req.Header.Get("Authorization"), string(body))), nil
			})
			var logs syncBuffer
			tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
			t.Cleanup(tr.CloseIdleConnections)
			g := newGateway(t, withUpstreamURL(b.URL()), func(o *Options) {
				o.Transport = tr
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			if a := g.do(t, call{path: "/get-key", token: token, body: getBody(testKey)}); a.status != 500 {
				t.Errorf("answer = %d %s, want 500", a.status, a.raw)
			}
			out := logs.String()
			for _, secret := range []string{token, testKey} {
				if strings.Contains(out, secret) {
					t.Errorf("log holds %q:\n%s", secret, out)
				}
			}
		})
	}
}

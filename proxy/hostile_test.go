package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// liveServer serves g the way keygate serve does: the contract listener and
// the client timeouts.
func liveServer(t *testing.T, g *gateway, headerTimeout, readTimeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout, MaxHeaderBytes: 32 << 10}
	go srv.Serve(ContractListener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestSlowClients(t *testing.T) {
	g := newGateway(t)
	addr := liveServer(t, g, 200*time.Millisecond, 400*time.Millisecond)
	t.Run("slow headers are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /get-key HTTP/1.1\r\nHost: x\r\n")
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := conn.Read(make([]byte, 1))
		if n != 0 || err == nil {
			t.Fatalf("read = %d, %v; want the connection closed", n, err)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open after 3s: the header timeout did not apply")
		}
	})
	t.Run("slow body gets a contract answer", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /get-key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testTokens["global"]+
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"productId\":")
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		assertContract(t, answer{status: resp.StatusCode, header: resp.Header, raw: raw})
		if resp.StatusCode != 400 {
			t.Errorf("status = %d %s, want 400", resp.StatusCode, raw)
		}
	})
	if n := g.up.calls.Load(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

func TestHostileRequests(t *testing.T) {
	g := newGateway(t)
	big := `{"productId":"prod_test_0000000000000001","pad":"` + strings.Repeat("x", 80<<10) + `"}`
	tests := []struct {
		name   string
		c      call
		status int
	}{
		{"TRACE", call{method: "TRACE", path: "/get-key", token: testTokens["global"]}, 404},
		{"odd method", call{method: "FROB", path: "/get-key", token: testTokens["global"]}, 404},
		{"OPTIONS", call{method: "OPTIONS", path: "/activate-key"}, 404},
		{"dot segments", call{path: "/get-key/../activate-key", token: testTokens["global"], body: getBody(testKey)}, 404},
		{"encoded dot segments", call{path: "/x/%2e%2e/get-key", token: testTokens["global"], body: getBody(testKey)}, 404},
		{"double slash", call{path: "//get-key", token: testTokens["global"], body: getBody(testKey)}, 404},
		{"encoded slash", call{path: "/get%2Dkey%2F", token: testTokens["global"], body: getBody(testKey)}, 404},
		{"case", call{path: "/GET-KEY", token: testTokens["global"], body: getBody(testKey)}, 404},
		{"invalid UTF-8", call{path: "/get-key", token: testTokens["global"], body: "{\"productId\":\"\xc3\x28\"}"}, 400},
		{"deep nesting", call{path: "/get-key", token: testTokens["global"], body: `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`}, 400},
		{"over the body limit", call{path: "/get-key", token: testTokens["global"], body: big}, 400},
		{"JSON with comments", call{path: "/get-key", token: testTokens["global"], body: `{/*x*/"productId":"p"}`}, 400},
		{"UTF-16 charset", call{path: "/get-key", token: testTokens["global"], body: getBody(testKey),
			header: map[string]string{"Content-Type": "application/json; charset=utf-16"}}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := g.do(t, tc.c)
			if a.status != tc.status {
				t.Errorf("answer = %d %s, want %d", a.status, a.raw, tc.status)
			}
		})
	}
	if n := g.up.calls.Load(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

func TestChunkedBodyOverLimit(t *testing.T) {
	g := newGateway(t)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 100; i++ { // 100 x 1 KiB chunks, no Content-Length
			if _, err := pw.Write([]byte(strings.Repeat("a", 1024))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, g.srv.URL+"/get-key", pr)
	req.Header.Set("Authorization", "Bearer "+testTokens["global"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertContract(t, answer{status: resp.StatusCode, header: resp.Header, raw: raw})
	if resp.StatusCode != 400 {
		t.Errorf("status = %d %s, want 400", resp.StatusCode, raw)
	}
}

func TestHopByHopHeadersNotForwarded(t *testing.T) {
	g := newGateway(t)
	g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey),
		header: map[string]string{"Connection": "X-Secret, Keep-Alive", "X-Secret": "s3cret", "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic x"}})
	seen := g.up.last.Load()
	for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if v := seen.Header.Get(h); v != "" {
			t.Errorf("upstream got hop-by-hop header %s = %q", h, v)
		}
	}
}

// TestNonIdempotentNeverRetried: the backend reads an activation and drops
// the connection without answering. The request must reach it once, and the
// client must get a contract 500 (a retry could activate twice).
func TestNonIdempotentNeverRetried(t *testing.T) {
	var hits atomic.Int64
	g := newGateway(t)
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(string(g.up.last.Load().Body), "drop") {
			hits.Add(1)
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"ok","code":0}`)
	})
	g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)}) // warm a keep-alive connection
	body := `{"productId":"prod_test_0000000000000001","licenseKey":"KEY-TEST-0000-0000-0000-0001","hostId":"drop"}`
	for _, withKey := range []bool{false, true} {
		hits.Store(0)
		c := call{path: "/activate-key", token: testTokens["global"], body: body}
		if withKey { // Go's transport treats requests with this header as replayable
			c.header = map[string]string{"Idempotency-Key": fmt.Sprint("k-", time.Now().UnixNano())}
		}
		a := g.do(t, c)
		if a.status != 500 || a.code != 1 {
			t.Errorf("Idempotency-Key %v: answer = %d %s, want 500 code 1", withKey, a.status, a.raw)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("Idempotency-Key %v: backend saw the activation %d times, want exactly 1", withKey, n)
		}
	}
}

// TestEveryRequestAnswered sends a burst of mixed concurrent requests and
// counts exactly one contract answer for each.
func TestEveryRequestAnswered(t *testing.T) {
	g := newGateway(t, withTimeout(300*time.Millisecond))
	var n atomic.Int64
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			<-r.Context().Done() // answers only after keygate gave up: past the timeout
			return
		case 1:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<h1>bad gateway</h1>")
			return
		case 2:
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"ok","code":0}`)
	})
	calls := []call{
		{path: "/get-key", token: testTokens["global"], body: getBody(testKey)},
		{path: "/get-key", token: "nope", body: getBody(testKey)},
		{path: "/get-key", token: testTokens["global"], body: `{}`},
		{path: "/nowhere", token: testTokens["global"], body: `{}`},
	}
	const total = 200
	problems := make([][]string, total) // each goroutine reports in its own slot
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := calls[i%len(calls)]
			c.header = map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.%d.%d", i/200, i%200)}
			a, err := g.send(c)
			if err != nil {
				problems[i] = []string{err.Error()}
				return
			}
			problems[i] = contractProblems(a)
		}()
	}
	wg.Wait()
	for i, ps := range problems {
		for _, p := range ps {
			t.Errorf("request %d (%s): %s", i, calls[i%len(calls)].path, p)
		}
	}
}

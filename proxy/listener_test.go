package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerOwnErrorsInContract sends requests that Go's HTTP server answers
// before any handler runs, and checks they still get a contract answer.
func TestServerOwnErrorsInContract(t *testing.T) {
	g := newGateway(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, MaxHeaderBytes: 4 << 10, ReadHeaderTimeout: 2 * time.Second}
	go srv.Serve(ContractListener(ln))
	t.Cleanup(func() { srv.Close() })

	body := getBody(testKey)
	auth := "Authorization: Bearer " + testTokens["global"] + "\r\n"
	tests := []struct {
		name, raw, msg string
	}{
		{"huge headers", "POST /get-key HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", "Request headers too large"},
		{"garbage request line", "GARBAGE\r\n\r\n", "Malformed request"},
		{"no Host", "POST /get-key HTTP/1.1\r\n" + auth + "Content-Length: 2\r\n\r\n{}", "Malformed request"},
		{"bad protocol version", "POST /get-key HTTP/9.9\r\nHost: x\r\n\r\n", "Unsupported HTTP version"},
		{"unknown transfer coding", "POST /get-key HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Unsupported transfer encoding"},
		// Go drops the Content-Length and reads the chunks (RFC 9112 6.3);
		// keygate re-frames the body it forwards, so nothing can be smuggled
		{"both Content-Length and Transfer-Encoding", "POST /get-key HTTP/1.1\r\nHost: x\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\n", "Missing required params"},
		{"two Content-Lengths", "POST /get-key HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}", "Malformed request"},
		{"unknown Expect", "POST /get-key HTTP/1.1\r\nHost: x\r\n" + auth + "Expect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: " +
			itoa(len(body)) + "\r\n\r\n" + body, "Unsupported Expect header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(conn, tc.raw) // the server may answer before it has read everything
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			raw, _ := io.ReadAll(resp.Body)
			var b struct {
				Message string `json:"message"`
				Code    *int   `json:"code"`
			}
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(raw, &b) != nil || b.Code == nil || *b.Code != 1 || b.Message != tc.msg {
				t.Errorf("answer = %d %q %s, want 400 application/json {%q, 1}", resp.StatusCode, resp.Header.Get("Content-Type"), raw, tc.msg)
			}
		})
	}
	if n := g.up.calls.Load(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

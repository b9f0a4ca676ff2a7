package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUpstreamAnswersAreNormalized(t *testing.T) {
	html := "<html><head><title>502 Bad Gateway</title></head><body><center>nginx/1.18.0</center></body></html>"
	big := strings.Repeat("<p>error</p>", 1<<20) // ~12 MB error page
	tests := []struct {
		name       string
		path, body string
		status     int
		ctype      string
		header     map[string]string
		upBody     string
		wantStatus int
		wantCode   int
		wantMsg    string
		wantRaw    string // exact body expected, when passed through
		noHeaders  []string
	}{
		{name: "success is rebuilt from its listed fields", path: "/activate-key", body: activateBody(testKey), status: 200, ctype: "application/json",
			upBody: `{"message":"License valid", "licenseeName":"Ada","code":0}`, wantStatus: 200, wantCode: 0,
			wantRaw: `{"message":"License valid","code":0,"licenseeName":"Ada"}`},
		{name: "201 becomes 200", path: "/create-key", body: `{"productId":"prod_test_0000000000000001"}`, status: 201, ctype: "application/json",
			upBody:     `{"message":"License key created","code":0,"key":"k"}`,
			wantStatus: 200, wantCode: 0, wantRaw: `{"message":"License key created","code":0,"key":"k"}`},
		{name: "204 becomes OK", status: 204, wantStatus: 200, wantCode: 0, wantMsg: "OK"},
		{name: "empty 200 becomes OK", status: 200, ctype: "application/json", wantStatus: 200, wantCode: 0, wantMsg: "OK"},
		{name: "success JSON without content type", status: 200, ctype: "text/plain", upBody: `{"message":"License valid","code":0}`,
			wantStatus: 200, wantCode: 0, wantRaw: `{"message":"License valid","code":0}`},
		{name: "HTML served as success", status: 200, ctype: "text/html", upBody: html, wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "success without contract fields gets them, unlisted field removed", status: 200, ctype: "application/json", upBody: `{"data":{"k":"v"}}`,
			wantStatus: 200, wantCode: 0, wantRaw: `{"message":"OK","code":0,"data":{}}`},
		{name: "success without code", status: 200, ctype: "application/json", upBody: ` {"message":"License key fetched"}`,
			wantStatus: 200, wantCode: 0, wantRaw: `{"message":"License key fetched","code":0}`},
		{name: "success with an unlisted message", status: 200, ctype: "application/json", upBody: `{"message":"Done","code":0}`,
			wantStatus: 200, wantCode: 0, wantRaw: `{"message":"OK","code":0}`},
		{name: "error code inside a 200", status: 200, ctype: "application/json", upBody: `{"message":"License has expired","code":2}`,
			wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "JSON array success", status: 200, ctype: "application/json", upBody: `[1,2]`, wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "contract 400 passes", status: 400, ctype: "application/json", upBody: `{"message":"Missing required params","code":1}`,
			wantStatus: 400, wantCode: 1, wantRaw: `{"message":"Missing required params","code":1}`},
		{name: "contract 403 passes", status: 403, ctype: "application/json", upBody: `{"message":"License has expired","code":2}`,
			wantStatus: 403, wantCode: 2, wantRaw: `{"message":"License has expired","code":2}`},
		{name: "contract 500 with a listed message passes", status: 500, ctype: "application/json", upBody: `{"message":"Server error","code":1}`,
			wantStatus: 500, wantCode: 1, wantRaw: `{"message":"Server error","code":1}`},
		{name: "contract 500 with an identifier", status: 500, ctype: "application/json", upBody: `{"message":"DB_INSERT_FAIL","code":1}`,
			wantStatus: 500, wantCode: 1, wantRaw: `{"message":"Server error","code":1}`},
		{name: "create: customer not found is code 2", path: "/create-key", body: `{"productId":"prod_test_0000000000000001","customerId":"c1"}`,
			status: 404, ctype: "application/json", upBody: `{"message":"Customer not found","code":2}`,
			wantStatus: 404, wantCode: 2, wantRaw: `{"message":"Customer not found","code":2}`},
		{name: "create: foreign customer 404 gets code 2", path: "/create-key", body: `{"productId":"prod_test_0000000000000001","customerId":"c1"}`,
			status: 404, ctype: "application/json", upBody: `{"error":"Customer not found"}`,
			wantStatus: 404, wantCode: 2, wantMsg: "Customer not found"},
		{name: "create: 409 is code 2", path: "/create-key", body: `{"productId":"prod_test_0000000000000001","newCustomer":{"name":"A","email":"a@b.co"}}`,
			status: 409, ctype: "application/json", upBody: `{"error":"Customer with this email already exists"}`,
			wantStatus: 409, wantCode: 2, wantMsg: "Customer with this email already exists"},
		{name: "get: 404 code 2 is corrected to 1", status: 404, ctype: "application/json", upBody: `{"message":"License key not found","code":2}`,
			wantStatus: 404, wantCode: 1, wantMsg: "License key not found"},
		{name: "HTML 502", status: 502, ctype: "text/html", upBody: html, header: map[string]string{"Server": "nginx/1.18.0", "Set-Cookie": "s=1"},
			wantStatus: 500, wantCode: 1, wantMsg: "Server error", noHeaders: []string{"Server", "Set-Cookie"}},
		{name: "plain-text stack trace", status: 500, ctype: "text/plain",
			upBody:     "java.sql.SQLException: Connection refused\n\tat com.acme.Db.connect(Db.java:42)\n\tat db-internal-7.corp:5432",
			wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "foreign JSON 422", status: 422, ctype: "application/json", upBody: `{"error":"license_key format invalid"}`,
			wantStatus: 400, wantCode: 1, wantMsg: "Bad request"},
		{name: "nested error message", status: 400, ctype: "application/json", upBody: `{"error":{"message":"Invalid JSON","type":"x"}}`,
			wantStatus: 400, wantCode: 1, wantMsg: "Invalid JSON"},
		{name: "detail field", status: 403, ctype: "application/problem+json", upBody: `{"detail":"License is blocked","status":403}`,
			wantStatus: 403, wantCode: 2, wantMsg: "License is blocked"},
		{name: "message leaking a host", status: 500, ctype: "application/json", upBody: `{"message":"connect ECONNREFUSED 10.0.3.7:5432","code":1}`,
			wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "contract body with extra fields", status: 500, ctype: "application/json", upBody: `{"message":"Server error","code":1,"stack":"at x"}`,
			wantStatus: 500, wantCode: 1, wantRaw: `{"message":"Server error","code":1}`},
		{name: "redirect", status: 302, ctype: "text/html", header: map[string]string{"Location": "https://login.internal/"}, upBody: "<a>moved</a>",
			wantStatus: 500, wantCode: 1, wantMsg: "Server error", noHeaders: []string{"Location"}},
		{name: "teapot", status: 418, ctype: "text/plain", upBody: "I'm a teapot", wantStatus: 400, wantCode: 1, wantMsg: "Bad request"},
		{name: "503 with JSON", status: 503, ctype: "application/json", upBody: `{"message":"Service Unavailable"}`,
			wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "429 keeps Retry-After", status: 429, ctype: "text/plain", header: map[string]string{"Retry-After": "7"}, upBody: "slow down",
			wantStatus: 429, wantCode: 3, wantMsg: "Too many requests. Please try again later."},
		{name: "10 MB error page", status: 500, ctype: "text/html", upBody: big, wantStatus: 500, wantCode: 1, wantMsg: "Server error"},
		{name: "contract body too long to check", status: 400, ctype: "application/json",
			upBody: `{"message":"` + strings.Repeat("x", 20000) + `","code":1}`, wantStatus: 400, wantCode: 1, wantMsg: "Bad request"},
	}
	g := newGateway(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.upBody)
			})
			path, body := tc.path, tc.body
			if path == "" {
				path, body = "/get-key", getBody(testKey)
			}
			a := g.do(t, call{path: path, token: testTokens["global"], body: body})
			if a.status != tc.wantStatus || a.code != tc.wantCode {
				t.Fatalf("answer = %d code %d (%s), want %d code %d", a.status, a.code, a.raw, tc.wantStatus, tc.wantCode)
			}
			if tc.wantRaw != "" && string(a.raw) != tc.wantRaw {
				t.Errorf("body = %s, want byte-identical %s", a.raw, tc.wantRaw)
			}
			if tc.wantMsg != "" && a.msg != tc.wantMsg {
				t.Errorf("message = %q, want %q", a.msg, tc.wantMsg)
			}
			for _, h := range tc.noHeaders {
				if v := a.header.Get(h); v != "" {
					t.Errorf("header %s = %q leaked from upstream", h, v)
				}
			}
			if tc.status == 429 && a.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q, want 7", a.header.Get("Retry-After"))
			}
			if a.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the answer")
			}
		})
	}
}

func TestGzipContractBodyPasses(t *testing.T) {
	g := newGateway(t)
	body := `{"message":"License is blocked","code":2}`
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		io.WriteString(zw, body)
		zw.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(403)
		w.Write(buf.Bytes())
	})
	a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}) // the client decompresses
	if a.status != 403 || string(a.raw) != body {
		t.Errorf("answer = %d %s, want 403 %s", a.status, a.raw, body)
	}
}

func TestTransportFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"reset before headers", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}},
		{"slow headers past the timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"truncated success body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, `{"message":`)
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.Flush()
			conn.Close()
		}},
		{"slow success body past the timeout", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			io.WriteString(w, `{"message":`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"garbage instead of HTTP", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("SSH-2.0-OpenSSH_9.2\r\n\r\n")
			buf.Flush()
			conn.Close()
		}},
	}
	g := newGateway(t, withTimeout(300*time.Millisecond))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(tc.handler)
			start := time.Now()
			a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
			if a.status != 500 || a.code != 1 || a.msg != "Server error" {
				t.Errorf("answer = %d %s, want 500 Server error", a.status, a.raw)
			}
			// generous bound: the point is that the timeout applies, not speed
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("answer took %s with a 300ms upstream timeout", d)
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	g := newGateway(t, withUpstreamURL("http://"+addr))
	a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
	if a.status != 500 || a.code != 1 {
		t.Errorf("answer = %d %s, want 500 code 1", a.status, a.raw)
	}
}

// TestEarlyHintsDropped checks at the wire that an upstream 103 never reaches
// the client: Go's client hides 1xx answers, so read the raw response.
func TestEarlyHintsDropped(t *testing.T) {
	g := newGateway(t)
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"ok","code":0}`)
	})
	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := getBody(testKey)
	req := "POST /get-key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testTokens["global"] +
		"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("first status line = %q, want HTTP/1.1 200", line)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

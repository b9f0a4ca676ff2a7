package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientFraming reads answers framed each way HTTP/1.1 allows, over one
// connection where it stays open.
func TestClientFraming(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			io.WriteString(w, "hel")
			w.(http.Flusher).Flush()
			io.WriteString(w, "lo")
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(404)
			io.WriteString(w, "gone")
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(addr)
	c.keep = true
	defer c.close()
	for _, tc := range []struct {
		path   string
		status int
		body   string
		open   bool
	}{
		{"/length", 200, "hello", true},
		{"/chunked", 200, "hello", true},
		{"/length", 200, "hello", true},
		{"/close", 404, "gone", false},
		{"/length", 200, "hello", true}, // redialled
	} {
		status, err := c.do(request(addr, tc.path, "tok", `{"a":1}`))
		if err != nil {
			t.Fatalf("do(%s): %v", tc.path, err)
		}
		if status != tc.status || string(c.body) != tc.body || (c.conn != nil) != tc.open {
			t.Errorf("do(%s) = %d %q open %v, want %d %q open %v", tc.path, status, c.body, c.conn != nil, tc.status, tc.body, tc.open)
		}
	}
}

func TestClientMalformed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 1024)
		_, _ = conn.Read(buf)
		io.WriteString(conn, "SSH-2.0-OpenSSH\r\n\r\n")
		time.Sleep(100 * time.Millisecond)
	}()
	c := newClient(ln.Addr().String())
	if _, err := c.do(request("x", "/", "", "")); err == nil {
		t.Fatal("do on a non-HTTP answer: no error")
	}
	if c.conn != nil {
		t.Error("connection kept after a malformed answer")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("percentile(1..1000, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestRedisCallsSplit(t *testing.T) {
	for _, tc := range []struct {
		name                               string
		calls                              redisCalls
		scripts, others, background, total int64
	}{
		{"script and what it runs", redisCalls{"evalsha": 10, "eval": 1, "time": 11, "get": 22, "set": 22}, 11, 0, 0, 66},
		{"harness's INFO left out", redisCalls{"evalsha": 3, "info": 5}, 3, 0, 0, 3},
		{"connection setup and probes apart", redisCalls{"evalsha": 4, "hello": 2, "script|load": 1, "ping": 1, "client|setinfo": 2}, 4, 0, 6, 10},
		{"a command of keygate's own is a round trip", redisCalls{"evalsha": 4, "incr": 3}, 4, 3, 0, 7},
		{"nothing", redisCalls{}, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o, b, a := tc.calls.split()
			if s != tc.scripts || o != tc.others || b != tc.background || a != tc.total {
				t.Errorf("split(%v) = %d, %d, %d, %d; want %d, %d, %d, %d", tc.calls, s, o, b, a, tc.scripts, tc.others, tc.background, tc.total)
			}
		})
	}
}

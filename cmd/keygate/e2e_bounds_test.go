package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// idleConn opens a connection to addr, gets one answer on it and leaves it
// open and idle.
func idleConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a guard against a hang, not a measure
	if _, err := io.WriteString(c, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

// closedByServer reports whether the server closed c (a read ends in EOF
// or a reset) before c's deadline.
func closedByServer(c net.Conn) bool {
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestServeConnectionBounds runs keygate with KEYGATE_MAX_CONNS=2: with two
// idle keep-alive connections open, a third client is served and an idle
// connection is closed for it. With KEYGATE_IDLE_TIMEOUT short,
// an idle connection is closed by itself.
func TestServeConnectionBounds(t *testing.T) {
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "good-token")
	t.Run("max conns", func(t *testing.T) {
		kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_MAX_CONNS=2", "KEYGATE_IDLE_TIMEOUT=1h")
		idle := []net.Conn{idleConn(t, kg.api), idleConn(t, kg.api)}
		idleConn(t, kg.api) // served: the limit made room
		// the server closed one of the idle connections (the one that went
		// idle first, which on a busy machine need not be the first opened)
		closed := make(chan bool, len(idle))
		for _, c := range idle {
			go func() { closed <- closedByServer(c) }()
		}
		for range idle {
			if <-closed {
				return
			}
		}
		t.Error("both idle connections are still open with the limit of 2 reached")
	})
	t.Run("idle timeout", func(t *testing.T) {
		kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_IDLE_TIMEOUT=100ms")
		if c := idleConn(t, kg.api); !closedByServer(c) {
			t.Error("an idle connection outlived KEYGATE_IDLE_TIMEOUT")
		}
	})
}

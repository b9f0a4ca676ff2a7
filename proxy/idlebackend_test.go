package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// idleBackend is a real HTTP/1.1 backend on a loopback port that treats
// idle keep-alive connections the way real servers do, deterministically:
// a request that arrives on a connection idle for Idle or longer is dropped
// unread (the connection is closed, as a server whose idle timer fired just
// then would), and with Active it also closes idle connections itself when
// Idle has passed. It records every request it read, by body.
type idleBackend struct {
	Idle   time.Duration
	Active bool // close idle connections on a timer too
	// ActiveConns, when > 0, limits Active to the first ActiveConns
	// connections; later ones are only dropped lazily.
	ActiveConns int
	KeepAlive   string // Keep-Alive header on answers; "" none
	// DieAfterRead, when set, makes the backend read a request whose body
	// it returns true for and close the connection without answering.
	DieAfterRead func(body string) bool

	ln     net.Listener
	closed chan time.Duration // the idle time of each connection closed idle

	mu      sync.Mutex
	seen    map[string]int
	dropped int // requests dropped unread
	conns   int
}

func startIdleBackend(t testing.TB, b *idleBackend) *idleBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.ln, b.seen, b.closed = ln, map[string]int{}, make(chan time.Duration, 1<<12)
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
			b.mu.Lock()
			b.conns++
			active := b.Active && (b.ActiveConns == 0 || b.conns <= b.ActiveConns)
			b.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); b.serve(c, active) }()
		}
	}()
	return b
}

func (b *idleBackend) URL() string { return "http://" + b.ln.Addr().String() }

func (b *idleBackend) serve(c net.Conn, active bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	var answered time.Time
	for {
		if active && !answered.IsZero() {
			c.SetReadDeadline(answered.Add(b.Idle))
		}
		_, err := br.Peek(1)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				b.closed <- time.Since(answered)
			}
			return
		}
		if !answered.IsZero() && time.Since(answered) >= b.Idle {
			b.mu.Lock()
			b.dropped++
			b.mu.Unlock()
			b.closed <- time.Since(answered)
			return // unread: the server had given up on this connection
		}
		c.SetReadDeadline(time.Time{})
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.seen[string(body)]++
		b.mu.Unlock()
		if b.DieAfterRead != nil && b.DieAfterRead(string(body)) {
			return
		}
		const answer = `{"message":"License valid","code":0}`
		head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(answer)) + "\r\n"
		if b.KeepAlive != "" {
			head += "Keep-Alive: " + b.KeepAlive + "\r\n"
		}
		if _, err := io.WriteString(c, head+"\r\n"+answer); err != nil {
			return
		}
		answered = time.Now()
	}
}

// stats returns the requests read more than once, those dropped unread,
// and the connections accepted.
func (b *idleBackend) stats() (dups, dropped, conns int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.seen {
		if n > 1 {
			dups += n - 1
		}
	}
	return dups, b.dropped, b.conns
}

func (b *idleBackend) times(body string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[body]
}

// licenseN is a distinct valid license key per n.
func licenseN(n int) string { return fmt.Sprintf("LIC-%020d", n) }

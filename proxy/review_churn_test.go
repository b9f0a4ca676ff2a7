package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientChurnNoCrossAnswers: many clients at once through one small
// pool, some giving up at once or mid-exchange, against a backend that
// now and then adds stray bytes after an answer (a body longer than its
// length, a second answer), closes a connection, or cuts an answer short.
// Every answer a client gets is the one to its own request, never another
// client's or a stray one; every connection slot is given back, and no
// goroutine is left once the pool is closed.
func TestClientChurnNoCrossAnswers(t *testing.T) {
	b := startRawBackend(t, func(conn, i int, req *http.Request) ([]byte, []byte) {
		own := okAnswer(`{"for":"` + req.URL.Path + `"}`)
		switch (conn*7 + i) % 6 {
		case 1:
			return append(own, okAnswer(`{"for":"stray"}`)...), nil
		case 2:
			return append(own, "EXTRA"...), nil
		case 3:
			return []byte("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"for\":\"stray"), []byte{} // cut, then closed
		}
		return own, nil
	})
	// the cut answers end when the backend closes them, after goOn
	go func() {
		for {
			select {
			case b.goOn <- struct{}{}:
			case <-t.Context().Done():
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case <-b.sent:
			case <-t.Context().Done():
				return
			}
		}
	}()
	before := runtime.NumGoroutine()
	tr := NewUpstreamTransport(TransportOptions{Timeout: 20 * time.Second})
	const clients, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				ctx, cancel := context.WithCancel(context.Background())
				if i%5 == 0 {
					cancel() // gave up before anything was sent
				} else if i%5 == 1 {
					go cancel() // gives up at some point of the exchange
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL()+path, strings.NewReader(`{}`))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					cancel()
					continue // a cut answer, a closed connection, a cancel: an error, never another's answer
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				if err != nil {
					continue
				}
				if want := `{"for":"` + path + `"}`; string(body) != want {
					errs <- fmt.Errorf("answer to %s = %q, want %s", path, body, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tr.CloseIdleConnections()
	tr.mu.Lock()
	for _, p := range tr.pools { // a slot never given back would shrink the pool for good
		p.mu.Lock()
		if p.open != 0 || len(p.waiters) != 0 {
			t.Errorf("pool after every answer was closed and the idle ones too: %d open, %d waiting, want 0 and 0", p.open, len(p.waiters))
		}
		p.mu.Unlock()
	}
	tr.mu.Unlock()
	b.ln.Close()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before+2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines = %d after closing the pool, want at most %d", runtime.NumGoroutine(), before+2)
		}
	}
}

// TestRoundTripBodyOfUnknownLength: a client request whose ContentLength
// is 0 with a body has a length net/http calls unknown; RoundTrip sends
// the body it read, framed by its own Content-Length, and the backend
// reads exactly that body.
func TestRoundTripBodyOfUnknownLength(t *testing.T) {
	b := startRawBackend(t, func(conn, i int, req *http.Request) ([]byte, []byte) { return okAnswer(`{}`), nil })
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodPost, b.URL()+"/x", io.MultiReader(strings.NewReader(`{"a":1}`)))
	if req.ContentLength != 0 {
		t.Fatalf("ContentLength = %d, want 0 (unknown)", req.ContentLength)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip = %v, want the answer", err)
	}
	resp.Body.Close()
	if _, reqs, _ := b.seen(); len(reqs) != 1 || reqs[0].body != `{"a":1}` {
		t.Errorf("backend read %+v, want one request with the body", reqs)
	}
}

// TestClientContextEndsAfterHead: the request's context ends just after
// the answer's head was read, as the exchange sets the body's deadline;
// the end must not be lost under that deadline (the body read would then
// wait for the backend, up to the timeout): the exchange fails with the
// context's error and its connection is closed.
func TestClientContextEndsAfterHead(t *testing.T) {
	b := startRawBackend(t, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 {
			return []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"), nil // the rest never comes
		}
		return okAnswer(`{}`), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: time.Hour})
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: the body's comes from the clock
	defer cancel()
	tr.now = func() time.Time {
		if pc, _, _, ok := runtime.Caller(1); ok && strings.HasSuffix(runtime.FuncForPC(pc).Name(), ".exchange") {
			cancel() // the client goes away right as the body's deadline is set
		}
		return time.Now()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL()+"/x", nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RoundTrip whose context ended after the head = %v, want context.Canceled", err)
	}
}

package proxy

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// recordRelay sits between keygate and a TLS backend and passes TLS 1.2
// records on whole, except that it writes the second application data
// record of the first connection together with the first one, cut after
// its first bytes, and holds the rest of it until keygate sends its next
// request: the start of a record keygate already read into TLS, beyond the
// kernel peek's sight, when the first answer ends.
type recordRelay struct {
	ln      net.Listener
	backend string
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startRecordRelay(t *testing.T, backend string) *recordRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordRelay{ln: ln, backend: backend}
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, s)
			r.mu.Unlock()
			asked := make(chan struct{}, 1) // keygate sent application data after the hold began
			held := make(chan struct{})
			gone := make(chan struct{}) // keygate's side ended
			r.wg.Add(2)
			go func() {
				defer r.wg.Done()
				defer close(gone)
				defer s.Close()
				buf := make([]byte, 32<<10)
				holding := false
				for {
					k, err := c.Read(buf)
					if k > 0 {
						select {
						case <-held:
							if !holding {
								holding = true
								asked <- struct{}{}
							}
						default:
						}
						if _, err := s.Write(buf[:k]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func(first bool) {
				defer r.wg.Done()
				defer c.Close()
				app := 0
				var pending []byte
				for {
					var hdr [5]byte
					if _, err := io.ReadFull(s, hdr[:]); err != nil {
						return
					}
					rec := make([]byte, 5+(int(hdr[3])<<8|int(hdr[4])))
					copy(rec, hdr[:])
					if _, err := io.ReadFull(s, rec[5:]); err != nil {
						return
					}
					if hdr[0] == 23 {
						app++
					}
					switch {
					case first && hdr[0] == 23 && app == 1:
						pending = rec // wait for the next record to go with it
						continue
					case first && hdr[0] == 23 && app == 2:
						if _, err := c.Write(append(pending, rec[:8]...)); err != nil {
							return
						}
						close(held)
						select {
						case <-asked:
						case <-gone:
							return
						}
						rec = rec[8:]
					}
					if _, err := c.Write(rec); err != nil {
						return
					}
				}
			}(n == 1)
		}
	}()
	return r
}

// TestClientTLSNeverReusesAfterPartialRecord: the start of a TLS record
// beyond the answer, already read into TLS's buffer but not yet
// decryptable, is not something a read with a past deadline returns, nor
// anything the kernel peek can see; a connection holding one is not
// reused, or the next client would read what that record carries.
func TestClientTLSNeverReusesAfterPartialRecord(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	config := srv.TLS.Clone()
	config.MaxVersion = tls.VersionTLS12 // records of application data tell themselves apart
	const first, second = `{"n":1}`, `{"n":2}`
	b := startRaw(t, config, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 && i == 1 {
			return okAnswer(first), okAnswer(`{"n":"smuggled"}`)
		}
		return okAnswer(second), nil
	})
	relay := startRecordRelay(t, b.ln.Addr().String())
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second, CAPEM: caPEM})
	t.Cleanup(tr.CloseIdleConnections)
	_, port, _ := net.SplitHostPort(relay.ln.Addr().String())
	base := "https://127.0.0.1:" + port
	go func() { b.goOn <- struct{}{} }() // the unasked answer right after the first
	if got, err := getVia(tr, base, "/one"); err != nil || got != first {
		t.Fatalf("first answer = %q, %v, want %s", got, err, first)
	}
	if got, err := getVia(tr, base, "/two"); err != nil || got != second {
		t.Errorf("second answer = %q, %v, want %s", got, err, second)
	}
}

// TestClientTLSClosedWhileIdle: a TLS backend that ends an idle connection
// (close_notify, then FIN) is not written to: the next request goes, whole
// and once, on a new connection.
func TestClientTLSClosedWhileIdle(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	const first, second = `{"n":1}`, `{"n":2}`
	b := startRaw(t, srv.TLS, func(conn, i int, _ *http.Request) ([]byte, []byte) {
		if conn == 1 && i == 1 {
			return okAnswer(first), []byte{} // then close, when let go
		}
		return okAnswer(second), nil
	})
	tr := NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second, CAPEM: caPEM})
	t.Cleanup(tr.CloseIdleConnections)
	base := "https://" + b.ln.Addr().String()
	if got, err := getVia(tr, base, "/one"); err != nil || got != first {
		t.Fatalf("first answer = %q, %v, want %s", got, err, first)
	}
	b.goOn <- struct{}{}
	<-b.sent
	waitIdleSeen(t, tr)
	if got, err := getVia(tr, base, "/two"); err != nil || got != second {
		t.Errorf("second answer = %q, %v, want %s", got, err, second)
	}
	if _, reqs, _ := b.seen(); len(reqs) != 2 || reqs[1].conn != 2 {
		t.Errorf("backend saw requests %+v, want the second once, on connection 2", reqs)
	}
}

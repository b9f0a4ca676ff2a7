package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitedServer serves g on a listener of cl, and counts the connections
// the server holds open at once.
type limitedServer struct {
	url  string
	mu   sync.Mutex
	open int
	peak int
	idle chan struct{} // one value per connection that went idle
}

func serveLimited(t *testing.T, g *gateway, cl *ConnLimiter) *limitedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &limitedServer{url: "http://" + ln.Addr().String(), idle: make(chan struct{}, 16)}
	srv := &http.Server{Handler: g, ConnState: func(c net.Conn, st http.ConnState) {
		cl.ConnState(c, st)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st {
		case http.StateNew:
			s.open++
			s.peak = max(s.peak, s.open)
		case http.StateClosed, http.StateHijacked:
			s.open--
		case http.StateIdle:
			s.idle <- struct{}{}
		}
	}}
	go srv.Serve(ContractListener(cl.Listener(ln)))
	t.Cleanup(func() { srv.Close() })
	return s
}

// getOn sends a get-key request on its own transport and returns the
// status, or -1 when the exchange failed.
func getOn(tr *http.Transport, url string) int {
	req, _ := http.NewRequest("POST", url+"/get-key", strings.NewReader(getBody(testKey)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testTokens["global"])
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body) // read to the end, or the client drops the connection
	resp.Body.Close()
	return resp.StatusCode
}

// TestConnLimitWaitsInAccept holds two connections busy with a limit of two:
// a third client is not served (Accept waits) until one of them is done.
func TestConnLimitWaitsInAccept(t *testing.T) {
	g := newGateway(t)
	arrived, release := make(chan struct{}, 3), make(chan struct{})
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"License valid","code":0}`))
	})
	cl, err := NewConnLimiter(2)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	cl.onWait = func() { waiting <- struct{}{} }
	s := serveLimited(t, g, cl)
	statuses := make(chan int, 3)
	for range 3 {
		tr := &http.Transport{DisableKeepAlives: true}
		t.Cleanup(tr.CloseIdleConnections)
		go func() { statuses <- getOn(tr, s.url) }()
	}
	<-arrived
	<-arrived
	select {
	case <-waiting:
	case <-arrived:
		t.Errorf("a third connection was served while both slots were busy")
	}
	close(release)
	for range 3 {
		if got := <-statuses; got != 200 {
			t.Errorf("status = %d, want 200 once a slot is free", got)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peak > 2 {
		t.Errorf("server held %d connections at once, want at most 2", s.peak)
	}
}

// TestConnLimitEvictsIdle fills the limit with idle keep-alive connections:
// a new client is served at once, the idle connection oldest closed for it.
func TestConnLimitEvictsIdle(t *testing.T) {
	g := newGateway(t)
	cl, err := NewConnLimiter(2)
	if err != nil {
		t.Fatal(err)
	}
	s := serveLimited(t, g, cl)
	var idlers []*http.Transport
	for range 2 {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		idlers = append(idlers, tr)
		if got := getOn(tr, s.url); got != 200 {
			t.Fatalf("status = %d, want 200", got)
		}
		<-s.idle
	}
	cl.onWait = func() {
		t.Errorf("Accept waited for a slot while idle connections held them all")
		for _, tr := range idlers { // let the test end
			tr.CloseIdleConnections()
		}
	}
	tr := &http.Transport{DisableKeepAlives: true}
	if got := getOn(tr, s.url); got != 200 {
		t.Errorf("status with the limit full of idle connections = %d, want 200", got)
	}
	if got := cl.Open(); got > 2 {
		t.Errorf("Open() = %d, want at most 2", got)
	}
}

func TestNewConnLimiterRejects(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := NewConnLimiter(n); err == nil {
			t.Errorf("NewConnLimiter(%d) = nil error, want one", n)
		}
	}
}

// TestConnLimitWakesOnIdle fills a limit of one with a busy connection: a
// second client waits in Accept, then is served as soon as the first
// connection goes idle, which is closed for it.
func TestConnLimitWakesOnIdle(t *testing.T) {
	g := newGateway(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
			<-release
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"License valid","code":0}`))
	})
	cl, err := NewConnLimiter(1)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	cl.onWait = func() { waiting <- struct{}{} }
	s := serveLimited(t, g, cl)
	busy := &http.Transport{} // keeps its connection open once done
	t.Cleanup(busy.CloseIdleConnections)
	first := make(chan int, 1)
	go func() { first <- getOn(busy, s.url) }()
	<-arrived
	second := make(chan int, 1)
	// a guard against a hang, not a measure
	go func() {
		second <- getOn(&http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second}, s.url)
	}()
	<-waiting
	close(release)
	if got := <-first; got != 200 {
		t.Errorf("first = %d, want 200", got)
	}
	if got := <-second; got != 200 {
		t.Errorf("second = %d, want 200 once the first connection went idle", got)
	}
}

package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// activateVia sends activation n through g and returns the status.
func activateVia(t *testing.T, g *gateway, n int) int {
	t.Helper()
	return g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(licenseN(n))}).status
}

func gatewayTo(t *testing.T, b *idleBackend, o TransportOptions) (*gateway, *UpstreamTransport) {
	t.Helper()
	tr := NewUpstreamTransport(o)
	t.Cleanup(tr.CloseIdleConnections)
	g := newGateway(t, withUpstreamURL(b.URL()), func(o *Options) { o.Transport = tr })
	return g, tr
}

// TestUpstreamRetiresIdleConnections: a backend drops a request that
// arrives on a connection it has let idle for its timeout. keygate retires
// connections before that, whether it learns the timeout from its setting,
// from the backend's Keep-Alive hint, or from a connection the backend
// closed: no request is dropped, none fails, none is read twice. The test
// waits at least the backend's timeout between requests, so a slow machine
// only makes keygate's side surer.
func TestUpstreamRetiresIdleConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		backend *idleBackend
		opt     TransportOptions
		learn   bool // wait for one connection closed by the backend first
		sends   int
	}{
		{"setting", &idleBackend{Idle: 100 * time.Millisecond}, TransportOptions{IdleTimeout: 50 * time.Millisecond}, false, 5},
		{"hint", &idleBackend{Idle: time.Second, KeepAlive: "timeout=1, max=1000"}, TransportOptions{}, false, 2},
		{"learned", &idleBackend{Idle: 100 * time.Millisecond, Active: true, ActiveConns: 1}, TransportOptions{}, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startIdleBackend(t, tt.backend)
			g, tr := gatewayTo(t, b, tt.opt)
			if got := activateVia(t, g, 0); got != 200 {
				t.Fatalf("first activation = %d, want 200", got)
			}
			if tt.learn {
				<-b.closed // the backend closed the idle connection
				for deadline := time.Now().Add(5 * time.Second); tr.learned.Load() == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("keygate did not see the backend close an idle connection")
					}
				}
			}
			for i := 1; i <= tt.sends; i++ {
				time.Sleep(b.Idle + b.Idle/10) // idle past the backend's timeout
				if got := activateVia(t, g, i); got != 200 {
					t.Errorf("activation %d after %s idle = %d, want 200", i, b.Idle, got)
				}
			}
			if dups, dropped, _ := b.stats(); dups != 0 || dropped != 0 {
				t.Errorf("backend read %d requests twice and dropped %d unread, want 0 and 0", dups, dropped)
			}
			if got := tr.retired.Load(); got == 0 && tt.name != "setting" { // the pool itself drops what IdleTimeout retires
				t.Errorf("retired = %d, want > 0", got)
			}
		})
	}
}

// TestUpstreamKeepAliveRace sends requests at intervals that race a backend
// closing connections idle for 50ms: none fails and none reaches the backend
// twice. The backend's first close teaches keygate its timeout; from then on
// every interval is at least 9/10 of it, past the 3/4 at which keygate
// retires a connection, so keygate never offers the backend a connection it
// may be closing, however slow the machine.
func TestUpstreamKeepAliveRace(t *testing.T) {
	t.Parallel()
	const idle = 50 * time.Millisecond
	b := startIdleBackend(t, &idleBackend{Idle: idle, Active: true})
	g, tr := gatewayTo(t, b, TransportOptions{})
	if got := activateVia(t, g, 0); got != 200 {
		t.Fatalf("first activation = %d, want 200", got)
	}
	<-b.closed
	for deadline := time.Now().Add(5 * time.Second); tr.learned.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("keygate did not see the backend close an idle connection")
		}
	}
	failed := 0
	const n = 30
	for i := 1; i <= n; i++ {
		time.Sleep(idle*9/10 + time.Duration(i%5)*idle/20) // 45 to 65ms: the backend's timer and the request race
		if activateVia(t, g, i) != 200 {
			failed++
		}
	}
	dups, dropped, conns := b.stats()
	if failed != 0 || dups != 0 {
		t.Errorf("%d of %d requests failed and %d reached the backend twice, want 0 and 0", failed, n, dups)
	}
	t.Logf("%d requests, %d connections, %d dropped unread by the backend, %d replays", n+1, conns, dropped, tr.replays.Load())
}

// TestUpstreamNeverReplaysWhatWasSent: a backend that reads an activation
// and dies without answering gets it once; the client gets a contract 500.
func TestUpstreamNeverReplaysWhatWasSent(t *testing.T) {
	t.Parallel()
	victim := activateBody(licenseN(7))
	b := startIdleBackend(t, &idleBackend{Idle: time.Hour, DieAfterRead: func(body string) bool { return body == victim }})
	g, tr := gatewayTo(t, b, TransportOptions{})
	if got := activateVia(t, g, 6); got != 200 { // a pooled connection to reuse
		t.Fatalf("first activation = %d, want 200", got)
	}
	if got := activateVia(t, g, 7); got != 500 {
		t.Errorf("activation the backend read and never answered = %d, want 500", got)
	}
	if got := b.times(victim); got != 1 {
		t.Errorf("backend read the activation %d times, want 1: a request that was written is never replayed", got)
	}
	if got := tr.replays.Load(); got != 0 {
		t.Errorf("replays = %d, want 0", got)
	}
}

// TestUpstreamDeadConnectionNotWritten: once the backend's FIN has arrived
// on a pooled connection, keygate writes nothing on it and the transport
// sends the request on a new one.
func TestUpstreamDeadConnectionNotWritten(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "answer\n")
		c.Close() // the backend's idle timer fires
		got <- line
	}()
	tr := NewUpstreamTransport(TransportOptions{})
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tr.wrap(raw)
	defer c.Close()
	if _, err := io.WriteString(c, "request 1\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "answer\n" {
		t.Fatalf("answer = %q, %v", line, err)
	}
	<-got
	for deadline := time.Now().Add(5 * time.Second); !c.peerClosed(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the backend's FIN never showed")
		}
	}
	before := c.written.Load()
	n, err := io.WriteString(c, "request 2\n")
	if n != 0 || !errors.Is(err, errNotSent) || c.written.Load() != before {
		t.Errorf("Write on a connection the backend closed = %d, %v, want 0, errNotSent and nothing written", n, err)
	}
}

// TestKeepAliveHint reads the timeout of Keep-Alive answers, ignoring
// what makes no sense.
func TestKeepAliveHint(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"timeout=5", 5 * time.Second},
		{"timeout=5, max=1000", 5 * time.Second},
		{"max=10, Timeout = 2", 2 * time.Second},
		{"timeout=0", 0},
		{"timeout=-3", 0},
		{"timeout=abc", 0},
		{"timeout=99999", 0},
		{"", 0},
	}
	for _, tt := range tests {
		c := &upConn{}
		c.hint(tt.in)
		if got := time.Duration(c.hinted.Load()); got != tt.want {
			t.Errorf("hint(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestLearnIdleTimeout: the shortest close counts at once, longer ones
// slowly.
func TestLearnIdleTimeout(t *testing.T) {
	tr := NewUpstreamTransport(TransportOptions{})
	steps := []struct {
		seen, want time.Duration
	}{
		{2 * time.Second, 2 * time.Second},
		{time.Second, time.Second},
		{9 * time.Second, 2 * time.Second}, // 1s + (9s-1s)/8
	}
	for _, s := range steps {
		tr.learn(s.seen)
		if got := time.Duration(tr.learned.Load()); got != s.want {
			t.Errorf("learn(%s) = %s, want %s", s.seen, got, s.want)
		}
	}
	c := &upConn{}
	c.hint("timeout=1")
	if got := tr.retireAfter(c); got != 750*time.Millisecond {
		t.Errorf("retireAfter = %s, want 750ms (3/4 of the shortest)", got)
	}
	now := time.Now()
	tr.now = func() time.Time { return now.Add(learnTTL + time.Second) }
	if got := tr.retireAfter(&upConn{}); got != defaultUpstreamIdle {
		t.Errorf("retireAfter %s after the last close = %s, want %s: learnt timeouts expire", learnTTL, got, defaultUpstreamIdle)
	}
	tr.learn(5 * time.Second) // after expiry a new observation counts at once
	if got := time.Duration(tr.learned.Load()); got != 5*time.Second {
		t.Errorf("learn(5s) after expiry = %s, want 5s", got)
	}
}

// TestUpstreamLearnsFromDroppedRequest: a load balancer that forgets idle
// flows without a word drops the first request sent after its timeout (it
// was written: keygate cannot resend it), and keygate learns the timeout
// from it; later requests after as long an idle time get new connections.
func TestUpstreamLearnsFromDroppedRequest(t *testing.T) {
	t.Parallel()
	b := startIdleBackend(t, &idleBackend{Idle: 100 * time.Millisecond})
	g, tr := gatewayTo(t, b, TransportOptions{})
	if got := activateVia(t, g, 0); got != 200 {
		t.Fatalf("first activation = %d, want 200", got)
	}
	time.Sleep(b.Idle + b.Idle/10)
	if got := activateVia(t, g, 1); got != 500 {
		t.Fatalf("activation on a silently dropped connection = %d, want 500 (written, so never resent)", got)
	}
	wait := time.Duration(tr.learned.Load())
	if wait < b.Idle {
		t.Fatalf("learned %s from the dropped request, want at least the %s it had been idle", wait, b.Idle)
	}
	for i := 2; i < 5; i++ {
		time.Sleep(wait) // as idle as the dropped one was
		if got := activateVia(t, g, i); got != 200 {
			t.Errorf("activation %d = %d, want 200", i, got)
		}
	}
	if dups, dropped, _ := b.stats(); dups != 0 || dropped != 1 {
		t.Errorf("backend read %d requests twice and dropped %d, want 0 and 1", dups, dropped)
	}
}

// BenchmarkServeHTTPPlainPool is BenchmarkServeHTTP over the plain
// http.Transport keygate used before UpstreamTransport: the difference is
// the price of retirement, the kernel peek and the replay bookkeeping.
func BenchmarkServeHTTPPlainPool(b *testing.B) {
	g := newGateway(b, func(o *Options) { o.Transport = newHTTPTransport(2*time.Second, nil) })
	for _, r := range g.policy.Routes {
		for _, l := range r.Limits {
			l.Rate, l.Burst = 1<<30, 1<<30
		}
	}
	benchActivate(b, g)
}

// FuzzKeepAliveHint feeds the backend's Keep-Alive header, which keygate
// does not control, to the hint parser: it never panics and keeps a hint
// only between one second and an hour.
func FuzzKeepAliveHint(f *testing.F) {
	for _, s := range []string{"timeout=5", "timeout=5, max=100", "max=1,timeout=", "timeout=99999999999999999999", "=,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c := &upConn{}
		c.hint(v)
		if h := time.Duration(c.hinted.Load()); h != 0 && (h < time.Second || h > time.Hour) {
			t.Errorf("hint(%q) = %s, want 0 or 1s to 1h", v, h)
		}
	})
}

// TestWatchUpstream exports the transport's counts.
func TestWatchUpstream(t *testing.T) {
	tr := NewUpstreamTransport(TransportOptions{})
	tr.retired.Add(3)
	tr.replays.Add(2)
	m := NewMetrics()
	m.WatchUpstream(tr)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if len(f.GetMetric()) == 1 && f.GetMetric()[0].GetCounter() != nil {
			got[f.GetName()] = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{"keygate_upstream_retired_total": 3, "keygate_upstream_resent_total": 2} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

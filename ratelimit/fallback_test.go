package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakePrimary admits everything, or fails with err; block, when not nil,
// holds each call until it is closed.
type fakePrimary struct {
	mu    sync.Mutex
	err   error
	block chan struct{}
	calls atomic.Int64
}

func (p *fakePrimary) Allow(ctx context.Context, reqs []Request, res []Result) (bool, error) {
	p.calls.Add(1)
	p.mu.Lock()
	err, block := p.err, p.block
	p.mu.Unlock()
	if block != nil {
		<-block
	}
	if err != nil {
		return false, err
	}
	for i := range reqs {
		res[i] = Result{Allowed: true, Remaining: 99}
	}
	return true, nil
}

func (p *fakePrimary) set(err error, block chan struct{}) {
	p.mu.Lock()
	p.err, p.block = err, block
	p.mu.Unlock()
}

// testClock is a hand-driven time.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var oneRule = []Request{{Key: "k", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1000}}}

// TestFallbackBreaker walks the breaker through a failure, cooldowns that
// double up to the cap, a single trial at a time and the recovery.
func TestFallbackBreaker(t *testing.T) {
	p := &fakePrimary{}
	var states []bool
	f, err := NewFallback(p, NewMemory(), FallbackOptions{TrialWait: time.Hour, OnStateChange: func(d bool) { states = append(states, d) }})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Unix(1e9, 0)}
	f.now = clock.Now
	allow := func() {
		t.Helper()
		if ok, err := f.Allow(context.Background(), oneRule, make([]Result, 1)); !ok || err != nil {
			t.Fatalf("Allow = %v, %v, want true, nil", ok, err)
		}
	}
	wantCalls := func(n int64) {
		t.Helper()
		if got := p.calls.Load(); got != n {
			t.Fatalf("primary called %d times, want %d", got, n)
		}
	}

	allow()
	wantCalls(1)
	p.set(errors.New("down"), nil)
	allow() // fails, answered locally
	wantCalls(2)
	if !f.Degraded() {
		t.Fatal("Degraded = false after a failure")
	}
	for _, cooldown := range []time.Duration{500 * time.Millisecond, time.Second, time.Second, time.Second, time.Second, time.Second} {
		calls := p.calls.Load()
		clock.Advance(cooldown - time.Millisecond)
		for range 10 {
			allow()
		}
		wantCalls(calls) // the breaker is open
		clock.Advance(time.Millisecond)
		allow() // the trial, which fails
		wantCalls(calls + 1)
	}

	// While a trial is under way, other requests wait for its outcome and
	// then ask the primary, which is back: none is decided locally.
	p.set(nil, make(chan struct{}))
	clock.Advance(5 * time.Second)
	done := make(chan struct{})
	go func() { tryAllow(t, f); close(done) }()
	for p.calls.Load() != 9 {
		time.Sleep(time.Millisecond)
	}
	waited := make(chan struct{})
	go func() { tryAllow(t, f); close(waited) }()
	for deadline := time.Now().Add(5 * time.Second); f.waiting.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("a request during the trial did not wait for it")
			break
		}
	}
	wantCalls(9)
	close(p.block)
	<-done
	<-waited
	if f.Degraded() {
		t.Fatal("Degraded = true after a successful trial")
	}
	wantCalls(10) // the waiting request asked the primary
	p.set(nil, nil)
	allow()
	wantCalls(11)

	if diff := cmp.Diff([]bool{true, false}, states); diff != "" {
		t.Errorf("OnStateChange calls (-want +got):\n%s", diff)
	}
	want := FallbackStats{Errors: 7, Trips: 1, Fallbacks: 7 + 60}
	if diff := cmp.Diff(want, f.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

// TestFallbackModes checks each mode's answer while the primary fails, both
// for the failing call and while the breaker is open.
func TestFallbackModes(t *testing.T) {
	down := errors.New("down")
	l := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	reqs := []Request{{Key: "k", Limit: l}}
	tests := []struct {
		mode    Mode
		allowed []bool // three calls in a row
		err     bool
	}{
		{"", []bool{true, true, false}, false}, // ModeLocal: Memory's decisions
		{ModeLocal, []bool{true, true, false}, false},
		{ModeOpen, []bool{true, true, true}, false},
		{ModeClosed, []bool{false, false, false}, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			p := &fakePrimary{err: down}
			f, err := NewFallback(p, NewMemory(), FallbackOptions{Mode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.allowed {
				res := make([]Result, 1)
				ok, err := f.Allow(context.Background(), reqs, res)
				if ok != want || (err != nil) != tt.err || tt.err && !errors.Is(err, ErrUnavailable) {
					t.Errorf("call %d: Allow = %v, %v, want %v, error %v", i, ok, err, want, tt.err)
				}
				if ok && !res[0].Allowed {
					t.Errorf("call %d: admitted with result %+v", i, res[0])
				}
				if i == 0 && tt.err && !errors.Is(err, down) {
					t.Errorf("call %d: error %v does not wrap the cause", i, err)
				}
			}
			if got := p.calls.Load(); got != 1 {
				t.Errorf("primary called %d times, want 1 (then the breaker opens)", got)
			}
		})
	}
}

// TestFallbackNotPrimaryFault checks that invalid requests and callers'
// cancellations leave the breaker closed.
func TestFallbackNotPrimaryFault(t *testing.T) {
	srv := startRedis(t)
	f, err := NewFallback(newRedis(t, srv, RedisOptions{}), NewMemory(), FallbackOptions{Mode: ModeOpen})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Allow(context.Background(), []Request{{Key: "k"}}, make([]Result, 1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Allow(zero limit) = %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Allow(ctx, oneRule, make([]Result, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow(cancelled) = %v, want context.Canceled", err)
	}
	st := f.Stats()
	st.Calls, st.RoundTrips = 0, 0 // the primary's, counting what it sent
	if f.Degraded() || st != (FallbackStats{}) {
		t.Errorf("Degraded = %v, Stats = %+v, want false and no failure counted", f.Degraded(), st)
	}
}

func TestNewFallbackRejects(t *testing.T) {
	p := &fakePrimary{}
	tests := []struct {
		name           string
		primary, local Limiter
		opt            FallbackOptions
	}{
		{"nil primary", nil, NewMemory(), FallbackOptions{}},
		{"nil local", p, nil, FallbackOptions{}},
		{"unknown mode", p, NewMemory(), FallbackOptions{Mode: "lenient"}},
		{"negative cooldown", p, NewMemory(), FallbackOptions{Cooldown: -1}},
	}
	for _, tt := range tests {
		if _, err := NewFallback(tt.primary, tt.local, tt.opt); err == nil {
			t.Errorf("%s: NewFallback succeeded, want an error", tt.name)
		}
	}
	if _, err := NewFallback(p, nil, FallbackOptions{Mode: ModeOpen}); err != nil {
		t.Errorf("NewFallback(open, no local) = %v, want nil", err)
	}
}

// tryAllow is allow for goroutines: it reports a failure without stopping.
func tryAllow(t *testing.T, f *Fallback) {
	if ok, err := f.Allow(context.Background(), oneRule, make([]Result, 1)); !ok || err != nil {
		t.Errorf("Allow = %v, %v, want true, nil", ok, err)
	}
}

// TestFallbackTrialWaitBounded: a request that arrives during a trial that
// never ends waits at most TrialWait, then is decided locally; so does one
// whose caller gives up first, with the caller's error.
func TestFallbackTrialWaitBounded(t *testing.T) {
	p := &fakePrimary{err: errors.New("down")}
	f, err := NewFallback(p, NewMemory(), FallbackOptions{TrialWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Unix(1e9, 0)}
	f.now = clock.Now
	f.Allow(context.Background(), oneRule, make([]Result, 1)) // trips
	block := make(chan struct{})
	p.set(nil, block)
	clock.Advance(time.Second)
	done := make(chan struct{})
	go func() { tryAllow(t, f); close(done) }() // the trial, held by the primary
	for p.calls.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	if ok, err := f.Allow(context.Background(), oneRule, make([]Result, 1)); !ok || err != nil {
		t.Errorf("Allow during a held trial = %v, %v, want true, nil (local)", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Allow(ctx, oneRule, make([]Result, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow(cancelled) during a trial = %v, want context.Canceled", err)
	}
	if got := p.calls.Load(); got != 2 {
		t.Errorf("primary called %d times, want 2: waiters do not ask it while it is on trial", got)
	}
	close(block)
	<-done
}

// TestFallbackLocalShare: with LocalShare 2, each of two replicas enforces
// half of the limit while the primary is down, so together they admit the
// limit; refunds give back to the same halved buckets.
func TestFallbackLocalShare(t *testing.T) {
	tests := []struct {
		share, burst, want int
	}{
		{0, 10, 20},
		{1, 10, 20},
		{2, 10, 10},
		{2, 11, 10}, // rounded down
		{4, 2, 2},   // never below one per replica: 2 of 4 replicas admit 1 each
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("share%d/burst%d", tt.share, tt.burst), func(t *testing.T) {
			reqs := []Request{{Key: "k", Limit: Limit{Rate: 1, Period: time.Hour, Burst: tt.burst}}}
			admitted := 0
			for range 2 {
				f, err := NewFallback(&fakePrimary{err: errors.New("down")}, NewMemory(), FallbackOptions{LocalShare: tt.share})
				if err != nil {
					t.Fatal(err)
				}
				for range 3 * tt.burst {
					if ok, _ := f.Allow(context.Background(), reqs, make([]Result, 1)); ok {
						admitted++
					}
				}
			}
			if admitted != tt.want {
				t.Errorf("replicas admitted %d of burst %d with LocalShare %d, want %d", admitted, tt.burst, tt.share, tt.want)
			}
		})
	}
	// a refund returns a unit to the halved bucket
	f, err := NewFallback(&fakePrimary{err: errors.New("down")}, NewMemory(), FallbackOptions{LocalShare: 2})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []Request{{Key: "r", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 2}}}
	if ok, _ := f.Allow(context.Background(), reqs, make([]Result, 1)); !ok {
		t.Fatal("first Allow denied")
	}
	if ok, _ := f.Allow(context.Background(), reqs, make([]Result, 1)); ok {
		t.Fatal("second Allow admitted: the halved burst is 1")
	}
	if err := f.Refund(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Allow(context.Background(), reqs, make([]Result, 1)); !ok {
		t.Error("Allow after Refund denied, want the unit back")
	}
}

// BenchmarkFallbackDegraded is a request while the breaker is open between
// trials (the primary is down, the prober is waiting for its cooldown): the
// local limiter's cost and nothing more, however dead Redis is. Compare
// with BenchmarkMemoryAllow.
func BenchmarkFallbackDegraded(b *testing.B) {
	f, err := NewFallback(&fakePrimary{err: errors.New("down")}, NewMemory(), FallbackOptions{Cooldown: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	reqs, res := twoRules(), make([]Result, 2)
	f.Allow(context.Background(), reqs, res) // trips
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := f.Allow(context.Background(), reqs, res); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

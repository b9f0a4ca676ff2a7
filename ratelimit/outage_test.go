package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redisconn"
)

// slack is what the race detector may add to a call bounded by the Redis
// timeout. A machine starved by other jobs may add more; stallMeter
// measures that, so that the bound stays tight where the machine is idle.
const slack = 100 * time.Millisecond

// stallMeter measures how late a ticking goroutine wakes up: for how long
// the machine kept the test from running at all.
type stallMeter struct {
	worst atomic.Int64
	stop  chan struct{}
}

func newStallMeter(t *testing.T) *stallMeter {
	m := &stallMeter{stop: make(chan struct{})}
	t.Cleanup(func() { close(m.stop) })
	go func() {
		const tick = 2 * time.Millisecond
		for {
			start := time.Now()
			select {
			case <-m.stop:
				return
			case <-time.After(tick):
			}
			late := int64(time.Since(start) - tick)
			for old := m.worst.Load(); late > old && !m.worst.CompareAndSwap(old, late); old = m.worst.Load() {
			}
		}
	}()
	return m
}

// within reports whether f returned within d plus the worst stall while
// it ran, and how long it took.
func (m *stallMeter) within(d time.Duration, f func()) (bool, time.Duration) {
	m.worst.Store(0)
	start := time.Now()
	f()
	took := time.Since(start)
	if took <= d {
		return true, took
	}
	time.Sleep(5 * time.Millisecond) // let the meter see a stall at the end
	return took <= d+time.Duration(m.worst.Load()), took
}

// TestFallbackOutage stops Redis under a Fallback, by killing it (calls are
// refused) or pausing it (calls time out), in each mode: every Allow
// returns within about the timeout with the mode's answer, and the breaker
// keeps requests away from Redis until a trial is due.
func TestFallbackOutage(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	for _, failure := range []string{"killed", "paused"} {
		for _, mode := range []Mode{ModeLocal, ModeOpen, ModeClosed} {
			t.Run(failure+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				srv := startRedis(t)
				client := newClient(t, srv)
				hook := &countHook{}
				client.AddHook(hook)
				r := mustRedis(t, client, RedisOptions{Timeout: timeout})
				f, err := NewFallback(r, NewMemory(), FallbackOptions{Mode: mode, Cooldown: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				warmUp(t, f)
				reqs := []Request{{Key: "k", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 3}}}
				stats := f.Stats()

				if failure == "killed" {
					srv.Kill()
				} else {
					srv.Pause()
					t.Cleanup(srv.Resume)
				}
				sent := hook.scripts.Load()
				meter := newStallMeter(t)
				check := func(i int) {
					t.Helper()
					res := make([]Result, 1)
					var ok bool
					var err error
					if in, took := meter.within(timeout+slack, func() { ok, err = f.Allow(ctx, reqs, res) }); !in {
						t.Errorf("call %d took %s, want about %s at most", i, took, timeout)
					}
					switch mode {
					case ModeLocal: // a fresh Memory: its own burst of 3
						if ok != (i < 3) || err != nil {
							t.Errorf("call %d: Allow = %v, %v, want %v, nil", i, ok, err, i < 3)
						}
					case ModeOpen:
						if !ok || err != nil || !res[0].Allowed {
							t.Errorf("call %d: Allow = %v, %v, %+v, want admitted", i, ok, err, res[0])
						}
					case ModeClosed:
						if ok || !errors.Is(err, ErrUnavailable) {
							t.Errorf("call %d: Allow = %v, %v, want false, ErrUnavailable", i, ok, err)
						}
					}
				}
				for i := range 100 {
					check(i)
				}
				if got := hook.scripts.Load() - sent; got != 1 {
					t.Errorf("100 calls in an outage sent %d scripts to Redis, want 1", got)
				}
				if st := f.Stats(); !f.Degraded() || st.Trips-stats.Trips != 1 || st.Errors-stats.Errors != 1 {
					t.Errorf("Degraded = %v, Stats = %+v, want true, 1 more trip and error than %+v", f.Degraded(), st, stats)
				}

				// The prober, not traffic, tries Redis once the cooldown is
				// over; requests meanwhile are answered in the mode.
				deadline := time.Now().Add(patient)
				for f.Stats().Errors-stats.Errors < 2 {
					if time.Now().After(deadline) {
						t.Fatalf("no probe within %s of the outage (Stats %+v)", patient, f.Stats())
					}
					time.Sleep(10 * time.Millisecond)
				}
				check(100)
				if got := hook.scripts.Load() - sent; got != 1 {
					t.Errorf("after the cooldown, %d scripts sent in all, want 1: the prober pings, requests are not trials", got)
				}
			})
		}
	}
}

// TestFallbackRecovers plays two replicas through an outage: shared limits
// before, per-replica limits during, and shared limits again by themselves
// once Redis is back (empty, as a restarted cache would be).
func TestFallbackRecovers(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	replica := func() *Fallback {
		f, err := NewFallback(newRedis(t, srv, RedisOptions{}), NewMemory(), FallbackOptions{Cooldown: 100 * time.Millisecond, MaxCooldown: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	replicas := []*Fallback{replica(), replica()}
	admitted := func(key string) int {
		reqs := []Request{{Key: key, Limit: Limit{Rate: 1, Period: time.Hour, Burst: 4}}}
		n := 0
		for i := range 10 {
			if ok, err := replicas[i%2].Allow(context.Background(), reqs, make([]Result, 1)); err != nil {
				t.Fatal(err)
			} else if ok {
				n++
			}
		}
		return n
	}
	if got := admitted("before"); got != 4 {
		t.Errorf("before the outage, 2 replicas admitted %d, want 4", got)
	}
	srv.Kill()
	if got := admitted("during"); got != 8 {
		t.Errorf("during the outage, 2 replicas admitted %d, want 4 each", got)
	}
	srv.Restart()
	waitHealthy(t, replicas...)
	if got := admitted("after"); got != 4 {
		t.Errorf("after the outage, 2 replicas admitted %d, want 4", got)
	}
}

// warmUp pings f until Redis answered it within its timeout, which a busy
// machine may take a few tries for.
func warmUp(t *testing.T, f *Fallback) {
	t.Helper()
	deadline := time.Now().Add(patient)
	for f.Ping(context.Background()) != nil || f.Degraded() {
		if time.Now().After(deadline) {
			t.Fatalf("Redis did not answer a ping within %s", patient)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealthy sends requests through fs until none is degraded.
func waitHealthy(t *testing.T, fs ...*Fallback) {
	t.Helper()
	reqs := []Request{{Key: "probe", Limit: Limit{Rate: 1000, Period: time.Second, Burst: 1000}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		degraded := 0
		for _, f := range fs {
			f.Allow(context.Background(), reqs, make([]Result, 1))
			if f.Degraded() {
				degraded++
			}
		}
		if degraded == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d limiters still degraded after 10s", degraded, len(fs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFallbackUnreachableAtStart starts with nothing listening: Ping
// answers quickly, requests are served locally, and once Redis appears the
// limiter uses it by itself.
func TestFallbackUnreachableAtStart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	client, err := redisconn.New(redisconn.Config{URL: "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	var mu sync.Mutex
	var states []bool
	f, err := NewFallback(mustRedis(t, client, RedisOptions{Timeout: defaultTimeout}), NewMemory(), FallbackOptions{
		Cooldown:      100 * time.Millisecond,
		OnStateChange: func(d bool) { mu.Lock(); states = append(states, d); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	in, took := newStallMeter(t).within(defaultTimeout+slack, func() { err = f.Ping(context.Background()) })
	if !errors.Is(err, ErrUnavailable) || !in {
		t.Errorf("Ping = %v after %s, want ErrUnavailable within about %s", err, took, defaultTimeout)
	}
	if !f.Degraded() {
		t.Error("Degraded = false after a failed Ping")
	}
	reqs := []Request{{Key: "k", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 2}}}
	var got []bool
	for range 3 {
		ok, err := f.Allow(context.Background(), reqs, make([]Result, 1))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true true false]" {
		t.Errorf("local decisions = %v, want [true true false]", got)
	}

	srv := startRedisAt(t, port)
	waitHealthy(t, f)
	if ok, err := f.Allow(context.Background(), []Request{{Key: "k2", Limit: reqs[0].Limit}}, make([]Result, 1)); !ok || err != nil {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	if n := newClient(t, srv).Exists(context.Background(), "{keygate:}k2").Val(); n != 1 {
		t.Error("the bucket is not in Redis after recovery")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(states) != "[true false]" {
		t.Errorf("OnStateChange calls = %v, want [true false]", states)
	}
}

// TestFallbackRecoveryExact plays the outage: two replicas share a
// Redis that is killed and restarted (empty), or paused and resumed. With no
// traffic at all after Redis returns, both replicas notice it by their
// probes; then 40 requests for a fresh key, 4 at a time across both, are
// admitted exactly the limit.
func TestFallbackRecoveryExact(t *testing.T) {
	t.Parallel()
	for _, failure := range []string{"killed", "paused"} {
		t.Run(failure, func(t *testing.T) {
			t.Parallel()
			srv := startRedis(t)
			var replicas []*Fallback
			for range 2 {
				// patient: a call a busy machine delays must not trip the breaker
				f, err := NewFallback(newRedis(t, srv, RedisOptions{Timeout: 2 * time.Second}), NewMemory(),
					FallbackOptions{Cooldown: 100 * time.Millisecond, MaxCooldown: 400 * time.Millisecond, TrialWait: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(f.Close)
				warmUp(t, f)
				replicas = append(replicas, f)
			}
			limit := Limit{Rate: 1, Period: time.Hour, Burst: 10}
			if failure == "killed" {
				srv.Kill()
			} else {
				srv.Pause()
			}
			for _, f := range replicas { // trip both
				f.Allow(context.Background(), []Request{{Key: "during", Limit: limit}}, make([]Result, 1))
				if !f.Degraded() {
					t.Fatal("Degraded = false with Redis down")
				}
			}
			if failure == "killed" {
				srv.Restart()
			} else {
				srv.Resume()
			}
			back := time.Now()
			deadline := back.Add(patient)
			for replicas[0].Degraded() || replicas[1].Degraded() {
				if time.Now().After(deadline) {
					t.Fatalf("replicas still degraded %s after Redis returned, with no traffic", patient)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("both replicas back on Redis %s after it returned", time.Since(back).Round(time.Millisecond))

			var admitted atomic.Int64
			var wg sync.WaitGroup
			next := make(chan int)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						ok, err := replicas[i%2].Allow(context.Background(), []Request{{Key: "fresh", Limit: limit}}, make([]Result, 1))
						if err != nil {
							t.Errorf("Allow = %v", err)
						}
						if ok {
							admitted.Add(1)
						}
					}
				}()
			}
			for i := range 40 {
				next <- i
			}
			close(next)
			wg.Wait()
			if got := admitted.Load(); got != 10 {
				t.Errorf("after recovery, 2 replicas admitted %d of 40 requests for a fresh key, want exactly 10", got)
			}
		})
	}
}

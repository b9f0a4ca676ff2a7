package ratelimit

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestMemoryRefund checks that a refund gives back exactly the unit a
// reservation took, never more than a full bucket, and nothing for Peek.
func TestMemoryRefund(t *testing.T) {
	l := Limit{Rate: 1, Period: time.Minute, Burst: 3}
	tests := []struct {
		name     string
		consumed int  // units consumed before the refunds
		refunds  int  // refunds given
		peek     bool // the refunded rule is Peek
		want     int  // Remaining of the next Allow
	}{
		{"one back", 2, 1, false, 1},
		{"all back", 3, 3, false, 2},
		{"never above full", 1, 5, false, 2},
		{"empty bucket refunded", 3, 1, false, 0},
		{"peek refunds nothing", 2, 1, true, 0},
		{"nothing consumed", 0, 1, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory()
			fakeClock(m).Store(1)
			ctx := context.Background()
			res := make([]Result, 1)
			for range tt.consumed {
				m.Allow(ctx, []Request{{Key: "k", Limit: l}}, res)
			}
			for range tt.refunds {
				if err := m.Refund(ctx, []Request{{Key: "k", Limit: l, Peek: tt.peek}}); err != nil {
					t.Fatalf("Refund: %v", err)
				}
			}
			ok, _ := m.Allow(ctx, []Request{{Key: "k", Limit: l}}, res)
			if !ok || res[0].Remaining != tt.want {
				t.Errorf("Allow after refunds = %v with %d remaining, want true with %d", ok, res[0].Remaining, tt.want)
			}
		})
	}
}

// TestRefundRejectsInvalid checks that every limiter refuses a rule it
// could not compute.
func TestRefundRejectsInvalid(t *testing.T) {
	srv := startRedis(t)
	bad := []Request{{Key: "k", Limit: Limit{Rate: 0, Period: time.Second, Burst: 1}}}
	for name, l := range map[string]refunder{"memory": NewMemory(), "redis": newRedis(t, srv, RedisOptions{})} {
		if err := l.Refund(context.Background(), bad); err == nil {
			t.Errorf("%s: Refund(rate 0) = nil, want ErrInvalid", name)
		}
	}
}

// TestRedisRefundMatchesMemory feeds the same random sequence of
// reservations and refunds to Memory and Redis: refunds must leave both in
// the same state, decision by decision.
func TestRedisRefundMatchesMemory(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	for _, cache := range []int{-1, 0} {
		t.Run("deny cache "+strconv.Itoa(cache), func(t *testing.T) {
			mem := NewMemory()
			r := newRedis(t, srv, RedisOptions{Prefix: t.Name(), DenyCacheSize: cache})
			rnd := rand.New(rand.NewPCG(7, uint64(cache+2)))
			var widest time.Duration // the widest window holding both limiters' clock reads
			limits := []Limit{
				{Rate: 1, Period: time.Hour, Burst: 3},
				{Rate: 2, Period: time.Hour, Burst: 5},
				{Rate: 1, Period: time.Hour, Burst: 1},
			}
			ctx := context.Background()
			for step := range 300 {
				var reqs []Request
				for k, l := range limits {
					if rnd.IntN(2) == 0 {
						reqs = append(reqs, Request{Key: "k" + strconv.Itoa(k), Limit: l, Shadow: rnd.IntN(6) == 0})
					}
				}
				if rnd.IntN(3) == 0 { // refund what a random earlier request took
					if err := mem.Refund(ctx, reqs); err != nil {
						t.Fatal(err)
					}
					if err := r.Refund(ctx, reqs); err != nil {
						t.Fatalf("step %d: Refund: %v", step, err)
					}
					continue
				}
				agreeStep(t, step, reqs, mem, r, cache == 0, &widest)
			}
		})
	}
}

// TestRedisRefundForgetsDenial checks that a bucket denied, then refunded,
// admits at once on the replica that refunded it instead of repeating the
// cached denial.
func TestRedisRefundForgetsDenial(t *testing.T) {
	srv := startRedis(t)
	r := newRedis(t, srv, RedisOptions{})
	ctx := context.Background()
	reqs := []Request{{Key: "forget", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1}}}
	res := make([]Result, 1)
	if ok, err := r.Allow(ctx, reqs, res); !ok || err != nil {
		t.Fatalf("first Allow = %v, %v, want true, nil", ok, err)
	}
	if ok, _ := r.Allow(ctx, reqs, res); ok {
		t.Fatal("second Allow = true, want a denial (remembered by the deny cache)")
	}
	if err := r.Refund(ctx, reqs); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Allow(ctx, reqs, res); !ok || err != nil {
		t.Errorf("Allow after Refund = %v, %v, want true, nil", ok, err)
	}
}

// TestFallbackRefund checks that refunds go where units were consumed: the
// primary while healthy, the local limiter while degraded in ModeLocal.
func TestFallbackRefund(t *testing.T) {
	srv := startRedis(t)
	primary := newRedis(t, srv, RedisOptions{DenyCacheSize: -1})
	local := NewMemory()
	// a cooldown of an hour: once degraded, Fallback stays so (no probe)
	f, err := NewFallback(primary, local, FallbackOptions{Cooldown: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	res := make([]Result, 1)
	remaining := func(lim Limiter, key string) bool {
		ok, _ := lim.Allow(ctx, []Request{{Key: key, Limit: l, Peek: true}}, res)
		return ok
	}
	for _, tc := range []struct { // in this order: the local case leaves the breaker open
		name string
		lim  Limiter
	}{{"primary", primary}, {"local", local}} {
		name, lim := tc.name, tc.lim
		key := "fb-" + name
		if name == "local" {
			f.failed(false) // degraded: answers come from local
		}
		if ok, _ := f.Allow(ctx, []Request{{Key: key, Limit: l}}, res); !ok {
			t.Fatalf("%s: Allow = false, want true", name)
		}
		if remaining(lim, key) {
			t.Fatalf("%s: bucket not consumed by Fallback.Allow", name)
		}
		if err := f.Refund(ctx, []Request{{Key: key, Limit: l}}); err != nil {
			t.Fatalf("%s: Refund: %v", name, err)
		}
		if !remaining(lim, key) {
			t.Errorf("%s: Fallback.Refund did not reach the limiter that consumed", name)
		}
	}
}

// TestRedisRefundQueue checks that queued refunds reach Redis without an
// Allow to carry them: at once when the queue is full, and when the delay
// runs out (flushRefunds, called here directly).
func TestRedisRefundQueue(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 2 * maxQueuedRefunds}
	// remaining asks a replica without queued refunds what the bucket holds
	observer := newRedis(t, srv, RedisOptions{DenyCacheSize: -1})
	remaining := func(key string) int {
		res := make([]Result, 1)
		if _, err := observer.Allow(ctx, []Request{{Key: key, Limit: l, Peek: true}}, res); err != nil {
			t.Fatal(err)
		}
		return res[0].Remaining
	}
	spend := func(r *Redis, key string, n int) {
		res := make([]Result, 1)
		for range n {
			if ok, err := r.Allow(ctx, []Request{{Key: key, Limit: l}}, res); !ok || err != nil {
				t.Fatalf("Allow = %v, %v, want true", ok, err)
			}
		}
	}
	t.Run("full queue", func(t *testing.T) {
		r := newRedis(t, srv, RedisOptions{RefundDelay: time.Hour})
		spend(r, "full", l.Burst)
		refunds := make([]Request, maxQueuedRefunds)
		for i := range refunds {
			refunds[i] = Request{Key: "full", Limit: l}
		}
		if err := r.Refund(ctx, refunds); err != nil {
			t.Fatal(err)
		}
		if got, want := remaining("full"), maxQueuedRefunds-1; got != want {
			t.Errorf("after %d refunds Remaining = %d, want %d", maxQueuedRefunds, got, want)
		}
	})
	t.Run("delay", func(t *testing.T) {
		r := newRedis(t, srv, RedisOptions{RefundDelay: time.Hour})
		spend(r, "delay", l.Burst)
		if err := r.Refund(ctx, []Request{{Key: "delay", Limit: l}}); err != nil {
			t.Fatal(err)
		}
		admits := func() bool {
			ok, err := observer.Allow(ctx, []Request{{Key: "delay", Limit: l, Peek: true}}, make([]Result, 1))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if admits() {
			t.Fatal("the bucket admits before the delay ran out, want the refund still queued")
		}
		r.flushRefunds()
		if !admits() {
			t.Error("the flushed refund did not reach Redis: the bucket still denies")
		}
	})
}

// holdHook holds the next script call once armed, until released: a
// refund call of its own, caught on its way to Redis.
type holdHook struct {
	armed   atomic.Bool
	started chan struct{} // receives when the held call starts
	release chan struct{} // closed to let it go on
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && h.armed.CompareAndSwap(true, false) {
			h.started <- struct{}{}
			<-h.release
		}
		return next(ctx, cmd)
	}
}

func (h *holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRedisAllowWaitsForRefundInFlight: a refund sent in a call of its own
// (no Allow took it within RefundDelay) is held on its way to Redis; an
// Allow made after the Refund returned must not overtake it, or this
// replica would deny a request the refund made room for. Without the wait
// the Allow reaches Redis while the refund is held and is denied.
func TestRedisAllowWaitsForRefundInFlight(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	hook := &holdHook{started: make(chan struct{}, 1), release: make(chan struct{})}
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1, RefundDelay: time.Nanosecond})
	ctx := context.Background()
	reqs := []Request{{Key: "k", Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1}}}
	res := make([]Result, 1)
	if ok, err := r.Allow(ctx, reqs, res); !ok || err != nil {
		t.Fatalf("first Allow = %v, %v, want the one unit", ok, err)
	}
	hook.armed.Store(true)
	if err := r.Refund(ctx, reqs); err != nil {
		t.Fatal(err)
	}
	<-hook.started // the flush took the refund and is on its way
	go func() {
		time.Sleep(200 * time.Millisecond) // room for an Allow that does not wait to overtake it
		close(hook.release)
	}()
	if ok, err := r.Allow(ctx, reqs, res); !ok || err != nil {
		t.Errorf("Allow after Refund = %v, %v (%+v), want admitted: it overtook the refund in flight", ok, err, res[0])
	}
}

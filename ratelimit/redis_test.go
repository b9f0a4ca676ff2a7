package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestNewRedisRejects(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opt    RedisOptions
	}{
		{"nil client", nil, RedisOptions{}},
		{"brace in prefix", client, RedisOptions{Prefix: "kg{x}:"}},
		{"negative timeout", client, RedisOptions{Timeout: -time.Second}},
	}
	for _, tt := range tests {
		if r, err := NewRedis(tt.client, tt.opt); err == nil {
			t.Errorf("%s: NewRedis = %v, nil, want an error", tt.name, r)
		}
	}
	r, err := NewRedis(client, RedisOptions{})
	if err != nil {
		t.Fatalf("NewRedis(defaults) = %v", err)
	}
	if got, want := r.Key("login:ab"), "{keygate:}login:ab"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

func TestRedisInvalid(t *testing.T) {
	srv := startRedis(t)
	r := newRedis(t, srv, RedisOptions{})
	ok := Limit{Rate: 1, Period: time.Second, Burst: 1}
	tests := []struct {
		name string
		reqs []Request
		res  []Result
	}{
		{"zero limit", []Request{{Key: "a"}}, make([]Result, 1)},
		{"short results", []Request{{Key: "a", Limit: ok}, {Key: "b", Limit: ok}}, make([]Result, 1)},
	}
	for _, tt := range tests {
		if _, err := r.Allow(context.Background(), tt.reqs, tt.res); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Allow = %v, want ErrInvalid", tt.name, err)
		}
	}
	if allowed, err := r.Allow(context.Background(), nil, nil); !allowed || err != nil {
		t.Errorf("Allow(no rules) = %v, %v, want true, nil", allowed, err)
	}
}

// TestRedisReplicasShareBurst is three replicas, each with its own client,
// racing for one bucket: together they admit exactly its burst.
func TestRedisReplicasShareBurst(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	const burst = 10
	l := Limit{Rate: 1, Period: time.Hour, Burst: burst}
	replicas := []*Redis{newRedis(t, srv, RedisOptions{}), newRedis(t, srv, RedisOptions{}), newRedis(t, srv, RedisOptions{})}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 3 * 40 {
		r := replicas[i%3]
		wg.Go(func() {
			<-start
			for range 3 {
				res := make([]Result, 2)
				ok, err := r.Allow(context.Background(), []Request{{Key: "shared", Limit: l}, {Key: "other" + strconv.Itoa(i), Limit: l}}, res)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Errorf("3 replicas admitted %d, want exactly %d", got, burst)
	}
}

// TestRedisKeys checks what lands in Redis: prefixed, hash-tagged keys
// that expire by themselves, written only by admitted, non-Peek rules.
func TestRedisKeys(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	r := mustRedis(t, client, RedisOptions{Prefix: "kg:", DenyCacheSize: -1})
	ctx := context.Background()
	l := Limit{Rate: 10, Period: time.Second, Burst: 2} // em 100ms
	allow := func(reqs ...Request) bool {
		t.Helper()
		ok, err := r.Allow(ctx, reqs, make([]Result, len(reqs)))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	allow(Request{Key: "peek", Limit: l, Peek: true})
	if n := client.Exists(ctx, "{kg:}peek").Val(); n != 0 {
		t.Errorf("a Peek created its bucket")
	}

	allow(Request{Key: "k", Limit: l})
	keys := client.Keys(ctx, "*").Val()
	if diff := cmp.Diff([]string{"{kg:}k"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if ttl := client.PTTL(ctx, "{kg:}k").Val(); ttl <= 0 || ttl > 100*time.Millisecond {
		t.Errorf("PTTL after one = %s, want in (0, 100ms]", ttl)
	}
	allow(Request{Key: "k", Limit: l})
	if ttl := client.PTTL(ctx, "{kg:}k").Val(); ttl <= 100*time.Millisecond || ttl > 200*time.Millisecond {
		t.Errorf("PTTL after two = %s, want in (100ms, 200ms]", ttl)
	}

	before := client.Get(ctx, "{kg:}k").Val()
	if allow(Request{Key: "k", Limit: l}) {
		t.Fatal("third request admitted, want denied")
	}
	allow(Request{Key: "k", Limit: l, Peek: true}, Request{Key: "k2", Limit: l})
	if after := client.Get(ctx, "{kg:}k").Val(); after != before {
		t.Errorf("a denial or a Peek wrote the bucket: %s, was %s", after, before)
	}
	if n := client.Exists(ctx, "{kg:}k2").Val(); n != 0 {
		t.Errorf("a denied request wrote another rule's bucket")
	}

	time.Sleep(250 * time.Millisecond)
	if keys := client.Keys(ctx, "*").Val(); len(keys) != 0 { // KEYS skips expired keys
		t.Errorf("keys %q left after they were full again, want none", keys)
	}
}

// TestRedisOneRoundTrip counts the client's commands and the server's
// EVALSHA calls: one per Allow however many rules, after Ping loaded the
// script; and after SCRIPT FLUSH the script still runs, by EVAL.
func TestRedisOneRoundTrip(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	admin := newClient(t, srv)
	client := newClient(t, srv)
	hook := &countHook{}
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	ctx := context.Background()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rules := range []int{1, 2, 5} {
		reqs := make([]Request, rules)
		for i := range reqs {
			reqs[i] = Request{Key: "k" + strconv.Itoa(i), Limit: Limit{Rate: 1000, Period: time.Second, Burst: 1000}}
		}
		calls, evalsha := hook.n.Load(), commandCalls(t, admin, "evalsha")
		const n = 50
		for range n {
			if _, err := r.Allow(ctx, reqs, make([]Result, rules)); err != nil {
				t.Fatal(err)
			}
		}
		if got := hook.n.Load() - calls; got != n {
			t.Errorf("%d rules: %d Allows sent %d commands, want %d", rules, n, got, n)
		}
		if got := commandCalls(t, admin, "evalsha") - evalsha; got != n {
			t.Errorf("%d rules: %d Allows ran EVALSHA %d times, want %d", rules, n, got, n)
		}
	}

	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	eval := commandCalls(t, admin, "eval")
	if _, err := r.Allow(ctx, []Request{{Key: "k0", Limit: Limit{Rate: 1, Period: time.Second, Burst: 1}}}, make([]Result, 1)); err != nil {
		t.Fatalf("Allow after SCRIPT FLUSH: %v", err)
	}
	if got := commandCalls(t, admin, "eval") - eval; got != 1 {
		t.Errorf("after SCRIPT FLUSH: EVAL ran %d times, want 1", got)
	}
}

// TestRedisDenyCache floods an empty bucket: Redis is asked once, the deny
// cache answers the rest until the bucket admits again.
func TestRedisDenyCache(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	admin := newClient(t, srv)
	ctx := context.Background()
	flood := func(r *Redis, l Limit, n int) (admitted, evalsha int) {
		before := commandCalls(t, admin, "evalsha")
		res := make([]Result, 2)
		for range n {
			ok, err := r.Allow(ctx, []Request{{Key: "flood", Limit: l}, {Key: "other", Limit: l, Shadow: true}}, res)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				admitted++
			} else if res[0].Allowed || res[0].RetryAfter <= 0 || res[0].RetryAfter > l.Period {
				t.Fatalf("denied with %+v", res[0])
			}
		}
		return admitted, commandCalls(t, admin, "evalsha") - before
	}
	hour := Limit{Rate: 1, Period: time.Hour, Burst: 2}

	cached := newRedis(t, srv, RedisOptions{Prefix: "cached:"})
	if err := cached.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	admitted, calls := flood(cached, hour, 1000)
	if admitted != 2 || calls > 3 {
		t.Errorf("with deny cache: 1000 requests admitted %d and ran %d scripts, want 2 and at most 3", admitted, calls)
	}

	uncached := newRedis(t, srv, RedisOptions{Prefix: "uncached:", DenyCacheSize: -1})
	admitted, calls = flood(uncached, hour, 1000)
	if admitted != 2 || calls < 1000 {
		t.Errorf("without deny cache: 1000 requests admitted %d and ran %d scripts, want 2 and 1000", admitted, calls)
	}

	// The cached denial lasts as long as Redis's RetryAfter, no longer.
	fast := Limit{Rate: 1, Period: 50 * time.Millisecond, Burst: 1}
	r := newRedis(t, srv, RedisOptions{Prefix: "fast:"})
	admitted, _ = flood(r, fast, 10)
	time.Sleep(60 * time.Millisecond)
	again, _ := flood(r, fast, 1)
	if admitted != 1 || again != 1 {
		t.Errorf("admitted %d then %d after RetryAfter, want 1 then 1", admitted, again)
	}
}

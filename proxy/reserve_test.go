package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// guessPolicy counts backend 404s per IP: 5 per minute, 5 at once.
const guessPolicy = `routes:
  - name: get
    method: POST
    path: /get-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
    limits:
      - name: key-guessing
        key: [ip]
        on: [404]
        rate: 5
        per: 1m
        burst: 5
`

const guessBurst = 5

// sharedLimiter returns a limiter as `keygate serve` builds it, on its own
// client of srv: Redis behind the fallback.
func sharedLimiter(t *testing.T, srv *redistest.Server, opt ratelimit.RedisOptions) *ratelimit.Fallback {
	t.Helper()
	client, err := redisconn.New(redisconn.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	opt.Timeout = patientRedis
	shared, err := ratelimit.NewRedis(client, opt)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ratelimit.NewFallback(shared, ratelimit.NewMemory(), ratelimit.FallbackOptions{Mode: ratelimit.ModeClosed})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// patientRedis bounds each Redis call in these tests: long, so that a busy
// machine does not turn a slow call into a 500.
const patientRedis = 5 * time.Second

// TestFailureBudgetHoldsUnderConcurrency sends 40 concurrent guesses, half
// to each of two replicas sharing a real Redis, to a backend that answers
// 404 only once the test has seen every request either reach it or be
// refused. At most burst + 1 may reach it. Without reservations (failure
// budgets only peeked before forwarding, charged after) every guess did.
func TestFailureBudgetHoldsUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	pol, err := policy.Parse("guess policy", []byte(guessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	const guesses = 40
	arrived := make(chan struct{}, guesses)
	release := make(chan struct{})
	var replicas [2]*gateway
	for i := range replicas {
		lim := sharedLimiter(t, srv, ratelimit.RedisOptions{})
		replicas[i] = newGateway(t, withPolicy(pol), func(o *Options) { o.Limiter = lim })
		replicas[i].up.set(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"message":"License not found","code":1}`))
		})
	}
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := replicas[i%2]
			req, _ := http.NewRequest("POST", g.srv.URL+"/get-key", strings.NewReader(getBody(testKey)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testTokens["global"])
			resp, err := g.srv.Client().Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	// Release the backend once each guess has either reached it or
	// been answered: no guess can reach it after that.
	var got []int
	reached := 0
	for reached+len(got) < guesses {
		select {
		case <-arrived:
			reached++
		case s := <-statuses:
			got = append(got, s)
		}
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		got = append(got, s)
	}
	count := map[int]int{}
	for _, s := range got {
		count[s]++
	}
	calls := replicas[0].up.calls.Load() + replicas[1].up.calls.Load()
	if calls > guessBurst+1 {
		t.Errorf("%d concurrent guesses reached the backend %d times, want at most burst+1 = %d (answers %v)", guesses, calls, guessBurst+1, count)
	}
	if count[404]+count[429] != guesses {
		t.Errorf("answers %v, want only 404s and 429s", count)
	}
	// the budget is spent: the next guess is refused by either replica
	for _, g := range replicas {
		if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != 429 {
			t.Errorf("guess after the burst = %d, want 429", a.status)
		}
	}
}

// TestFailureBudgetRefund checks that answers the budget does not count
// give their reserved unit back, and counts Redis round trips per request:
// one, whether the answer counts (the reservation stays) or not (its
// refund rides along with the next request's call).
func TestFailureBudgetRefund(t *testing.T) {
	srv := redistest.Start(t)
	pol, err := policy.Parse("guess policy", []byte(guessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	// refunds wait for the next request's call, however slow the machine
	lim := sharedLimiter(t, srv, ratelimit.RedisOptions{RefundDelay: time.Hour})
	done := make(chan struct{}, 1)
	g := newGateway(t, withPolicy(pol), func(o *Options) {
		o.Limiter = lim
		o.Logger = slog.New(doneHandler{done})
	})
	status := 200
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == 200 {
			w.Write([]byte(`{"message":"License valid","code":0}`))
		} else {
			w.Write([]byte(`{"message":"License not found","code":1}`))
		}
	})
	roundTrips := func() int { c := srv.Calls(); return c["evalsha"] + c["eval"] }
	guess := func() int {
		s := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}).status
		<-done // the refund follows the answer: wait for the handler to end
		return s
	}
	before := roundTrips()
	for i := range 3 * guessBurst {
		if got := guess(); got != 200 {
			t.Fatalf("success %d = %d, want 200: successes must not spend the failure budget", i, got)
		}
	}
	if got, want := roundTrips()-before, 3*guessBurst; got != want {
		t.Errorf("Redis round trips for %d successes = %d, want %d (refunds ride along)", 3*guessBurst, got, want)
	}
	status = 404
	before = roundTrips()
	for i := range guessBurst {
		if got := guess(); got != 404 {
			t.Fatalf("failure %d = %d, want 404", i, got)
		}
	}
	if got, want := roundTrips()-before, guessBurst; got != want {
		t.Errorf("Redis round trips for %d counted failures = %d, want %d", guessBurst, got, want)
	}
	if got := guess(); got != 429 {
		t.Errorf("guess past the budget = %d, want 429", got)
	}
}

// allowOnly hides a limiter's Refund: failure budgets are then peeked before
// forwarding and charged after the answer.
type allowOnly struct{ l Limiter }

func (a allowOnly) Allow(ctx context.Context, reqs []ratelimit.Request, res []ratelimit.Result) (bool, error) {
	return a.l.Allow(ctx, reqs, res)
}

// TestFailureBudgetWithoutRefund checks the sequential behaviour with a
// limiter that cannot refund: burst failures reach the backend, then 429.
func TestFailureBudgetWithoutRefund(t *testing.T) {
	pol, err := policy.Parse("guess policy", []byte(guessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(pol), func(o *Options) { o.Limiter = allowOnly{ratelimit.NewMemory()} })
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		w.Write([]byte(`{"message":"License not found","code":1}`))
	})
	for i := range guessBurst + 3 {
		want := 404
		if i >= guessBurst {
			want = 429
		}
		if got := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}).status; got != want {
			t.Errorf("guess %d = %d, want %d", i, got, want)
		}
	}
	if got := g.up.calls.Load(); got != guessBurst {
		t.Errorf("backend reached %d times, want %d", got, guessBurst)
	}
}

// doneHandler signals each access-log line: the handler has ended.
type doneHandler struct{ done chan<- struct{} }

func (h doneHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h doneHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h doneHandler) WithGroup(string) slog.Handler            { return h }
func (h doneHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		h.done <- struct{}{}
	}
	return nil
}

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// queued returns how many calls wait in r's queue.
func queued(r *Redis) int {
	r.batch.mu.Lock()
	defer r.batch.mu.Unlock()
	return len(r.batch.queue)
}

// idle reports whether r has no round trip under way and no call waiting:
// every sender has ended.
func idle(r *Redis) bool {
	r.batch.mu.Lock()
	defer r.batch.mu.Unlock()
	return r.batch.inflight == 0 && len(r.batch.queue) == 0
}

// waitQueued waits until n calls wait in r's queue. It polls a count, so
// it orders nothing by time; patient only bounds a hang.
func waitQueued(t *testing.T, r *Redis, n int) {
	t.Helper()
	for deadline := time.Now().Add(patient); queued(r) != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after %s, want %d", queued(r), patient, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// callOutcome is what one concurrent Allow returned.
type callOutcome struct {
	allowed bool
	res     []Result
	err     error
}

// formBatch makes a batch form for certain: with one round trip allowed
// in flight, a first call is held on its way to Redis (hook) while the
// others queue behind it; then it is let go, and the queued calls go
// together. It returns every call's callOutcome, the first one's first.
func formBatch(t *testing.T, r *Redis, hook *holdHook, reqs [][]Request) []callOutcome {
	t.Helper()
	r.batch.maxInflight = 1
	out := make([]callOutcome, len(reqs))
	var wg sync.WaitGroup
	do := func(i int) {
		wg.Go(func() {
			out[i].res = make([]Result, len(reqs[i]))
			out[i].allowed, out[i].err = r.Allow(context.Background(), reqs[i], out[i].res)
		})
	}
	hook.armed.Store(true)
	do(0)
	<-hook.started
	for i := 1; i < len(reqs); i++ {
		do(i)
	}
	waitQueued(t, r, len(reqs)-1)
	close(hook.release)
	wg.Wait()
	return out
}

func newHoldHook() *holdHook {
	return &holdHook{started: make(chan struct{}, 1), release: make(chan struct{})}
}

// TestRedisBatchDecides: calls that went together in a pipeline get
// exactly the decisions of calls made one by one: a bucket of burst 10
// admits 10 of 40, with Remaining 9 down to 0, once each; each call gets
// its own reply; and the batch
// did form: 40 calls took 2 round trips.
func TestRedisBatchDecides(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	hook := newHoldHook()
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	const burst, n = 10, 40
	l := Limit{Rate: 1, Period: time.Hour, Burst: burst}
	reqs := make([][]Request, n)
	for i := range reqs {
		// each call's own rule has its own burst, so that its reply is known
		own := Limit{Rate: 1, Period: time.Hour, Burst: 100 + i}
		reqs[i] = []Request{{Key: "shared", Limit: l}, {Key: "own" + strconv.Itoa(i), Limit: own}}
	}
	before := r.Stats()
	var remaining []int
	for i, o := range formBatch(t, r, hook, reqs) {
		if o.err != nil {
			t.Fatalf("call %d: Allow = %v", i, o.err)
		}
		if got, want := o.res[1].Remaining, 100+i-1; got != want {
			t.Errorf("call %d: own rule's Remaining = %d, want %d: it got another call's reply", i, got, want)
		}
		if o.allowed {
			remaining = append(remaining, o.res[0].Remaining)
		} else if o.res[0].Allowed || o.res[0].RetryAfter <= 0 || !o.res[1].Allowed {
			t.Errorf("call %d denied with %+v, want the shared rule denied with a RetryAfter", i, o.res)
		}
	}
	slices.Sort(remaining)
	want := make([]int, burst)
	for i := range want {
		want[i] = i
	}
	if diff := cmp.Diff(want, remaining); diff != "" {
		t.Errorf("Remaining of the admitted calls (-sequential +batched):\n%s", diff)
	}
	after := r.Stats()
	if calls, trips := after.Calls-before.Calls, after.RoundTrips-before.RoundTrips; calls != n || trips != 2 {
		t.Errorf("%d calls took %d round trips, want %d calls in 2 (one held, then one pipeline)", calls, trips, n)
	}
	if !idle(r) {
		t.Error("a round trip is still counted under way after every call returned")
	}
	f, err := NewFallback(r, NewMemory(), FallbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Calls != after.Calls || st.RoundTrips != after.RoundTrips {
		t.Errorf("Fallback.Stats = %+v, want the primary's %+v", st, after)
	}
}

// TestRedisBatchCarriesRefunds: an Allow that goes in a pipeline still
// carries the refunds queued before it, so Redis applies them first.
func TestRedisBatchCarriesRefunds(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	hook := newHoldHook()
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1, RefundDelay: time.Hour})
	l := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	spent := []Request{{Key: "spent", Limit: l}}
	if ok, err := r.Allow(context.Background(), spent, make([]Result, 1)); !ok || err != nil {
		t.Fatalf("first Allow = %v, %v, want the one unit", ok, err)
	}
	r.batch.maxInflight = 1
	hook.armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() { r.Allow(context.Background(), []Request{{Key: "other", Limit: l}}, make([]Result, 1)) })
	<-hook.started // the slot is taken: the next Allow queues
	if err := r.Refund(context.Background(), spent); err != nil {
		t.Fatal(err)
	}
	var ok bool
	var err error
	wg.Go(func() { ok, err = r.Allow(context.Background(), spent, make([]Result, 1)) })
	waitQueued(t, r, 1)
	close(hook.release)
	wg.Wait()
	if !ok || err != nil {
		t.Errorf("Allow after Refund, in a pipeline = %v, %v, want admitted: the refund did not ride before it", ok, err)
	}
}

// pipeHook holds the next pipeline, once armed, until released, after
// reporting how many commands it carries.
type pipeHook struct {
	armed   chan struct{} // closed to arm
	sent    chan int      // receives the held pipeline's length
	release chan struct{} // closed to let it go on
}

func (h *pipeHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *pipeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		select {
		case <-h.armed:
			select {
			case h.sent <- len(cmds):
				<-h.release
			default: // only the first pipeline is held
			}
		default:
		}
		return next(ctx, cmds)
	}
}

// TestRedisBatchDeadline: a pipeline is stuck on a paused redis-server,
// and it carries calls with short deadlines and one with a long deadline
// (so the pipeline's own deadline is long). Each short call returns at its
// own deadline with an error, while the pipeline is still stuck; the long
// one gets its answer once Redis resumes; no sender is left behind.
func TestRedisBatchDeadline(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	t.Cleanup(srv.Resume)
	client := newClient(t, srv)
	hold, pipe := newHoldHook(), &pipeHook{}
	client.AddHook(hold)
	client.AddHook(pipe)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1, Timeout: time.Hour})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.batch.maxInflight = 1
	reqs := []Request{{Key: "k", Limit: Limit{Rate: 1000, Period: time.Second, Burst: 1000}}}
	const short = 5
	// The short deadline must outlast queueing (a busy machine can stall a
	// test for a while) and pass while the pipeline is stuck; when it
	// passed too soon, try again with a longer one.
	attempt := func(d time.Duration) (done bool) {
		hold.started, hold.release = make(chan struct{}, 1), make(chan struct{})
		pipe.armed, pipe.sent, pipe.release = make(chan struct{}), make(chan int, 1), make(chan struct{})
		close(pipe.armed)
		hold.armed.Store(true)
		var first, long, shorts sync.WaitGroup
		first.Go(func() { r.Allow(context.Background(), reqs, make([]Result, 1)) })
		<-hold.started
		errs := make([]error, short)
		for i := range short {
			shorts.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				_, errs[i] = r.Allow(ctx, reqs, make([]Result, 1))
			})
		}
		var longOK bool
		var longErr error
		long.Go(func() { longOK, longErr = r.Allow(context.Background(), reqs, make([]Result, 1)) })
		for deadline := time.Now().Add(d); queued(r) != short+1 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		close(hold.release)
		first.Wait()
		n := <-pipe.sent
		srv.Pause()
		close(pipe.release)
		if !waitFor(&shorts, d+patient) {
			t.Fatalf("short calls (deadline %s) still waiting %s after their pipeline left, on a paused Redis", d, d+patient)
		}
		srv.Resume()
		long.Wait()
		if n != short+1 {
			return false // a short call left before its pipeline did
		}
		for i, err := range errs {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("short call %d = %v, want its deadline exceeded", i, err)
			}
		}
		if !longOK || longErr != nil {
			t.Errorf("long call after Redis resumed = %v, %v, want admitted", longOK, longErr)
		}
		return true
	}
	for d := time.Second; !attempt(d); d *= 2 {
		if d >= 16*time.Second {
			t.Fatal("the short calls' deadlines passed before their pipeline left, even at 16s")
		}
	}
	for deadline := time.Now().Add(patient); !idle(r); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a sender is still running after every call returned")
		}
	}
}

// waitFor reports whether wg is done within d; it only bounds a hang.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// flushHook, once armed, puts SCRIPT FLUSH into the next pipeline after
// its first `at` commands: those run, the rest get NOSCRIPT.
type flushHook struct {
	at    int
	armed bool
	mu    sync.Mutex
}

func (h *flushHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *flushHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *flushHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		armed := h.armed && len(cmds) > h.at
		h.armed = false
		h.mu.Unlock()
		if !armed {
			return next(ctx, cmds)
		}
		with := append(slices.Clone(cmds[:h.at]), redis.NewStatusCmd(ctx, "script", "flush"))
		return next(ctx, append(with, cmds[h.at:]...))
	}
}

// TestRedisBatchNoScript: the script cache is flushed in the middle of a
// pipeline, so its first calls ran and the others got NOSCRIPT. Only those
// are sent again: every call is decided exactly once, so a bucket with
// room for all of them admits them all and then denies, and EVAL ran once
// per call that got NOSCRIPT.
func TestRedisBatchNoScript(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	admin := newClient(t, srv)
	client := newClient(t, srv)
	hold, flush := newHoldHook(), &flushHook{at: 4, armed: true}
	client.AddHook(hold)
	client.AddHook(flush)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 12 // the held call, then a pipeline of 11
	l := Limit{Rate: 1, Period: time.Hour, Burst: n}
	reqs := make([][]Request, n)
	for i := range reqs {
		reqs[i] = []Request{{Key: "k", Limit: l}}
	}
	eval := commandCalls(t, admin, "eval")
	for i, o := range formBatch(t, r, hold, reqs) {
		if !o.allowed || o.err != nil {
			t.Errorf("call %d = %v, %v (%+v), want admitted", i, o.allowed, o.err, o.res)
		}
	}
	if got, want := commandCalls(t, admin, "eval")-eval, n-1-flush.at; got != want {
		t.Errorf("EVAL ran %d times, want %d: once for each call that got NOSCRIPT", got, want)
	}
	if ok, err := r.Allow(context.Background(), reqs[0], make([]Result, 1)); ok || err != nil {
		t.Errorf("Allow after %d calls on a burst of %d = %v, %v, want denied", n, n, ok, err)
	}
}

// TestRedisBatchQueueBound: when the queue is full, a call does not wait
// behind it: it is sent on its own, and returns while the queue is still
// held.
func TestRedisBatchQueueBound(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	hook := newHoldHook()
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.batch.maxInflight, r.batch.maxQueued = 1, 2
	reqs := []Request{{Key: "k", Limit: Limit{Rate: 1000, Period: time.Second, Burst: 1000}}}
	hook.armed.Store(true)
	var held sync.WaitGroup
	held.Go(func() { r.Allow(context.Background(), reqs, make([]Result, 1)) })
	<-hook.started
	for range r.batch.maxQueued {
		held.Go(func() { r.Allow(context.Background(), reqs, make([]Result, 1)) })
	}
	waitQueued(t, r, r.batch.maxQueued)
	var extra sync.WaitGroup
	var ok bool
	var err error
	extra.Go(func() { ok, err = r.Allow(context.Background(), reqs, make([]Result, 1)) })
	returned := waitFor(&extra, patient)
	close(hook.release)
	held.Wait()
	if !returned {
		t.Fatalf("a call past a full queue waited %s behind it, want it sent on its own", patient)
	}
	if !ok || err != nil {
		t.Errorf("call past a full queue = %v, %v, want admitted", ok, err)
	}
}

// TestRedisBatchCluster runs a batch on a real (one-node) Redis Cluster: a
// ClusterClient pipeline splits by slot, and the shared hash tag keeps the
// whole batch on one node, in one pipeline.
func TestRedisBatchCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	hook := newHoldHook()
	c.AddHook(hook)
	r := mustRedis(t, c, RedisOptions{DenyCacheSize: -1})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	const burst, n = 5, 20
	l := Limit{Rate: 1, Period: time.Hour, Burst: burst}
	reqs := make([][]Request, n)
	for i := range reqs {
		reqs[i] = []Request{{Key: "login:a", Limit: l}, {Key: fmt.Sprintf("ip:%d", i), Limit: l}}
	}
	before := r.Stats()
	admitted := 0
	for i, o := range formBatch(t, r, hook, reqs) {
		if o.err != nil {
			t.Fatalf("call %d: Allow = %v", i, o.err)
		}
		if o.allowed {
			admitted++
		}
	}
	if admitted != burst {
		t.Errorf("cluster batch admitted %d of %d, want %d", admitted, n, burst)
	}
	if trips := r.Stats().RoundTrips - before.RoundTrips; trips != 2 {
		t.Errorf("%d calls took %d round trips, want 2", n, trips)
	}
}

// TestRedisBatchGaveUpNotSent: calls whose callers gave up while queued
// (their context done) leave the queue and never reach Redis, so a request
// the failure mode decided is not charged to the shared bucket as well.
func TestRedisBatchGaveUpNotSent(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	client := newClient(t, srv)
	hook := newHoldHook()
	client.AddHook(hook)
	r := mustRedis(t, client, RedisOptions{DenyCacheSize: -1})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.batch.maxInflight = 1
	l := Limit{Rate: 1, Period: time.Hour, Burst: 10}
	hook.armed.Store(true)
	var held sync.WaitGroup
	held.Go(func() { r.Allow(context.Background(), []Request{{Key: "other", Limit: l}}, make([]Result, 1)) })
	<-hook.started
	const n = 4
	ctx, cancel := context.WithCancel(context.Background())
	errs := make([]error, n)
	var gaveUp sync.WaitGroup
	for i := range n {
		gaveUp.Go(func() { _, errs[i] = r.Allow(ctx, []Request{{Key: "k", Limit: l}}, make([]Result, 1)) })
	}
	waitQueued(t, r, n)
	before := r.Stats()
	cancel()
	gaveUp.Wait()
	if got := queued(r); got != 0 {
		t.Errorf("%d calls still queued after their callers gave up, want 0", got)
	}
	close(hook.release)
	held.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d = %v, want context.Canceled", i, err)
		}
	}
	res := make([]Result, 1)
	if _, err := r.Allow(context.Background(), []Request{{Key: "k", Limit: l, Peek: true}}, res); err != nil {
		t.Fatal(err)
	}
	if calls := r.Stats().Calls - before.Calls; calls != 1 {
		t.Errorf("%d calls sent after %d callers gave up, then one Peek, want 1", calls, n)
	}
	if got, want := res[0].Remaining, l.Burst-1; got != want {
		t.Errorf("Remaining after %d calls gave up = %d, want %d: they were charged", n, got, want)
	}
}

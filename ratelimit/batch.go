package ratelimit

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Group commit. Every decision is one script call, and on a busy replica
// most of a call's cost is the write and the read that carry it, on both
// sides of the socket. So calls that arrive while others are on their way
// wait, and go together in the next pipeline: one write of many EVALSHA,
// one read of their replies. There is no window to fill: a call that finds
// a free slot is sent at once, as a plain call of its own, so an idle
// replica pays no latency for batching; only calls that arrive while
// maxInflight round trips are under way wait, for the first to end.
//
// At most maxInflight round trips of a limiter are under way at once.
// Calls queued meanwhile are sent by a sender goroutine, started when a
// slot frees and the queue is not empty, which takes up to maxBatch of them
// per pipeline and ends when the queue is empty: nothing runs while the
// replica is idle, so there is nothing to close. Callers wait for their own
// reply or for their own deadline (RedisOptions.Timeout, or the caller's
// context), whichever comes first: a slow pipeline never holds a caller
// past its deadline; its reply is then dropped, as a timed-out call's is.
// A pipeline's own deadline is the latest of its callers', so it never
// outlives them all. The queue holds at most maxQueued calls; a caller
// that finds it full sends its call on its own, as before batching.
//
// Decisions do not change: Redis runs the script calls of a pipeline one
// after the other, each atomic, exactly as if they had come one by one.
// Refunds ride inside the call of the Allow that took them (see Refund), so
// they are still applied before it. A call that got NOSCRIPT (the script
// cache was flushed, or Redis restarted) did not run; only those calls are
// sent again, with the script's source, after the calls that followed
// them in the pipeline: as if they had come a moment later, which
// concurrent calls may do anyway. A call that may have run is never sent
// again.
const (
	// maxInflight is how many round trips may be under way at once: 2
	// lets one pipeline fill while the other is on its way.
	maxInflight = 2
	// maxBatch bounds the calls of one pipeline, and so the size of a
	// write and how long Redis runs one client's commands in a row.
	maxBatch = 128
	// maxQueued bounds the waiting calls: as many as the next round of
	// pipelines carries.
	maxQueued = maxInflight * maxBatch
)

// batcher sends script calls to Redis, in pipelines when calls arrive
// faster than Redis answers. Its zero value is not usable.
type batcher struct {
	r                                *Redis
	maxInflight, maxBatch, maxQueued int

	mu       sync.Mutex
	inflight int     // round trips under way, senders included
	queue    []*call // waiting calls, oldest first; len <= maxQueued
}

// call is one script call waiting in the queue or in a pipeline.
type call struct {
	keys     []string
	args     []any
	deadline time.Time
	gone     <-chan struct{} // the caller's ctx.Done(): closed once it gave up
	done     chan struct{}   // closed when v and err are set
	v        []any
	err      error
}

// run makes one script call and returns its reply, or ctx's error once
// ctx is done, whatever happens to the call. Without a deadline in ctx, a
// pipeline carrying the call waits for it at most Timeout.
func (b *batcher) run(ctx context.Context, keys []string, args []any) ([]any, error) {
	b.mu.Lock()
	if b.inflight < b.maxInflight && len(b.queue) == 0 {
		b.inflight++
		b.mu.Unlock()
		v, err := b.r.runOne(ctx, keys, args)
		b.release()
		return v, err
	}
	if len(b.queue) >= b.maxQueued {
		b.mu.Unlock()
		return b.r.runOne(ctx, keys, args)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(b.r.timeout)
	}
	c := &call{keys: keys, args: args, deadline: deadline, gone: ctx.Done(), done: make(chan struct{})}
	b.queue = append(b.queue, c)
	if b.inflight < b.maxInflight {
		b.inflight++
		go b.send()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if i := slices.Index(b.queue, c); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
	}
	b.mu.Unlock()
	select {
	case <-c.done: // the reply came as the deadline passed
		return c.v, c.err
	default:
		return nil, ctx.Err()
	}
}

// release frees the slot of a call sent on its own, or hands it to a
// sender for the calls that queued meanwhile.
func (b *batcher) release() {
	b.mu.Lock()
	if len(b.queue) > 0 {
		go b.send()
	} else {
		b.inflight--
	}
	b.mu.Unlock()
}

// send holds one slot: it sends the queued calls, a pipeline at a time,
// until the queue is empty, then frees the slot.
func (b *batcher) send() {
	var batch []*call
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.maxBatch)
		batch = append(batch[:0], b.queue[:n]...)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		b.r.runPipeline(batch)
		clear(batch)
	}
}

// runOne sends one script call on its own: EVALSHA, and EVAL when Redis
// does not know the script.
func (r *Redis) runOne(ctx context.Context, keys []string, args []any) ([]any, error) {
	r.calls.Add(1)
	r.trips.Add(1)
	cmd := allowScript.EvalSha(ctx, r.client, keys, args...)
	if noScript(cmd.Err()) {
		r.trips.Add(1)
		cmd = allowScript.Eval(ctx, r.client, keys, args...)
	}
	return cmd.Slice()
}

// runPipeline sends batch in one pipeline of EVALSHA, then the calls that
// got NOSCRIPT, and only those whose callers still wait, in one pipeline
// of EVAL, and hands each caller its reply.
func (r *Redis) runPipeline(batch []*call) {
	// A caller that gave up after the sender took its call (it found the
	// queue without it) returns its context's error and decides without
	// Redis: its call is not sent, or the request would count twice. One
	// that gives up later may still count, as any call cut short by its
	// deadline may.
	live := batch[:0]
	for _, c := range batch {
		select {
		case <-c.gone: // nobody waits for its reply
		default:
			live = append(live, c)
		}
	}
	if batch = live; len(batch) == 0 {
		return
	}
	deadline := batch[0].deadline
	for _, c := range batch[1:] {
		if c.deadline.After(deadline) {
			deadline = c.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	r.calls.Add(uint64(len(batch)))
	r.trips.Add(1)
	cmds := make([]*redis.Cmd, len(batch))
	pipe := r.client.Pipeline()
	for i, c := range batch {
		cmds[i] = allowScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command holds its own reply or error
	var again []int
	for i, cmd := range cmds {
		if noScript(cmd.Err()) {
			select {
			case <-batch[i].gone: // it did not run, and its caller decided without it
			default:
				again = append(again, i)
			}
			continue
		}
		batch[i].v, batch[i].err = cmd.Slice()
		close(batch[i].done)
	}
	if len(again) == 0 {
		return
	}
	r.trips.Add(1)
	pipe = r.client.Pipeline()
	for _, i := range again {
		cmds[i] = allowScript.Eval(ctx, pipe, batch[i].keys, batch[i].args...)
	}
	_, _ = pipe.Exec(ctx)
	for _, i := range again {
		batch[i].v, batch[i].err = cmds[i].Slice()
		close(batch[i].done)
	}
}

// noScript reports whether err is Redis's NOSCRIPT: the call did not run.
// It asks go-redis, which allocates, only when there is an error.
func noScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

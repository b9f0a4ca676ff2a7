package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A reservation is how a rule that counts only some answers (a failure
// limit) holds under concurrency: the rule is consumed like any other before
// the request goes on, so that concurrent requests cannot all pass a bucket
// with one unit left, and the unit is given back with Refund once the answer
// turns out not to count. Refunds are a second call, so they cost a round
// trip to Redis only for answers that do not count, and Redis lets them
// ride along with the next request's call.

// refundTAT returns a bucket's theoretical arrival time after one unit of l
// is given back at now, and false when the bucket is then full (it can be
// dropped). It never moves tat below now: a refund cannot earn credit
// beyond a full bucket.
func refundTAT(l Limit, tat, now int64) (int64, bool) {
	tat -= int64(l.Interval())
	if tat <= now {
		return 0, false
	}
	return tat, true
}

// checkRefund rejects rules no limiter could refund: those without a
// positive emission interval. It is cheaper than Limit.Validate, which a
// refund, coming after an Allow of the same rules, does not need.
func checkRefund(reqs []Request) error {
	for i := range reqs {
		if l := reqs[i].Limit; l.Rate <= 0 || l.Period <= 0 || l.Interval() <= 0 {
			return fmt.Errorf("%w: rule %d: %d per %s", ErrInvalid, i, l.Rate, l.Period)
		}
	}
	return nil
}

// Refund gives back one unit to the bucket of each rule of reqs that is not
// Peek: the unit an earlier Allow consumed for a request whose answer turned
// out not to count. A bucket never holds more than a full one. The caller
// refunds only rules that Allow consumed (allowed, not Peek, Result.Allowed);
// refunding others would give a client credit it never spent.
func (m *Memory) Refund(_ context.Context, reqs []Request) error {
	if err := checkRefund(reqs); err != nil {
		return err
	}
	var bufShard, bufIdx [8]int
	shard := bufShard[:0]
	if len(reqs) > len(bufShard) {
		shard = make([]int, len(reqs))
	}
	shard = shard[:len(reqs)]
	idx := m.lock(reqs, shard, bufIdx[:])
	defer m.unlock(idx)
	now := m.now()
	for i, r := range reqs {
		if r.Peek {
			continue
		}
		s := &m.shards[shard[i]]
		t, ok := s.tat[r.Key]
		if !ok {
			continue
		}
		if t, ok = refundTAT(r.Limit, t, now); ok {
			s.tat[r.Key] = t
		} else {
			delete(s.tat, r.Key)
		}
	}
	return nil
}

// Refund is Memory.Refund on the buckets in Redis, without a round trip of
// its own when traffic keeps coming: refunds wait in a queue and ride along
// with this replica's next Allow, whose script applies them first, before
// deciding, atomically with respect to every other replica. A queue not
// taken within RefundDelay, or grown to maxQueuedRefunds, is sent on its
// own. So this replica decides as if each refund were immediate; another
// replica sees it at most RefundDelay late, which can only deny more, never
// admit more. Refunds of a call that fails are lost: their units stay
// spent. The deny cache forgets the refunded buckets, since they may admit
// sooner than Redis said when it denied them; other replicas' caches may
// still repeat such a denial until it runs out.
func (r *Redis) Refund(ctx context.Context, reqs []Request) error {
	if err := checkRefund(reqs); err != nil {
		return err
	}
	if r.deny != nil {
		r.deny.forget(reqs)
	}
	q := &r.refunds
	q.mu.Lock()
	for _, x := range reqs {
		if !x.Peek {
			q.reqs = append(q.reqs, Request{Key: x.Key, Limit: x.Limit})
		}
	}
	full := len(q.reqs) >= maxQueuedRefunds
	if !q.armed && len(q.reqs) > 0 && !full {
		q.armed = true
		time.AfterFunc(q.delay, r.flushRefunds)
	}
	q.mu.Unlock()
	if full {
		return r.sendRefunds(ctx)
	}
	return nil
}

const (
	defaultRefundDelay = 5 * time.Millisecond
	// maxQueuedRefunds bounds the queue, and so the extra keys of a call.
	maxQueuedRefunds = 64
)

// refundQueue holds refunds until a call to Redis takes them.
type refundQueue struct {
	delay    time.Duration
	mu       sync.Mutex
	reqs     []Request
	armed    bool       // a flush is scheduled
	inflight int        // refund calls of their own under way
	landed   *sync.Cond // on mu: signalled when inflight drops to 0
}

// takeRefunds empties the queue and returns what it held, for an Allow to
// apply first. It waits for refunds already on their way in a call of their
// own: an Allow sent meanwhile could reach Redis before them, and this
// replica would decide a request after a refund as if the refund had not
// happened. That wait is rare (a flush runs only after RefundDelay without
// traffic) and bounded by the refund call's timeout.
func (r *Redis) takeRefunds() []Request {
	q := &r.refunds
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.inflight > 0 {
		q.cond().Wait()
	}
	reqs := q.reqs
	q.reqs = nil
	return reqs
}

// cond returns landed, made on first use; q.mu is held.
func (q *refundQueue) cond() *sync.Cond {
	if q.landed == nil {
		q.landed = sync.NewCond(&q.mu)
	}
	return q.landed
}

// flushRefunds sends the refunds no Allow took within the delay.
func (r *Redis) flushRefunds() {
	r.refunds.mu.Lock()
	r.refunds.armed = false
	r.refunds.mu.Unlock()
	_ = r.sendRefunds(context.Background())
}

// sendRefunds sends the queued refunds in a call of their own. Until the
// call returns, Allows wait in takeRefunds, so that none overtakes it.
func (r *Redis) sendRefunds(ctx context.Context) error {
	q := &r.refunds
	q.mu.Lock()
	refunds := q.reqs
	q.reqs = nil
	if len(refunds) > 0 {
		q.inflight++
	}
	q.mu.Unlock()
	if len(refunds) == 0 {
		return nil
	}
	defer func() {
		q.mu.Lock()
		if q.inflight--; q.inflight == 0 {
			q.cond().Broadcast()
		}
		q.mu.Unlock()
	}()
	keys, args := appendRefunds(nil, []any{0}, r.prefix, refunds)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if _, err := r.runOne(ctx, keys, args); err != nil {
		return fmt.Errorf("ratelimit: redis: refund: %w", err)
	}
	return nil
}

// appendRefunds adds refunds to a script call's keys and arguments.
func appendRefunds(keys []string, args []any, prefix string, refunds []Request) ([]string, []any) {
	for _, q := range refunds {
		keys = append(keys, prefix+q.Key)
		args = append(args, int64(q.Limit.Interval()))
	}
	return keys, args
}

// Refund gives units back where they were consumed: to the primary while it
// is healthy, to the local limiter while Fallback answers in ModeLocal, and
// nowhere in ModeOpen or ModeClosed, which consumed nothing. A reservation
// and its refund that straddle a change of state go to different limiters:
// the one that took the unit keeps it (the safe side), and the other may
// get back at most one unit per refunded rule. A refund that fails only
// leaves a unit spent, so it does not trip the breaker; its error is for
// logs.
func (f *Fallback) Refund(ctx context.Context, reqs []Request) error {
	if f.degraded.Load() {
		if l, ok := f.local.(refunder); ok && f.opt.Mode == ModeLocal {
			return l.Refund(ctx, reqs)
		}
		return checkRefund(reqs)
	}
	if f.refund == nil {
		return checkRefund(reqs)
	}
	if err := f.refund(ctx, reqs); err != nil {
		f.errs.Add(1)
		return err
	}
	return nil
}

// refunder is a limiter that can give back what Allow consumed.
type refunder interface {
	Refund(ctx context.Context, reqs []Request) error
}

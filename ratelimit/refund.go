package ratelimit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// A reservation is how a rule that counts only some answers (a failure
// limit) holds under concurrency: the rule is consumed like any other before
// the request goes on, so that concurrent requests cannot all pass a bucket
// with one unit left, and the unit is given back with Refund once the answer
// turns out not to count. Refunds are a second call, so they cost a round
// trip to Redis only for answers that do not count.

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

// Refund is Memory.Refund on the buckets in Redis, in one round trip: a
// script moves each bucket's theoretical arrival time back by one emission
// interval, never below Redis's clock, atomically with respect to every
// other replica's Allow. The deny cache forgets the refunded buckets, since
// they may admit sooner than Redis said when it denied them; other
// replicas' caches may still repeat such a denial until it runs out.
func (r *Redis) Refund(ctx context.Context, reqs []Request) error {
	if err := checkRefund(reqs); err != nil {
		return err
	}
	keys := make([]string, 0, len(reqs))
	args := make([]any, 0, len(reqs))
	for _, q := range reqs {
		if q.Peek {
			continue
		}
		keys = append(keys, r.prefix+q.Key)
		args = append(args, int64(q.Limit.Interval()))
	}
	if len(keys) == 0 {
		return nil
	}
	if r.deny != nil {
		r.deny.forget(reqs)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := refundScript.Run(ctx, r.client, keys, args...).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("ratelimit: redis: refund: %w", err)
	}
	return nil
}

// refundScript gives one emission interval back to each bucket, in the
// same split decimal format as allowScript. KEYS: the buckets; ARGV: their
// emission intervals in ns. A bucket left full is deleted; one that is not
// keeps an expiry at its new tat.
var refundScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call("TIME")
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000
for i = 1, #KEYS do
  local em = tonumber(ARGV[i])
  local v = redis.call("GET", KEYS[i])
  if v then
    local s = tonumber(string.sub(v, 1, -10))
    local ns = tonumber(string.sub(v, -9))
    if s and ns then
      local new_rel = (s - now_s) * 1e9 + (ns - now_ns) - em
      if new_rel <= 0 then
        redis.call("DEL", KEYS[i])
      else
        local x = now_ns + new_rel
        local ds = math.floor(x / 1e9)
        local dns = x - ds * 1e9
        if dns < 0 then ds = ds - 1; dns = dns + 1e9 end
        if dns >= 1e9 then ds = ds + 1; dns = dns - 1e9 end
        redis.call("SET", KEYS[i], string.format("%d%09d", now_s + ds, dns), "PX", math.ceil(new_rel / 1e6))
      end
    end
  end
end
return 0
`)

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

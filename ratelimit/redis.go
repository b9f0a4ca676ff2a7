package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInvalid marks a request a limiter refuses to decide: a rule with an
// invalid Limit, or fewer results than rules. It is the caller's mistake, not
// the backend's, so Fallback passes it through without counting a failure.
var ErrInvalid = errors.New("ratelimit: invalid request")

const (
	defaultPrefix        = "keygate:"
	defaultTimeout       = 50 * time.Millisecond
	defaultDenyCacheSize = 10000
)

// RedisOptions configures a Redis limiter. The zero value uses the defaults.
type RedisOptions struct {
	// Prefix starts every key; "" means "keygate:". It is also the Redis
	// Cluster hash tag: a bucket for key K is stored as "{Prefix}K", so all
	// of one deployment's buckets share a slot (see Redis). It must not
	// contain '{' or '}'.
	Prefix string
	// Timeout bounds each Allow's wait for Redis, connecting and waiting
	// for a pipeline included; 0 means 50ms.
	Timeout time.Duration
	// DenyCacheSize bounds how many denied buckets are remembered locally
	// so that requests to them are refused without asking Redis; 0 means
	// 10000 and a negative size turns the cache off.
	DenyCacheSize int
	// RefundDelay is how long a Refund may wait to ride along with the
	// next Allow before it is sent on its own; 0 means 5ms. See Refund.
	RefundDelay time.Duration
}

// Redis is a limiter whose buckets live in Redis, so that every replica
// sharing that Redis enforces one limit. Each Allow is one script call, at
// most one round trip, and less under load: calls that arrive while others
// are on their way share the next pipeline (see batch.go). A Lua script
// decides all rules of the request against Redis's own clock (TIME),
// so replicas never disagree about the time, and writes buckets only when the
// request is allowed, each with an expiry so that idle buckets disappear.
//
// The buckets of one request must live in one Redis Cluster slot for the
// script to touch them atomically, and the rules of a request can be any
// mix of buckets, so all buckets share one hash tag, the prefix. The price
// is that one deployment's limits live on one shard: Cluster then gives
// failover, not more throughput. One shard runs tens of thousands of these
// scripts a second and the deny cache absorbs floods of denied requests; a
// per-bucket tag would spread keys but give up the atomic all-or-nothing
// decision, which is the point of deciding rules together.
//
// A bucket denied by Redis is remembered locally until it admits again (its
// RetryAfter), so that a flood of rejected requests costs no Redis work.
// That cache can only repeat a denial Redis would give; it never admits.
//
// Redis is safe for concurrent use. The zero value is not usable; call
// NewRedis.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	deny    *denyCache // nil when turned off
	base    time.Time
	now     func() int64 // ns since base, monotonic; replaced in tests
	refunds refundQueue
	batch   batcher

	calls, trips atomic.Uint64 // see Stats
}

// NewRedis returns a limiter that keeps its buckets in client. The client's
// commands should honour context deadlines (redisconn.New sets
// ContextTimeoutEnabled), or Timeout cannot cut a slow call short. NewRedis
// does not contact Redis; call Ping to check it.
func NewRedis(client redis.UniversalClient, opt RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("ratelimit: NewRedis: client is nil")
	}
	if opt.Prefix == "" {
		opt.Prefix = defaultPrefix
	}
	if strings.ContainsAny(opt.Prefix, "{}") {
		return nil, fmt.Errorf("ratelimit: Prefix %q must not contain '{' or '}': it is used as the cluster hash tag", opt.Prefix)
	}
	if opt.Timeout < 0 {
		return nil, fmt.Errorf("ratelimit: Timeout %s must be >= 0", opt.Timeout)
	}
	if opt.Timeout == 0 {
		opt.Timeout = defaultTimeout
	}
	if opt.DenyCacheSize == 0 {
		opt.DenyCacheSize = defaultDenyCacheSize
	}
	if opt.RefundDelay < 0 {
		return nil, fmt.Errorf("ratelimit: RefundDelay %s must be >= 0", opt.RefundDelay)
	}
	if opt.RefundDelay == 0 {
		opt.RefundDelay = defaultRefundDelay
	}
	r := &Redis{
		client:  client,
		prefix:  "{" + opt.Prefix + "}",
		timeout: opt.Timeout,
		base:    time.Now(),
	}
	r.refunds.delay = opt.RefundDelay
	r.batch = batcher{r: r, maxInflight: maxInflight, maxBatch: maxBatch, maxQueued: maxQueued}
	if opt.DenyCacheSize > 0 {
		r.deny = newDenyCache(opt.DenyCacheSize)
	}
	r.now = func() int64 { return int64(time.Since(r.base)) }
	return r, nil
}

// Key returns the Redis key of the bucket named key.
func (r *Redis) Key(key string) string { return r.prefix + key }

// Ping checks within Timeout that Redis answers, and loads the script so
// that the first Allow needs no second round trip.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := allowScript.Load(ctx, r.client).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}

// Allow decides reqs together, like Memory.Allow, and writes one Result per
// request into res, which must be at least as long as reqs. The request is
// allowed when every rule that is not Shadow admits it; only then are the
// rules that are not Peek consumed.
//
// When the deny cache answers, Redis is not asked: the cached rules are
// reported denied with the time they have left, and the others Allowed with
// Remaining and ResetAfter zero, since their state is unknown.
func (r *Redis) Allow(ctx context.Context, reqs []Request, res []Result) (bool, error) {
	allowed, _, err := r.allow(ctx, reqs, res)
	return allowed, err
}

// allow is Allow that also reports whether Redis was asked, so that Fallback
// does not mistake a deny-cache answer for a sign of Redis's health.
func (r *Redis) allow(ctx context.Context, reqs []Request, res []Result) (allowed, asked bool, err error) {
	if err := check(reqs, res); err != nil {
		return false, false, err
	}
	if len(reqs) == 0 {
		return true, false, nil
	}
	now := r.now()
	if r.deny != nil && r.deny.answer(reqs, res, now) {
		return false, false, nil
	}
	refunds := r.takeRefunds()
	keys := make([]string, len(reqs), len(reqs)+len(refunds))
	args := make([]any, 0, 1+3*len(reqs)+len(refunds))
	args = append(args, len(reqs))
	for i, q := range reqs {
		keys[i] = r.prefix + q.Key
		var flags int
		if q.Peek {
			flags |= flagPeek
		}
		if q.Shadow {
			flags |= flagShadow
		}
		args = append(args, int64(q.Limit.Interval()), q.Limit.Burst, flags)
	}
	keys, args = appendRefunds(keys, args, r.prefix, refunds)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := r.batch.run(ctx, keys, args)
	if err != nil {
		return false, true, fmt.Errorf("ratelimit: redis: %w", err)
	}
	allowed, err = parse(v, res[:len(reqs)])
	if err != nil {
		return false, true, err
	}
	if r.deny != nil && !allowed {
		r.deny.remember(reqs, res, now)
	}
	return allowed, true, nil
}

// check rejects what no limiter could decide.
func check(reqs []Request, res []Result) error {
	if len(res) < len(reqs) {
		return fmt.Errorf("%w: %d results for %d rules", ErrInvalid, len(res), len(reqs))
	}
	for i := range reqs {
		if err := reqs[i].Limit.Validate(); err != nil {
			return fmt.Errorf("%w: rule %d: %w", ErrInvalid, i, err)
		}
	}
	return nil
}

// parse reads the script's reply: the decision, then allowed, remaining,
// retry_after and reset_after (in ns) for each rule.
func parse(v []any, res []Result) (bool, error) {
	if len(v) != 1+4*len(res) {
		return false, fmt.Errorf("ratelimit: redis: script returned %d values for %d rules", len(v), len(res))
	}
	n := make([]int64, len(v))
	for i, x := range v {
		var ok bool
		if n[i], ok = x.(int64); !ok {
			return false, fmt.Errorf("ratelimit: redis: script returned %T, want an integer", x)
		}
	}
	for i := range res {
		f := n[1+4*i:]
		res[i] = Result{
			Allowed:    f[0] == 1,
			Remaining:  int(f[1]),
			RetryAfter: time.Duration(f[2]),
			ResetAfter: time.Duration(f[3]),
		}
	}
	return n[0] == 1, nil
}

// Flags of a rule, as the script reads them.
const (
	flagPeek   = 1
	flagShadow = 2
)

// allowScript is GCRA as redis_rate computes it, for many buckets at once
// and in integer nanoseconds, like Memory. A bucket holds its theoretical
// arrival time (tat) as decimal ns since the Unix epoch; that does not fit a
// Lua double, so it is split into seconds and the last nine digits, and only
// differences from now (exact below 2^53 ns, about 104 days) are computed.
//
// Refunds waiting to be applied (see Refund) ride along: they are applied
// first, as they came before this request.
//
// KEYS: one bucket per rule, then one per refund. ARGV: the number of
// rules; per rule, the emission interval in ns, the burst, and flags (1
// peek, 2 shadow); then per refund, the emission interval. Reply: the
// decision (1 allowed), then per rule allowed, remaining, retry_after and
// reset_after in ns.
var allowScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call("TIME")
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000
local nr = tonumber(ARGV[1])
-- refunds: tat back by one interval, never below now
for i = nr + 1, #KEYS do
  local v = redis.call("GET", KEYS[i])
  if v then
    local s = tonumber(string.sub(v, 1, -10))
    local ns = tonumber(string.sub(v, -9))
    if s and ns then
      local new_rel = (s - now_s) * 1e9 + (ns - now_ns) - tonumber(ARGV[1 + 3*nr + i - nr])
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
local out = {1}
local writes = {}
for i = 1, nr do
  local em = tonumber(ARGV[3*i-1])
  local burst = tonumber(ARGV[3*i])
  local flags = tonumber(ARGV[3*i+1])
  -- rel is tat - now, or 0 when the bucket is full (tat = max(tat, now))
  local rel = 0
  local v = redis.call("GET", KEYS[i])
  if v then
    local s = tonumber(string.sub(v, 1, -10))
    local ns = tonumber(string.sub(v, -9))
    if s and ns then
      rel = (s - now_s) * 1e9 + (ns - now_ns)
      if rel < 0 then rel = 0 end
    end
  end
  local new_rel = rel + em
  local diff = em * burst - new_rel
  if diff < 0 then
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, -diff)
    table.insert(out, rel)
    if flags < 2 then out[1] = 0 end
  else
    local rem = math.floor(diff / em)
    if rem * em > diff then rem = rem - 1 end
    table.insert(out, 1)
    table.insert(out, rem)
    table.insert(out, 0)
    table.insert(out, new_rel)
    if flags % 2 == 0 then writes[i] = new_rel end
  end
end
if out[1] == 1 then
  for i, new_rel in pairs(writes) do
    local x = now_ns + new_rel
    local s = math.floor(x / 1e9)
    local ns = x - s * 1e9
    if ns < 0 then s = s - 1; ns = ns + 1e9 end
    if ns >= 1e9 then s = s + 1; ns = ns - 1e9 end
    redis.call("SET", KEYS[i], string.format("%d%09d", now_s + s, ns), "PX", math.ceil(new_rel / 1e6))
  end
end
return out
`)

// RedisStats counts what a Redis limiter sent. Calls/RoundTrips is how
// many script calls share a round trip on average.
type RedisStats struct {
	Calls      uint64 // script calls sent: decisions, and refunds sent on their own
	RoundTrips uint64 // writes to Redis each answered by one read: single calls and pipelines
}

// Stats returns the counters since NewRedis.
func (r *Redis) Stats() RedisStats {
	return RedisStats{Calls: r.calls.Load(), RoundTrips: r.trips.Load()}
}

package ratelimit

import (
	"sync"
	"time"
)

// denyKey names a bucket under one limit: the same key under another limit
// may well admit.
type denyKey struct {
	key   string
	limit Limit
}

// denial is what Redis said of a denied bucket, as deadlines on the Redis
// limiter's monotonic clock.
type denial struct {
	retry int64 // the bucket admits again from here
	reset int64 // the bucket is full again from here
}

// denyCache remembers buckets Redis denied until they admit again. A
// bucket's theoretical arrival time only grows, so a bucket denied at t with
// RetryAfter d denies every request until t+d whatever other replicas do:
// the cache repeats Redis's answer without asking. Deadlines are counted
// from before the call went out, so they never outlast Redis's own.
//
// It holds at most max entries. When full, it drops expired entries, and if
// that frees too little, arbitrary ones (Go's map order), so that a flood of
// distinct keys costs amortized constant work per insert.
type denyCache struct {
	mu  sync.Mutex
	max int
	m   map[denyKey]denial
}

func newDenyCache(size int) *denyCache {
	return &denyCache{max: size, m: make(map[denyKey]denial)}
}

// answer reports whether a rule of reqs that is not Shadow is known to deny
// at now, and if so fills res: the known rules denied, the others admitted
// with nothing more known.
func (c *denyCache) answer(reqs []Request, res []Result, now int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return false
	}
	hit := false
	for i := range reqs {
		if reqs[i].Shadow {
			continue
		}
		k := denyKey{reqs[i].Key, reqs[i].Limit}
		d, ok := c.m[k]
		if !ok {
			continue
		}
		if d.retry <= now {
			delete(c.m, k)
			continue
		}
		hit = true
	}
	if !hit {
		return false
	}
	for i := range reqs {
		res[i] = Result{Allowed: true}
		if d, ok := c.m[denyKey{reqs[i].Key, reqs[i].Limit}]; ok && d.retry > now {
			res[i] = Result{RetryAfter: time.Duration(d.retry - now), ResetAfter: time.Duration(max(d.reset, d.retry) - now)}
		}
	}
	return true
}

// remember records the rules of reqs that are not Shadow and that res
// reports denied, as Redis answered a call sent at now.
func (c *denyCache) remember(reqs []Request, res []Result, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range reqs {
		if reqs[i].Shadow || res[i].Allowed || res[i].RetryAfter <= 0 {
			continue
		}
		k := denyKey{reqs[i].Key, reqs[i].Limit}
		if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
			c.evict(now)
		}
		c.m[k] = denial{retry: now + int64(res[i].RetryAfter), reset: now + int64(res[i].ResetAfter)}
	}
}

// evict makes room for at least a sixteenth of max entries.
func (c *denyCache) evict(now int64) {
	for k, d := range c.m {
		if d.retry <= now {
			delete(c.m, k)
		}
	}
	target := c.max - max(c.max/16, 1)
	for k := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, k)
	}
}

// forget drops what is remembered of the buckets of reqs: a refund may
// make them admit before the deadline Redis gave.
func (c *denyCache) forget(reqs []Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range reqs {
		delete(c.m, denyKey{reqs[i].Key, reqs[i].Limit})
	}
}

// len returns the number of entries held.
func (c *denyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

package auth

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/policy"
)

// tokenKey identifies a token in caches and in flight: its SHA-256, so that
// no cache holds a token.
type tokenKey = [sha256.Size]byte

// answer is a cached decision about one token: a record, the reason it was
// rejected, or (with ReasonUnavailable) why it could not be checked.
type answer struct {
	tok    *policy.Token
	reason string
	err    error
}

// result returns the answer as a Source does.
func (a answer) result() (*policy.Token, string, error) {
	if a.err != nil {
		return nil, ReasonUnavailable, a.err
	}
	return a.tok, a.reason, nil
}

// cache is a bounded map from token hashes to answers that expire. When it
// is full, the least recently used entry goes, so a flood of random tokens
// can evict good answers but never grow memory. It is safe for concurrent
// use.
type cache struct {
	mu    sync.Mutex
	max   int
	items map[tokenKey]*list.Element
	lru   list.List // front: most recently used; values are *cacheEntry
}

type cacheEntry struct {
	key     tokenKey
	ans     answer
	expires time.Time
}

// newCache returns a cache of at most max entries; max <= 0 turns caching
// off.
func newCache(max int) *cache {
	return &cache{max: max, items: make(map[tokenKey]*list.Element)}
}

// get returns the answer for key unless it is missing or expired at now.
func (c *cache) get(key tokenKey, now time.Time) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, key)
		return answer{}, false
	}
	c.lru.MoveToFront(el)
	return e.ans, true
}

// put stores ans for key until now+ttl; ttl <= 0 stores nothing.
func (c *cache) put(key tokenKey, ans answer, ttl time.Duration, now time.Time) {
	if ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.ans, e.expires = ans, now.Add(ttl)
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
	c.items[key] = c.lru.PushFront(&cacheEntry{key: key, ans: ans, expires: now.Add(ttl)})
}

// forget drops key.
func (c *cache) forget(key tokenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.lru.Remove(el)
		delete(c.items, key)
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// flight collapses concurrent calls for one key into one
// (golang.org/x/sync/singleflight): the first caller starts fn, later callers
// wait for its result. fn runs in its own goroutine and must bound itself
// (it is given no caller's context), so that a caller that gives up does not
// cancel the work the others wait for.
type flight[V any] struct {
	g singleflight.Group
}

// do returns fn's result for key, sharing a call already in flight. It
// returns early with ctx's error when ctx ends first.
func (f *flight[V]) do(ctx context.Context, key string, fn func() (V, error)) (V, error) {
	ch := f.g.DoChan(key, func() (any, error) { return fn() })
	select {
	case r := <-ch:
		v, _ := r.Val.(V)
		return v, r.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

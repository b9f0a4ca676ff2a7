package ratelimit

import (
	"context"
	"sync"
	"time"
)

// sweepEvery is how often Memory drops buckets that are full again.
const sweepEvery = 30 * time.Second

// Memory is an in-process limiter: exact for one replica, and the fallback
// when Redis is away. It is safe for concurrent use. The zero value is not
// usable; call NewMemory.
type Memory struct {
	mu        sync.Mutex
	tat       map[string]int64 // theoretical arrival time, ns since base
	base      time.Time
	lastSweep int64
	now       func() int64 // ns since base; replaced in tests
}

// NewMemory returns an empty in-memory limiter.
func NewMemory() *Memory {
	m := &Memory{tat: map[string]int64{}, base: time.Now()}
	m.now = func() int64 { return int64(time.Since(m.base)) }
	return m
}

// Allow decides reqs together and writes one Result per request into res,
// which must be as long as reqs. The request is allowed when every rule that
// is not Shadow admits it; only then are the rules that are not Peek
// consumed, so a request denied by one rule spends none of the others.
func (m *Memory) Allow(_ context.Context, reqs []Request, res []Result) (bool, error) {
	var tats [8]int64
	next := tats[:0]
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	allowed := true
	for i, r := range reqs {
		var t int64
		res[i], t = gcra(r.Limit, m.tat[r.Key], now)
		next = append(next, t)
		if !res[i].Allowed && !r.Shadow {
			allowed = false
		}
	}
	if allowed {
		for i, r := range reqs {
			if res[i].Allowed && !r.Peek {
				m.tat[r.Key] = next[i]
			}
		}
	}
	if now-m.lastSweep > int64(sweepEvery) {
		m.sweep(now)
	}
	return allowed, nil
}

// sweep drops buckets that are full again; they hold nothing a fresh bucket
// would not.
func (m *Memory) sweep(now int64) {
	m.lastSweep = now
	for k, t := range m.tat {
		if t <= now {
			delete(m.tat, k)
		}
	}
}

// Len returns the number of buckets held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}

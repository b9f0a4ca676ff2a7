package ratelimit

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxBuckets bounds the buckets a Memory holds when its options
// leave MaxBuckets zero: about 100 MiB at most.
const DefaultMaxBuckets = 1 << 20

const (
	memShards = 64
	// Every sweepEvery-th Allow looks at sweepStep buckets of one shard,
	// in turn, to drop those that are full again: more than requests add
	// (at most one bucket per rule), so idle buckets cannot pile up, and
	// never the whole store at once.
	sweepEvery = 2
	sweepStep  = 16
	// evictSample is how many buckets a full shard looks at to choose the
	// one to forget.
	evictSample = 8
)

// MemoryOptions configures a Memory. The zero value uses the defaults.
type MemoryOptions struct {
	// MaxBuckets bounds the buckets held; 0 means DefaultMaxBuckets. A
	// new bucket past it first drops buckets that are full again, then
	// forgets the bucket nearest to full among a few, the one whose loss
	// admits least.
	MaxBuckets int
}

// Memory is an in-process limiter: exact for one replica, and the fallback
// when Redis is away. Its buckets are split into shards, each under its own
// lock, and bounded (MemoryOptions.MaxBuckets); buckets that are full again
// are dropped a few at a time as requests come, never in one sweep. It is
// safe for concurrent use. The zero value is not usable; call NewMemory.
type Memory struct {
	shards   [memShards]memShard
	perShard int
	seed     maphash.Seed
	cursor   atomic.Uint32 // next shard to sweep
	base     time.Time
	now      func() int64 // ns since base; replaced in tests
}

type memShard struct {
	mu  sync.Mutex
	tat map[string]int64 // theoretical arrival time, ns since base
}

// NewMemory returns an empty in-memory limiter with the default options.
func NewMemory() *Memory {
	m, _ := NewMemoryWith(MemoryOptions{})
	return m
}

// NewMemoryWith returns an empty in-memory limiter configured by opt.
func NewMemoryWith(opt MemoryOptions) (*Memory, error) {
	if opt.MaxBuckets < 0 {
		return nil, errors.New("ratelimit: NewMemoryWith: MaxBuckets must be >= 0")
	}
	if opt.MaxBuckets == 0 {
		opt.MaxBuckets = DefaultMaxBuckets
	}
	m := &Memory{perShard: max(1, (opt.MaxBuckets+memShards-1)/memShards), seed: maphash.MakeSeed(), base: time.Now()}
	for i := range m.shards {
		m.shards[i].tat = map[string]int64{}
	}
	m.now = func() int64 { return int64(time.Since(m.base)) }
	return m, nil
}

func (m *Memory) shardOf(key string) int {
	return int(maphash.String(m.seed, key) % memShards)
}

// lock finds the shard of each rule of reqs (into shard) and locks those
// shards in ascending order, each once, so that concurrent calls cannot
// deadlock. It returns the locked indices, for unlock.
func (m *Memory) lock(reqs []Request, shard []int, buf []int) []int {
	idx := buf[:0]
	for i, r := range reqs {
		s := m.shardOf(r.Key)
		shard[i] = s
		at := len(idx)
		for j, v := range idx {
			if v >= s {
				at = j
				break
			}
		}
		if at < len(idx) && idx[at] == s {
			continue
		}
		idx = append(idx, 0)
		copy(idx[at+1:], idx[at:])
		idx[at] = s
	}
	for _, s := range idx {
		m.shards[s].mu.Lock()
	}
	return idx
}

func (m *Memory) unlock(idx []int) {
	for _, s := range idx {
		m.shards[s].mu.Unlock()
	}
}

// Allow decides reqs together and writes one Result per request into res,
// which must be as long as reqs. The request is allowed when every rule that
// is not Shadow admits it; only then are the rules that are not Peek
// consumed, so a request denied by one rule spends none of the others.
func (m *Memory) Allow(_ context.Context, reqs []Request, res []Result) (bool, error) {
	var tats [8]int64
	var bufShard, bufIdx [8]int
	next := tats[:0]
	shard := bufShard[:0]
	if len(reqs) > len(bufShard) {
		shard = make([]int, len(reqs))
	}
	shard = shard[:len(reqs)]
	idx := m.lock(reqs, shard, bufIdx[:])
	now := m.now()
	allowed := true
	for i, r := range reqs {
		var t int64
		res[i], t = gcra(r.Limit, m.shards[shard[i]].tat[r.Key], now)
		next = append(next, t)
		if !res[i].Allowed && !r.Shadow {
			allowed = false
		}
	}
	if allowed {
		for i, r := range reqs {
			if res[i].Allowed && !r.Peek {
				m.shards[shard[i]].store(r.Key, next[i], now, m.perShard)
			}
		}
	}
	m.unlock(idx)
	if m.cursor.Add(1)%sweepEvery == 0 {
		m.sweepNext(now)
	}
	return allowed, nil
}

// store sets key's tat in s (locked), making room first when key is new
// and s is full.
func (s *memShard) store(key string, tat, now int64, limit int) {
	if _, ok := s.tat[key]; !ok && len(s.tat) >= limit {
		s.sweep(now, sweepStep)
		if len(s.tat) >= limit {
			s.evict()
		}
	}
	s.tat[key] = tat
}

// evict forgets the bucket nearest to full among a few of s (locked).
func (s *memShard) evict() {
	victim, least, n := "", int64(0), 0
	for k, t := range s.tat {
		if n == 0 || t < least {
			victim, least = k, t
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(s.tat, victim)
}

// sweep drops up to n buckets of s (locked) that are full again; they hold
// nothing a fresh bucket would not.
func (s *memShard) sweep(now int64, n int) {
	for k, t := range s.tat {
		if n == 0 {
			return
		}
		n--
		if t <= now {
			delete(s.tat, k)
		}
	}
}

// sweepNext sweeps a few buckets of the next shard in turn.
func (m *Memory) sweepNext(now int64) {
	s := &m.shards[(m.cursor.Load()/sweepEvery)%memShards]
	s.mu.Lock()
	s.sweep(now, sweepStep)
	s.mu.Unlock()
}

// Len returns the number of buckets held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

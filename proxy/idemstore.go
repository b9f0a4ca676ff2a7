package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MemoryIdempotency is an IdempotencyStore for one replica. It is bounded
// (IdempotencyBounds) and split into shards, each under its own lock, that
// drop expired records a few at a time as they are used: no sweep ever
// holds the whole store. Safe for concurrent use; the zero value is not
// usable, call NewMemoryIdempotency.
type MemoryIdempotency struct {
	b      IdempotencyBounds
	shards [idemShards]idemShard
	now    func() time.Time // replaced in tests

	scopeMu   sync.Mutex
	scopes    map[string]int // live records per scope
	reclaimed time.Time      // last reclaim
}

const (
	idemShards = 16
	// idemSweepStep is how many records Begin looks at for expiry in its
	// shard: enough to outpace insertions, so expired records cannot pile up.
	idemSweepStep = 4
	// idemFullRetry is the Retry-After of a full scope in memory, which
	// does not track when its oldest record expires.
	idemFullRetry = time.Minute
)

type idemShard struct {
	mu       sync.Mutex
	recs     map[string]memIdem
	fullScan time.Time // last scan of the whole shard for room
}

type memIdem struct {
	rec     IdempotencyRecord
	expires time.Time
}

// NewMemoryIdempotency returns an empty in-memory store with the default
// bounds.
func NewMemoryIdempotency() *MemoryIdempotency {
	m, _ := NewMemoryIdempotencyBounded(IdempotencyBounds{})
	return m
}

// NewMemoryIdempotencyBounded returns an empty in-memory store with bounds b.
func NewMemoryIdempotencyBounded(b IdempotencyBounds) (*MemoryIdempotency, error) {
	b, err := b.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &MemoryIdempotency{b: b, now: time.Now, scopes: map[string]int{}}
	for i := range m.shards {
		m.shards[i].recs = map[string]memIdem{}
	}
	return m, nil
}

func (m *MemoryIdempotency) shard(key string) *idemShard {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &m.shards[h.Sum32()%idemShards]
}

// Len returns the number of records held, expired ones not yet dropped
// included.
func (m *MemoryIdempotency) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.recs)
		s.mu.Unlock()
	}
	return n
}

// drop deletes key from s (locked) and releases its scope's count.
func (m *MemoryIdempotency) drop(s *idemShard, key string) {
	delete(s.recs, key)
	if sc := scopeOf(key); sc != "" {
		m.scopeMu.Lock()
		if m.scopes[sc]--; m.scopes[sc] <= 0 {
			delete(m.scopes, sc)
		}
		m.scopeMu.Unlock()
	}
}

// sweep drops expired records of s (locked), looking at up to n of them
// (all when n < 0), from where Go's map iteration starts.
func (m *MemoryIdempotency) sweep(s *idemShard, now time.Time, n int) {
	for k, v := range s.recs {
		if n == 0 {
			return
		}
		n--
		if now.After(v.expires) {
			m.drop(s, k)
		}
	}
}

// Begin implements IdempotencyStore. A scope at its bound may hold
// records that expired unseen: the store then drops the expired records of
// every shard, one shard at a time and at most once a second, and tries
// again.
func (m *MemoryIdempotency) Begin(ctx context.Context, key string, rec *IdempotencyRecord, lease time.Duration) (*IdempotencyRecord, bool, error) {
	cur, started, err := m.begin(key, rec, lease)
	var full *IdempotencyFullError
	if !errors.As(err, &full) || !m.reclaim() {
		return cur, started, err
	}
	return m.begin(key, rec, lease)
}

// reclaim drops every expired record, shard by shard, unless it did less
// than a second ago; it reports whether it ran.
func (m *MemoryIdempotency) reclaim() bool {
	now := m.now()
	m.scopeMu.Lock()
	if now.Sub(m.reclaimed) < time.Second {
		m.scopeMu.Unlock()
		return false
	}
	m.reclaimed = now
	m.scopeMu.Unlock()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		m.sweep(s, now, -1)
		s.mu.Unlock()
	}
	return true
}

func (m *MemoryIdempotency) begin(key string, rec *IdempotencyRecord, lease time.Duration) (*IdempotencyRecord, bool, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	m.sweep(s, now, idemSweepStep)
	if cur, ok := s.recs[key]; ok {
		if now.Before(cur.expires) {
			c := cur.rec
			return &c, false, nil
		}
		m.drop(s, key)
	}
	if limit := (m.b.MaxRecords + idemShards - 1) / idemShards; len(s.recs) >= limit {
		if now.Sub(s.fullScan) < time.Second { // a full scan at most once a second per shard
			return nil, false, ErrIdempotencyStoreFull
		}
		s.fullScan = now
		m.sweep(s, now, -1)
		if len(s.recs) >= limit {
			return nil, false, ErrIdempotencyStoreFull
		}
	}
	if sc := scopeOf(key); sc != "" {
		m.scopeMu.Lock()
		if m.scopes[sc] >= m.b.MaxPerScope {
			m.scopeMu.Unlock()
			return nil, false, &IdempotencyFullError{RetryAfter: idemFullRetry}
		}
		m.scopes[sc]++
		m.scopeMu.Unlock()
	}
	s.recs[key] = memIdem{rec: *rec, expires: now.Add(lease)}
	return nil, true, nil
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotency) Complete(_ context.Context, key string, rec *IdempotencyRecord, ttl time.Duration) error {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.recs[key]; ok && cur.rec.Owner == rec.Owner && !cur.rec.Done {
		done := *rec
		done.Owner = ""
		s.recs[key] = memIdem{rec: done, expires: m.now().Add(ttl)}
	}
	return nil
}

// Abort implements IdempotencyStore.
func (m *MemoryIdempotency) Abort(_ context.Context, key, owner string) error {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.recs[key]; ok && cur.rec.Owner == owner && !cur.rec.Done {
		m.drop(s, key)
	}
	return nil
}

// RedisIdempotency is an IdempotencyStore shared by every replica through
// Redis. Records are JSON under Prefix+key and expire by themselves. The
// records of a scope (a key "...{scope}...") are also indexed, by expiry,
// in a sorted set under Prefix+"idemscope:{scope}", in the same Cluster
// slot, which bounds them (IdempotencyBounds.MaxPerScope).
type RedisIdempotency struct {
	client      redis.UniversalClient
	prefix      string
	timeout     time.Duration
	maxPerScope int
}

// NewRedisIdempotency returns a store on client with the default bounds.
// prefix starts every key; timeout bounds each call (0: 500ms).
func NewRedisIdempotency(client redis.UniversalClient, prefix string, timeout time.Duration) (*RedisIdempotency, error) {
	return NewRedisIdempotencyBounded(client, prefix, timeout, IdempotencyBounds{})
}

// NewRedisIdempotencyBounded is NewRedisIdempotency with bounds b (only
// MaxPerScope applies: Redis bounds its own memory).
func NewRedisIdempotencyBounded(client redis.UniversalClient, prefix string, timeout time.Duration, b IdempotencyBounds) (*RedisIdempotency, error) {
	if client == nil {
		return nil, errors.New("proxy: idempotency store needs a Redis client")
	}
	b, err := b.withDefaults()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	return &RedisIdempotency{client: client, prefix: prefix, timeout: timeout, maxPerScope: b.MaxPerScope}, nil
}

// keys returns the Redis keys of key: the record, and its scope's index
// when it has a scope.
func (s *RedisIdempotency) keys(key string) []string {
	if sc := scopeOf(key); sc != "" {
		return []string{s.prefix + key, s.prefix + "idemscope:{" + sc + "}"}
	}
	return []string{s.prefix + key}
}

// beginScript claims KEYS[1] unless it exists, in one round trip: it
// returns the record already there, or nil after claiming. With a scope
// index KEYS[2], it first drops the index's expired entries and refuses
// the claim when ARGV[3] remain, returning {ms until the oldest expires}.
var beginScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
if #KEYS > 1 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {math.max(tonumber(oldest[2]) - now, 1)}
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// ownedScript replaces (ARGV[2] set) or deletes KEYS[1] only while it is
// still the in-flight claim of owner ARGV[1], and keeps the scope index
// KEYS[2], when there is one, in step.
var ownedScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local rec = cjson.decode(cur)
if rec.o ~= ARGV[1] or rec.d then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  if #KEYS > 1 then redis.call('ZREM', KEYS[2], KEYS[1]) end
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if #KEYS > 1 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[3]), KEYS[1])
    if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  end
end
return 1
`)

// Begin implements IdempotencyStore.
func (s *RedisIdempotency) Begin(ctx context.Context, key string, rec *IdempotencyRecord, lease time.Duration) (*IdempotencyRecord, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, false, err
	}
	res, err := beginScript.Run(ctx, s.client, s.keys(key), val, lease.Milliseconds(), s.maxPerScope).Result()
	if errors.Is(err, redis.Nil) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	switch v := res.(type) {
	case string:
		var cur IdempotencyRecord
		if err := json.Unmarshal([]byte(v), &cur); err != nil {
			return nil, false, err
		}
		return &cur, false, nil
	case []any:
		if ms, ok := v[0].(int64); ok && len(v) == 1 {
			return nil, false, &IdempotencyFullError{RetryAfter: time.Duration(ms) * time.Millisecond}
		}
	}
	return nil, false, fmt.Errorf("proxy: idempotency store: unexpected reply %v", res)
}

// Complete implements IdempotencyStore.
func (s *RedisIdempotency) Complete(ctx context.Context, key string, rec *IdempotencyRecord, ttl time.Duration) error {
	done := *rec
	done.Owner = ""
	val, err := json.Marshal(&done)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return ownedScript.Run(ctx, s.client, s.keys(key), rec.Owner, val, ttl.Milliseconds()).Err()
}

// Abort implements IdempotencyStore.
func (s *RedisIdempotency) Abort(ctx context.Context, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return ownedScript.Run(ctx, s.client, s.keys(key), owner, "", 0).Err()
}

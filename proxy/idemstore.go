package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MemoryIdempotency is an IdempotencyStore for one replica. Safe for
// concurrent use; the zero value is not usable, call NewMemoryIdempotency.
type MemoryIdempotency struct {
	mu        sync.Mutex
	recs      map[string]memIdem
	lastSweep time.Time
}

type memIdem struct {
	rec     IdempotencyRecord
	expires time.Time
}

// NewMemoryIdempotency returns an empty in-memory store.
func NewMemoryIdempotency() *MemoryIdempotency {
	return &MemoryIdempotency{recs: map[string]memIdem{}, lastSweep: time.Now()}
}

// Begin implements IdempotencyStore.
func (m *MemoryIdempotency) Begin(_ context.Context, key string, rec *IdempotencyRecord, lease time.Duration) (*IdempotencyRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if now.Sub(m.lastSweep) > time.Minute {
		for k, v := range m.recs {
			if now.After(v.expires) {
				delete(m.recs, k)
			}
		}
		m.lastSweep = now
	}
	if cur, ok := m.recs[key]; ok && now.Before(cur.expires) {
		c := cur.rec
		return &c, false, nil
	}
	m.recs[key] = memIdem{rec: *rec, expires: now.Add(lease)}
	return nil, true, nil
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotency) Complete(_ context.Context, key string, rec *IdempotencyRecord, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.recs[key]; ok && cur.rec.Owner == rec.Owner && !cur.rec.Done {
		done := *rec
		done.Owner = ""
		m.recs[key] = memIdem{rec: done, expires: time.Now().Add(ttl)}
	}
	return nil
}

// Abort implements IdempotencyStore.
func (m *MemoryIdempotency) Abort(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.recs[key]; ok && cur.rec.Owner == owner && !cur.rec.Done {
		delete(m.recs, key)
	}
	return nil
}

// RedisIdempotency is an IdempotencyStore shared by every replica through
// Redis. Records are JSON under Prefix+key and expire by themselves.
type RedisIdempotency struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewRedisIdempotency returns a store on client. prefix starts every key;
// timeout bounds each call (0: 500ms).
func NewRedisIdempotency(client redis.UniversalClient, prefix string, timeout time.Duration) (*RedisIdempotency, error) {
	if client == nil {
		return nil, errors.New("proxy: idempotency store needs a Redis client")
	}
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	return &RedisIdempotency{client: client, prefix: prefix, timeout: timeout}, nil
}

// beginScript claims KEYS[1] unless it exists, in one round trip: it
// returns the record already there, or nil after claiming.
var beginScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// ownedScript replaces (ARGV[2] set) or deletes KEYS[1] only while it is
// still the in-flight claim of owner ARGV[1].
var ownedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local rec = cjson.decode(cur)
if rec.o ~= ARGV[1] or rec.d then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
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
	res, err := beginScript.Run(ctx, s.client, []string{s.prefix + key}, val, lease.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	var cur IdempotencyRecord
	if err := json.Unmarshal([]byte(res), &cur); err != nil {
		return nil, false, err
	}
	return &cur, false, nil
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
	return ownedScript.Run(ctx, s.client, []string{s.prefix + key}, rec.Owner, val, ttl.Milliseconds()).Err()
}

// Abort implements IdempotencyStore.
func (s *RedisIdempotency) Abort(ctx context.Context, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return ownedScript.Run(ctx, s.client, []string{s.prefix + key}, owner, "", 0).Err()
}

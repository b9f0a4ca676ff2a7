package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
)

// patient is how long a Redis call may take in tests that are not about
// timeouts, so that a busy machine does not fail them.
const patient = 5 * time.Second

// newRedisClient returns a client of s, built as keygate builds them.
func newRedisClient(t *testing.T, s *redistest.Server) redis.UniversalClient {
	t.Helper()
	c, err := redisconn.New(redisconn.Config{URL: s.URL(), DialTimeout: patient, ReadTimeout: patient, WriteTimeout: patient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newTestStore returns a store on its own client of s.
func newTestStore(t *testing.T, s *redistest.Server, cfg StoreConfig) *Store {
	t.Helper()
	cfg.Client = newRedisClient(t, s)
	if cfg.Timeout == 0 {
		cfg.Timeout = patient
	}
	st, err := NewStore(cfg)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return st
}

func hashOf(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func TestStoreAddListRevoke(t *testing.T) {
	srv := redistest.Start(t)
	st := newTestStore(t, srv, StoreConfig{})
	ctx := context.Background()
	exp := time.Now().Add(24 * time.Hour).Truncate(time.Second).UTC()
	token, err := st.Add(ctx, "shop", []string{testProductID}, []string{"activate"}, exp)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if !strings.HasPrefix(token, "kg_") || len(token) != 3+storeTokenBody || !bearerSyntax(token) {
		t.Fatalf("Add = %q, want kg_ and %d base64url characters", token, storeTokenBody)
	}
	tok, reason, err := st.Authenticate(ctx, token)
	if tok == nil || err != nil {
		t.Fatalf("Authenticate(new token) = %v, %q, %v", tok, reason, err)
	}
	if tok.Name != "shop" || tok.SHA256 != hashOf(token) || !tok.ExpiresAt().Equal(exp) || !cmp.Equal(tok.Operations, []string{"activate"}) {
		t.Errorf("token = %+v", tok)
	}

	// Nothing in Redis holds the token, only its hash.
	client := newRedisClient(t, srv)
	keys, _ := client.Keys(ctx, "*").Result()
	for _, k := range keys {
		dump, _ := client.Dump(ctx, k).Result()
		if strings.Contains(k, token) || strings.Contains(dump, token) || strings.Contains(dump, token[3:]) {
			t.Errorf("Redis key %q holds the token", k)
		}
		if !strings.HasPrefix(k, "{keygate:}auth/") {
			t.Errorf("Redis key %q is outside {keygate:}auth/", k)
		}
	}

	if _, err := st.Add(ctx, "shop", []string{"*"}, nil, time.Time{}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Add(same name) = %v, want ErrNameTaken", err)
	}
	_, err = st.Add(ctx, "Bad Name", []string{"*", "p"}, []string{"Get"}, time.Now().Add(-time.Hour))
	for _, want := range []string{"name", `"*" must stand alone`, `operation "Get"`, "not in the future"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Add(bad) error = %v, want it to mention %s", err, want)
		}
	}

	token2, err := st.Add(ctx, "ops", []string{"*"}, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "shop" || list[1].Name != "ops" || list[0].Hash != hashOf(token) || list[1].Operations != nil {
		t.Fatalf("List = %+v, %v", list, err)
	}

	rec, err := st.Revoke(ctx, "shop")
	if err != nil || rec.Name != "shop" || rec.Revoked.IsZero() {
		t.Fatalf("Revoke(shop) = %+v, %v", rec, err)
	}
	wantAuth(t, st, token, ReasonRevoked)
	rec, err = st.Revoke(ctx, hashOf(token2)[:8])
	if err != nil || rec.Name != "ops" {
		t.Fatalf("Revoke(hash prefix) = %+v, %v", rec, err)
	}
	wantAuth(t, st, token2, ReasonRevoked)
	if rec, err := st.Revoke(ctx, hashOf(token2)); err != nil || rec.Status(time.Now()) != "revoked" {
		t.Errorf("Revoke(revoked) = %+v, %v; want no change", rec, err)
	}
	if _, err := st.Add(ctx, "shop", []string{"*"}, nil, time.Time{}); err != nil {
		t.Errorf("Add(name of a revoked token) = %v, want the name free again", err)
	}
	list, _ = st.List(ctx)
	if got := []string{list[0].Status(time.Now()), list[1].Status(time.Now()), list[2].Status(time.Now())}; !cmp.Equal(got, []string{"revoked", "revoked", "active"}) {
		t.Errorf("List statuses = %v", got)
	}

	client.SAdd(ctx, "{keygate:}auth/tokens", "deadbeef"+strings.Repeat("0", 56), "deadbeef"+strings.Repeat("1", 56))
	for ref, want := range map[string]error{"deadbeef": ErrAmbiguous, "nobody": ErrNotFound, "1234567": ErrNotFound, "ffffffffff": ErrNotFound} {
		if _, err := st.Revoke(ctx, ref); !errors.Is(err, want) {
			t.Errorf("Revoke(%q) = %v, want %v", ref, err, want)
		}
	}
	if list, err := st.List(ctx); err != nil || len(list) != 3 { // the two dangling entries are pruned
		t.Errorf("List = %d records, %v; want 3", len(list), err)
	}
	if n, _ := client.SCard(ctx, "{keygate:}auth/tokens").Result(); n != 3 {
		t.Errorf("index holds %d entries after List, want 3", n)
	}
}

// Two replicas share one Redis: a token revoked through one is refused by
// the other within CacheTTL, and not before its cached answer runs out.
func TestStoreRevocationReachesReplicasWithinTTL(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = 600 * time.Millisecond
	a := newTestStore(t, srv, StoreConfig{CacheTTL: ttl})
	b := newTestStore(t, srv, StoreConfig{CacheTTL: ttl})
	ctx := context.Background()
	token, err := a.Add(ctx, "replicated", []string{"*"}, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantAuth(t, b, token, "") // b caches the record
	cachedAt := time.Now()
	if _, err := a.Revoke(ctx, "replicated"); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	wantAuth(t, a, token, ReasonRevoked) // the revoking replica knows at once
	if time.Since(cachedAt) < ttl/2 {
		wantAuth(t, b, token, "") // b still trusts its cache: that is the price of the TTL
	}
	for {
		_, reason, _ := b.Authenticate(ctx, token)
		if reason == ReasonRevoked {
			break
		}
		if time.Since(revokedAt) > ttl+500*time.Millisecond {
			t.Fatalf("replica b still accepts the token %v after revocation (CacheTTL %v)", time.Since(revokedAt), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("replica b refused the token %v after revocation, %v after it cached the record (CacheTTL %v)",
		time.Since(revokedAt).Round(time.Millisecond), time.Since(cachedAt).Round(time.Millisecond), ttl)
}

func TestStoreCacheAndCollapse(t *testing.T) {
	srv := redistest.Start(t)
	st := newTestStore(t, srv, StoreConfig{CacheTTL: time.Hour})
	c := newClock()
	st.now = c.Now
	ctx := context.Background()
	hgetall := func() int { return srv.Calls()["hgetall"] }

	// Malformed and foreign tokens never reach Redis.
	before := hgetall()
	wantAuth(t, st, "kg_"+strings.Repeat("A", storeTokenBody), ReasonMalformed)
	wantAuth(t, st, "kg_short", ReasonMalformed)
	if tok, reason, err := st.Authenticate(ctx, "other_token"); tok != nil || reason != "" || err != nil {
		t.Errorf("Authenticate(foreign) = %v, %q, %v; want not recognized", tok, reason, err)
	}
	if got := hgetall() - before; got != 0 {
		t.Errorf("malformed tokens made %d HGETALL calls, want 0", got)
	}

	// An unknown token is asked once, then answered from the cache.
	unknown := newStoreToken("kg_")
	wantAuth(t, st, unknown, ReasonUnknown)
	wantAuth(t, st, unknown, ReasonUnknown)
	if got := hgetall() - before; got != 1 {
		t.Errorf("two lookups of an unknown token made %d HGETALL calls, want 1", got)
	}

	// Concurrent lookups of one token make one call.
	token, err := st.Add(ctx, "busy", []string{"*"}, nil, c.Now().Add(90*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	before = hgetall()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if tok, reason, err := st.Authenticate(ctx, token); tok == nil {
				t.Errorf("Authenticate = %q, %v", reason, err)
			}
		})
	}
	wg.Wait()
	if got := hgetall() - before; got != 1 {
		t.Errorf("50 concurrent lookups made %d HGETALL calls, want 1", got)
	}

	// A cached record never outlives the token's expiry.
	c.Add(2 * time.Hour)
	wantAuth(t, st, token, ReasonExpired)
}

func TestStoreRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	st := newTestStore(t, srv, StoreConfig{Timeout: 200 * time.Millisecond, CacheTTL: time.Hour})
	ctx := context.Background()
	token, err := st.Add(ctx, "cached", []string{"*"}, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantAuth(t, st, token, "")
	srv.Pause() // a Redis that hangs rather than refuses
	defer srv.Resume()
	start := time.Now()
	wantAuth(t, st, newStoreToken("kg_"), ReasonUnavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("lookup with Redis hung took %v, want about the 200ms Timeout", d)
	}
	wantAuth(t, st, token, "") // answered from the cache
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := st.List(ctx); err == nil {
		t.Error("List with Redis hung = nil error")
	}
}

func TestNewStoreErrors(t *testing.T) {
	_, err := NewStore(StoreConfig{Prefix: "{x}", TokenPrefix: "k g", CacheTTL: -1})
	for _, want := range []string{"Client", "Prefix", "TokenPrefix", "CacheTTL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewStore(bad) error = %v, want it to name %s", err, want)
		}
	}
}

func TestChecksum(t *testing.T) {
	for range 100 {
		tok := newStoreToken("kg_")
		if !checksumOK(tok[3:]) {
			t.Fatalf("checksumOK(%q) = false", tok)
		}
		b := []byte(tok[3:])
		b[5] ^= 'A' ^ 'B' // one character mistyped: CRC-32 catches every such change
		if checksumOK(string(b)) {
			t.Fatalf("checksumOK accepted a mistyped token %q", b)
		}
	}
}

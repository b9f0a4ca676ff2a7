package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redistest"
)

// TestIdempotencyPerTokenBound stores as many answers as one token may
// keep, then checks that a new key is refused with a contract 429 while
// replays, other tokens and keys freed by an aborted claim still work, on
// the memory store and on a real Redis.
func TestIdempotencyPerTokenBound(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { client.Close() })
	const bound = 3
	b := IdempotencyBounds{MaxPerScope: bound}
	mem, err := NewMemoryIdempotencyBounded(b)
	if err != nil {
		t.Fatal(err)
	}
	red, err := NewRedisIdempotencyBounded(client, "bound:", time.Second, b)
	if err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]IdempotencyStore{"memory": mem, "redis": red} {
		t.Run(name, func(t *testing.T) {
			g := newGateway(t, withIdempotency(store, false))
			status := 200
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				io.WriteString(w, `{"message":"License valid","code":0}`)
			})
			licence := func(i int) string { return fmt.Sprintf("KEY-TEST-0000-0000-0000-%04d", i) }
			idem := func(i int) call { return idemCall(fmt.Sprintf("bound-%d", i), activateBody(licence(i))) }
			// an aborted claim (a 500 is not stored) frees its place
			status = 500
			if a := g.do(t, idem(99)); a.status != 500 {
				t.Fatalf("backend failure = %d, want 500", a.status)
			}
			status = 200
			for i := range bound {
				if a := g.do(t, idem(i)); a.status != 200 {
					t.Fatalf("key %d = %d, want 200", i, a.status)
				}
			}
			full := g.do(t, idem(bound))
			if full.status != 429 || full.code != 3 || full.msg != msgIdemFull || full.header.Get("Retry-After") == "" {
				t.Errorf("key past the bound = %d %q code %d Retry-After %q, want 429 %q code 3 with Retry-After",
					full.status, full.msg, full.code, full.header.Get("Retry-After"), msgIdemFull)
			}
			if a := g.do(t, idem(0)); a.status != 200 || a.header.Get(ReplayHeader) != "true" {
				t.Errorf("replay of a stored key = %d replayed %q, want a 200 replay", a.status, a.header.Get(ReplayHeader))
			}
			other := call{path: "/activate-key", token: testTokens["scoped"], body: activateBody(licence(50)), header: map[string]string{"Idempotency-Key": "bound-other"}}
			if a := g.do(t, other); a.status != 200 {
				t.Errorf("another token's new key = %d, want 200: bounds are per token", a.status)
			}
			if got, want := g.up.calls.Load(), int64(bound+2); got != want {
				t.Errorf("backend calls = %d, want %d", got, want)
			}
		})
	}
}

// TestMemoryIdempotencyBounded floods the memory store with distinct keys:
// it never holds more than its bound, refuses claims past it as a full
// store, and takes claims again once records expire, without a sweep of
// the whole store.
func TestMemoryIdempotencyBounded(t *testing.T) {
	const maxRecords = 2 * idemShards
	m, err := NewMemoryIdempotencyBounded(IdempotencyBounds{MaxRecords: maxRecords})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	started, refused := 0, 0
	for i := range 1000 {
		_, ok, err := m.Begin(ctx, fmt.Sprintf("idem:flood-%d", i), &IdempotencyRecord{Owner: "o"}, time.Minute)
		switch {
		case ok:
			started++
		case errors.Is(err, ErrIdempotencyStoreFull):
			refused++
		default:
			t.Fatalf("Begin %d = %v, %v; want started or ErrIdempotencyStoreFull", i, ok, err)
		}
	}
	if got := m.Len(); got > maxRecords || started > maxRecords {
		t.Errorf("after 1000 claims Len() = %d, started %d, want at most %d", got, started, maxRecords)
	}
	if refused == 0 {
		t.Error("no claim was refused past the bound")
	}
	now = now.Add(2 * time.Minute) // every claim expired
	for i := range maxRecords / 2 {
		if _, ok, err := m.Begin(ctx, fmt.Sprintf("idem:later-%d", i), &IdempotencyRecord{Owner: "o"}, time.Minute); !ok {
			t.Fatalf("Begin after expiry %d = %v, %v; want started", i, ok, err)
		}
	}
	if got := m.Len(); got > maxRecords {
		t.Errorf("Len() = %d after expiry, want at most %d", got, maxRecords)
	}
}

// TestMemoryIdempotencyReclaimsScope checks that a scope full of records
// that expired unseen takes a new claim.
func TestMemoryIdempotencyReclaimsScope(t *testing.T) {
	m, err := NewMemoryIdempotencyBounded(IdempotencyBounds{MaxPerScope: 2})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	for i := range 2 {
		if _, ok, err := m.Begin(ctx, fmt.Sprintf("idem:{s}%d", i), &IdempotencyRecord{Owner: "o"}, time.Minute); !ok {
			t.Fatalf("Begin %d = %v, %v; want started", i, ok, err)
		}
	}
	var full *IdempotencyFullError
	if _, _, err := m.Begin(ctx, "idem:{s}2", &IdempotencyRecord{Owner: "o"}, time.Minute); !errors.As(err, &full) {
		t.Fatalf("Begin past the scope bound = %v, want *IdempotencyFullError", err)
	}
	if _, ok, err := m.Begin(ctx, "idem:{other}0", &IdempotencyRecord{Owner: "o"}, time.Minute); !ok {
		t.Errorf("Begin in another scope = %v, %v; want started", ok, err)
	}
	now = now.Add(2 * time.Minute)
	if _, ok, err := m.Begin(ctx, "idem:{s}3", &IdempotencyRecord{Owner: "o"}, time.Minute); !ok {
		t.Errorf("Begin once the scope's records expired = %v, %v; want started", ok, err)
	}
}

func TestScopeOf(t *testing.T) {
	for key, want := range map[string]string{"idem:{tabc}0123": "tabc", "idem:0123": "", "idem:{open": "", "{}x": ""} {
		if got := scopeOf(key); got != want {
			t.Errorf("scopeOf(%q) = %q, want %q", key, got, want)
		}
	}
}

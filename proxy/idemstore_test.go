package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redistest"
)

// TestIdempotencyStores runs the same claim/complete/abort story against
// the memory store and against a real Redis.
func TestIdempotencyStores(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { client.Close() })
	rstore, err := NewRedisIdempotency(client, "test:", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]IdempotencyStore{"memory": NewMemoryIdempotency(), "redis": rstore}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			first := &IdempotencyRecord{Owner: "a", FP: "fp1"}
			if _, started, err := s.Begin(ctx, "k", first, time.Minute); err != nil || !started {
				t.Fatalf("Begin on a free key = started %v, %v; want started", started, err)
			}
			cur, started, err := s.Begin(ctx, "k", &IdempotencyRecord{Owner: "b", FP: "fp1"}, time.Minute)
			if err != nil || started || cur.Owner != "a" || cur.Done {
				t.Fatalf("Begin on a claimed key = %+v started %v %v; want a's claim", cur, started, err)
			}
			// someone who does not own the claim can neither finish nor drop it
			_ = s.Complete(ctx, "k", &IdempotencyRecord{Owner: "b", FP: "fp1", Done: true, Status: 500}, time.Minute)
			_ = s.Abort(ctx, "k", "b")
			if cur, _, _ := s.Begin(ctx, "k", &IdempotencyRecord{Owner: "c"}, time.Minute); cur == nil || cur.Owner != "a" {
				t.Fatalf("after b's attempts the record is %+v, want a's claim", cur)
			}
			done := &IdempotencyRecord{Owner: "a", FP: "fp1", Done: true, Status: 200, Code: "0", Type: "application/json", Body: []byte(`{"message":"ok","code":0}`)}
			if err := s.Complete(ctx, "k", done, time.Minute); err != nil {
				t.Fatal(err)
			}
			cur, started, _ = s.Begin(ctx, "k", &IdempotencyRecord{Owner: "d"}, time.Minute)
			if started || !cur.Done || cur.Status != 200 || string(cur.Body) != string(done.Body) || cur.Owner != "" {
				t.Fatalf("after Complete the record is %+v started %v, want the stored answer", cur, started)
			}
			if err := s.Abort(ctx, "k", "a"); err != nil {
				t.Fatal(err)
			}
			if cur, _, _ := s.Begin(ctx, "k", &IdempotencyRecord{Owner: "e"}, time.Minute); cur == nil || !cur.Done {
				t.Error("Abort removed a finished answer")
			}
			// an abandoned claim expires after its lease
			if _, started, _ := s.Begin(ctx, "lease", &IdempotencyRecord{Owner: "x", FP: "f"}, 50*time.Millisecond); !started {
				t.Fatal("Begin on a fresh key did not start")
			}
			time.Sleep(120 * time.Millisecond)
			if _, started, _ := s.Begin(ctx, "lease", &IdempotencyRecord{Owner: "y", FP: "f"}, time.Minute); !started {
				t.Error("a claim outlived its lease")
			}
		})
	}
	if ttl := client.PTTL(context.Background(), "test:k").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of a stored answer = %s, want within its TTL", ttl)
	}
}

func TestRedisIdempotencyDown(t *testing.T) {
	rs := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	s, _ := NewRedisIdempotency(client, "test:", 200*time.Millisecond)
	rs.Kill()
	if _, _, err := s.Begin(context.Background(), "k", &IdempotencyRecord{Owner: "a"}, time.Minute); err == nil {
		t.Error("Begin with Redis down = nil error, want an error (the failure mode decides)")
	}
}

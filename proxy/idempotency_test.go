package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func withIdempotency(store IdempotencyStore, refuse bool) fixtureOpt {
	return func(o *Options) { o.Idempotency = &IdempotencyOptions{Store: store, Refuse: refuse} }
}

func idemCall(key, body string) call {
	return call{path: "/activate-key", token: testTokens["global"], body: body, header: map[string]string{"Idempotency-Key": key}}
}

func TestIdempotentRetryIsReplayed(t *testing.T) {
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false))
	n := 0
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"License valid","activation":`+itoa(n)+`,"code":0}`)
	})
	first := g.do(t, idemCall("retry-1", activateBody(testKey)))
	if first.status != 200 || first.header.Get(ReplayHeader) != "" {
		t.Fatalf("first = %d replayed=%q, want a fresh 200", first.status, first.header.Get(ReplayHeader))
	}
	for i := 0; i < 15; i++ { // more than the activation limit: replays spend no limit
		again := g.do(t, idemCall("retry-1", activateBody(testKey)))
		if again.status != 200 || string(again.raw) != string(first.raw) {
			t.Fatalf("retry %d = %d %s, want the first answer %s", i, again.status, again.raw, first.raw)
		}
		if again.header.Get(ReplayHeader) != "true" {
			t.Errorf("retry %d: %s = %q, want true", i, ReplayHeader, again.header.Get(ReplayHeader))
		}
	}
	if calls := g.up.calls.Load(); calls != 1 {
		t.Errorf("upstream calls = %d, want 1", calls)
	}
}

func TestIdempotencyKeyChecks(t *testing.T) {
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false))
	g.do(t, idemCall("k1", activateBody(testKey)))
	tests := []struct {
		name   string
		c      call
		status int
		msg    string
	}{
		{"same key, other body", idemCall("k1", activateBody("KEY-TEST-0000-0000-0000-0009")), 400, msgIdemMismatch},
		{"key too long", idemCall(strings.Repeat("k", 256), activateBody(testKey)), 400, msgIdemInvalid},
		{"non-ASCII", idemCall("clé", activateBody(testKey)), 400, msgIdemInvalid},
		{"same key, other token", call{path: "/activate-key", token: testTokens["scoped"], body: activateBody(testKey),
			header: map[string]string{"Idempotency-Key": "k1"}}, 200, "License valid"},
		{"same key, other route", call{path: "/block-key", token: testTokens["global"], body: getBody(testKey),
			header: map[string]string{"Idempotency-Key": "k1"}}, 200, "License valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := g.do(t, tc.c)
			if a.status != tc.status || a.msg != tc.msg {
				t.Errorf("answer = %d %s, want %d %q", a.status, a.raw, tc.status, tc.msg)
			}
		})
	}
}

func TestIdempotencyDoesNotStoreServerErrors(t *testing.T) {
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false))
	fail := true
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if fail {
			w.WriteHeader(500)
			io.WriteString(w, `{"message":"DB_INSERT_FAIL","code":1}`)
			return
		}
		io.WriteString(w, `{"message":"License valid","code":0}`)
	})
	if a := g.do(t, idemCall("k500", activateBody(testKey))); a.status != 500 {
		t.Fatalf("first = %d, want the backend's 500", a.status)
	}
	fail = false
	if a := g.do(t, idemCall("k500", activateBody(testKey))); a.status != 200 || a.header.Get(ReplayHeader) != "" {
		t.Fatalf("retry after a 500 = %d replayed=%q, want a fresh 200", a.status, a.header.Get(ReplayHeader))
	}
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(403)
		io.WriteString(w, `{"message":"Activation limit reached","code":2}`)
	})
	g.do(t, idemCall("k403", activateBody(testKey)))
	if a := g.do(t, idemCall("k403", activateBody(testKey))); a.status != 403 || a.header.Get(ReplayHeader) != "true" {
		t.Errorf("retry after a 403 = %d replayed=%q, want the stored 403", a.status, a.header.Get(ReplayHeader))
	}
	if calls := g.up.calls.Load(); calls != 3 {
		t.Errorf("upstream calls = %d, want 3 (500, 200, 403)", calls)
	}
}

// waitingStore is an IdempotencyStore that tells, once per request, when a
// request found its key claimed by another one in flight.
type waitingStore struct {
	IdempotencyStore
	mu      sync.Mutex
	waiting map[string]bool // owners told so far
	waits   chan struct{}
}

func (s *waitingStore) Begin(ctx context.Context, key string, rec *IdempotencyRecord, lease time.Duration) (*IdempotencyRecord, bool, error) {
	cur, started, err := s.IdempotencyStore.Begin(ctx, key, rec, lease)
	if err == nil && !started && !cur.Done {
		s.mu.Lock()
		first := !s.waiting[rec.Owner]
		s.waiting[rec.Owner] = true
		s.mu.Unlock()
		if first {
			s.waits <- struct{}{}
		}
	}
	return cur, started, err
}

func TestConcurrentRetriesReachBackendOnce(t *testing.T) {
	const n = 8
	store := &waitingStore{IdempotencyStore: NewMemoryIdempotency(), waiting: map[string]bool{}, waits: make(chan struct{}, n)}
	g := newGateway(t, withIdempotency(store, false))
	release := make(chan struct{})
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		<-release // held until every twin waits for this answer
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"License valid","code":0}`)
	})
	answers := make([]answer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = g.send(idemCall("concurrent", activateBody(testKey)))
		}()
	}
	guard := time.After(time.Minute) // against a hang, not to order anything
wait:
	for range n - 1 {
		select {
		case <-store.waits:
		case <-guard:
			t.Error("not every twin waited for the first request's answer")
			break wait
		}
	}
	close(release)
	wg.Wait()
	for i, a := range answers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
			continue
		}
		assertContract(t, a)
		if a.status != 200 || string(a.raw) != string(answers[0].raw) {
			t.Errorf("caller %d = %d %s, want %s", i, a.status, a.raw, answers[0].raw)
		}
	}
	if calls := g.up.calls.Load(); calls != 1 {
		t.Errorf("upstream calls = %d, want 1", calls)
	}
}

// brokenStore fails every call, as an unreachable Redis would.
type brokenStore struct{}

var errStoreDown = errors.New("store down")

func (brokenStore) Begin(context.Context, string, *IdempotencyRecord, time.Duration) (*IdempotencyRecord, bool, error) {
	return nil, false, errStoreDown
}
func (brokenStore) Complete(context.Context, string, *IdempotencyRecord, time.Duration) error {
	return errStoreDown
}
func (brokenStore) Abort(context.Context, string, string) error { return errStoreDown }

func TestIdempotencyStoreDown(t *testing.T) {
	forward := newGateway(t, withIdempotency(brokenStore{}, false))
	if a := forward.do(t, idemCall("k", activateBody(testKey))); a.status != 200 || forward.up.calls.Load() != 1 {
		t.Errorf("forward mode = %d with %d upstream calls, want 200 forwarded", a.status, forward.up.calls.Load())
	}
	refuse := newGateway(t, withIdempotency(brokenStore{}, true))
	if a := refuse.do(t, idemCall("k", activateBody(testKey))); a.status != 500 || a.code != 1 || refuse.up.calls.Load() != 0 {
		t.Errorf("refuse mode = %d %s with %d upstream calls, want 500 code 1 and none", a.status, a.raw, refuse.up.calls.Load())
	}
}

func TestIdempotencyExpires(t *testing.T) {
	g := newGateway(t, func(o *Options) {
		o.Idempotency = &IdempotencyOptions{Store: NewMemoryIdempotency(), TTL: 50 * time.Millisecond}
	})
	g.do(t, idemCall("short", activateBody(testKey)))
	time.Sleep(80 * time.Millisecond)
	if a := g.do(t, idemCall("short", activateBody(testKey))); a.header.Get(ReplayHeader) != "" {
		t.Error("answer replayed after its TTL")
	}
	if calls := g.up.calls.Load(); calls != 2 {
		t.Errorf("upstream calls = %d, want 2", calls)
	}
}

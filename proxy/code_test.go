package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestContractCodeTravelsAsValue checks that the contract code of every kind
// of answer reaches the metrics from the hook that decided it (writeError,
// forward's ModifyResponse and ErrorHandler), and that nothing keygate uses
// internally rides on the answer: an upstream's own Keygate-* fields are
// dropped and do not decide the code.
func TestContractCodeTravelsAsValue(t *testing.T) {
	activate := call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)}
	tests := []struct {
		name     string
		up       http.HandlerFunc // nil: the request never reaches the upstream
		c        call
		route    string
		status   int
		wantCode int
	}{
		{"unmatched route", nil, call{path: "/nowhere", body: `{}`}, "unmatched", 404, 1},
		{"keygate's 401", nil, call{path: "/activate-key", body: activateBody(testKey)}, "activate", 401, 1},
		{"keygate's 400", nil, call{path: "/activate-key", token: testTokens["global"], body: `{"productId":1}`}, "activate", 400, 1},
		{"upstream success", answerWith(200, "application/json", `{"message":"License valid","code":0}`), activate, "activate", 200, 0},
		{"empty upstream success", answerWith(204, "", ""), activate, "activate", 200, 0},
		{"upstream contract 409 passes", answerWith(409, "application/json", `{"message":"Already active","code":2}`), activate, "activate", 409, 2},
		{"upstream HTML 403 replaced", answerWith(403, "text/html", "<h1>forbidden</h1>"), activate, "activate", 403, 2},
		{"upstream success not JSON", answerWith(200, "text/html", "<h1>ok</h1>"), activate, "activate", 500, 1},
		{"upstream gone", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, activate, "activate", 500, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			if tc.up != nil {
				g.up.set(tc.up)
			}
			a := g.do(t, tc.c)
			if a.status != tc.status || a.code != tc.wantCode {
				t.Fatalf("answer = %d %s, want %d code %d", a.status, a.raw, tc.status, tc.wantCode)
			}
			want := fmt.Sprintf(`keygate_requests_total{code="%d",route=%q,status="%d"} 1`, tc.wantCode, tc.route, tc.status)
			if m := metricsText(t, g); !strings.Contains(m, want) {
				t.Errorf("metrics lack %s; requests counted:\n%s", want, grepLines(m, "keygate_requests_total{"))
			}
		})
	}
}

// answerWith is an upstream answering status with body, and with fields
// that look like keygate's internal ones.
func answerWith(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keygate-Internal-Code", "7")
		w.Header().Set("Keygate-Code", "7")
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// recordingStore is an IdempotencyStore that keeps every record completed.
type recordingStore struct {
	IdempotencyStore
	mu   sync.Mutex
	done []*IdempotencyRecord
}

func (s *recordingStore) Complete(ctx context.Context, key string, rec *IdempotencyRecord, ttl time.Duration) error {
	s.mu.Lock()
	s.done = append(s.done, rec)
	s.mu.Unlock()
	return s.IdempotencyStore.Complete(ctx, key, rec, ttl)
}

// TestIdempotencyStoreHoldsOnlyTheAnswer checks that a stored answer holds
// its status, code, type, body and replayable headers, nothing keygate uses
// internally or an upstream added, and that its replay is counted with the
// stored code.
func TestIdempotencyStoreHoldsOnlyTheAnswer(t *testing.T) {
	store := &recordingStore{IdempotencyStore: NewMemoryIdempotency()}
	g := newGateway(t, withIdempotency(store, false))
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hostileHeaders {
			w.Header().Set(k, v)
		}
		answerWith(409, "application/json", `{"message":"Already active","code":2}`)(w, r)
	})
	first := g.do(t, idemCall("k", activateBody(testKey)))
	replayed := g.do(t, idemCall("k", activateBody(testKey)))
	if first.status != 409 || replayed.status != 409 || replayed.header.Get(ReplayHeader) != "true" {
		t.Fatalf("answers = %d, %d replayed=%q, want 409 twice, the second replayed", first.status, replayed.status, replayed.header.Get(ReplayHeader))
	}
	if len(store.done) != 1 {
		t.Fatalf("records stored = %d, want 1", len(store.done))
	}
	rec := store.done[0]
	if rec.Status != 409 || rec.Code != "2" || rec.Type != "application/json" || string(rec.Body) != string(first.raw) {
		t.Errorf("record = %d code %q %q %s, want 409 code 2 application/json %s", rec.Status, rec.Code, rec.Type, rec.Body, first.raw)
	}
	for name := range rec.Header {
		if !answerHeader(name) || !replayableHeader(name) {
			t.Errorf("record holds header %s = %q", name, rec.Header.Get(name))
		}
	}
	want := `keygate_requests_total{code="2",route="activate",status="409"} 2`
	if m := metricsText(t, g); !strings.Contains(m, want) {
		t.Errorf("metrics lack %s; requests counted:\n%s", want, grepLines(m, "keygate_requests_total{"))
	}
}

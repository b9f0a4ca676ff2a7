package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDenyCacheAnswer(t *testing.T) {
	l := Limit{Rate: 1, Period: time.Second, Burst: 1}
	c := newDenyCache(10)
	c.remember(
		[]Request{{Key: "a", Limit: l}, {Key: "s", Limit: l, Shadow: true}, {Key: "ok", Limit: l}},
		[]Result{{RetryAfter: 100, ResetAfter: 300}, {RetryAfter: 100}, {Allowed: true}},
		1000)
	if got := c.len(); got != 1 {
		t.Fatalf("len = %d after one denial, a shadow denial and an admission, want 1", got)
	}
	tests := []struct {
		name string
		reqs []Request
		now  int64
		want []Result // nil: not answered
	}{
		{"denied bucket", []Request{{Key: "a", Limit: l}, {Key: "b", Limit: l}}, 1040,
			[]Result{{RetryAfter: 60, ResetAfter: 260}, {Allowed: true}}},
		{"other limit", []Request{{Key: "a", Limit: Limit{Rate: 2, Period: time.Second, Burst: 1}}}, 1040, nil},
		{"as a shadow rule", []Request{{Key: "a", Limit: l, Shadow: true}}, 1040, nil},
		{"shadow denied bucket", []Request{{Key: "s", Limit: l}}, 1040, nil},
		{"expired", []Request{{Key: "a", Limit: l}}, 1100, nil},
	}
	for _, tt := range tests {
		res := make([]Result, len(tt.reqs))
		hit := c.answer(tt.reqs, res, tt.now)
		if hit != (tt.want != nil) {
			t.Errorf("%s: answer = %v, want %v", tt.name, hit, tt.want != nil)
			continue
		}
		if diff := cmp.Diff(tt.want, res); hit && diff != "" {
			t.Errorf("%s: results (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := c.len(); got != 0 {
		t.Errorf("len = %d after the entry expired and was looked up, want 0", got)
	}
}

// TestDenyCacheBound floods the cache with distinct keys: it never holds
// more than its bound and drops expired entries first.
func TestDenyCacheBound(t *testing.T) {
	const size = 64
	l := Limit{Rate: 1, Period: time.Second, Burst: 1}
	c := newDenyCache(size)
	res := []Result{{RetryAfter: 1000}}
	for i := range 10 * size {
		c.remember([]Request{{Key: "k" + strconv.Itoa(i), Limit: l}}, res, 0)
		if got := c.len(); got > size {
			t.Fatalf("len = %d after %d inserts, want <= %d", got, i+1, size)
		}
	}
	// Everything so far has expired by 2000: one sweep empties the cache.
	c.remember([]Request{{Key: "late", Limit: l}}, res, 2000)
	if got := c.len(); got != 1 {
		t.Errorf("len = %d after expired entries were swept, want 1", got)
	}
}

package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock drives Memory's clock by hand.
func fakeClock(m *Memory) *atomic.Int64 {
	var now atomic.Int64
	m.now = now.Load
	return &now
}

func TestMemoryRefill(t *testing.T) {
	m := NewMemory()
	now := fakeClock(m)
	l := Limit{Rate: 10, Period: time.Second, Burst: 2} // em 100ms
	reqs := []Request{{Key: "k", Limit: l}}
	res := make([]Result, 1)
	tests := []struct {
		at      time.Duration
		allowed bool
		retry   time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{0, false, 100 * time.Millisecond},
		{60 * time.Millisecond, false, 40 * time.Millisecond},
		{100 * time.Millisecond, true, 0},
		{150 * time.Millisecond, false, 50 * time.Millisecond},
		{time.Second, true, 0},
		{time.Second, true, 0},
		{time.Second, false, 100 * time.Millisecond},
	}
	for i, tt := range tests {
		now.Store(int64(tt.at))
		got, err := m.Allow(context.Background(), reqs, res)
		if err != nil || got != tt.allowed || res[0].RetryAfter != tt.retry {
			t.Errorf("step %d at %s: Allow = %v, %v, retry %s, want %v, nil, retry %s", i, tt.at, got, err, res[0].RetryAfter, tt.allowed, tt.retry)
		}
	}
}

// TestMemorySweep checks that buckets full again are dropped as requests
// come, a few at a time, without a sweep of the whole store.
func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	now := fakeClock(m)
	now.Store(1)
	l := Limit{Rate: 1, Period: time.Second, Burst: 1}
	for _, k := range []string{"a", "b", "c"} {
		m.Allow(context.Background(), []Request{{Key: k, Limit: l}}, make([]Result, 1))
	}
	if got := m.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	now.Store(int64(time.Second) + 2) // all full again
	wide := Limit{Rate: 1, Period: time.Second, Burst: 1 << 20}
	for range sweepEvery * memShards { // sweeps visit every shard in turn
		m.Allow(context.Background(), []Request{{Key: "d", Limit: wide}}, make([]Result, 1))
	}
	if got := m.Len(); got != 1 {
		t.Errorf("Len after %d requests = %d, want 1", sweepEvery*memShards, got)
	}
}

// TestMemoryBounded floods a bounded Memory with distinct keys: it never
// holds more than its bound, and a bucket in use is kept over one nearer
// to full.
func TestMemoryBounded(t *testing.T) {
	const bound = 4 * memShards
	m, err := NewMemoryWith(MemoryOptions{MaxBuckets: bound})
	if err != nil {
		t.Fatal(err)
	}
	fakeClock(m).Store(1)
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 3}
	res := make([]Result, 1)
	for range 3 { // the guessed key's bucket, empty
		m.Allow(ctx, []Request{{Key: "guessed", Limit: l}}, res)
	}
	for i := range 20 * bound {
		m.Allow(ctx, []Request{{Key: "flood" + strconv.Itoa(i), Limit: l}}, res)
		if got := m.Len(); got > bound {
			t.Fatalf("after %d keys Len = %d, want at most %d", i+1, got, bound)
		}
	}
	if ok, _ := m.Allow(ctx, []Request{{Key: "guessed", Limit: l}}, res); ok {
		t.Errorf("the emptiest bucket was forgotten under a flood of fuller ones")
	}
	if _, err := NewMemoryWith(MemoryOptions{MaxBuckets: -1}); err == nil {
		t.Error("NewMemoryWith(MaxBuckets -1) = nil error, want one")
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 25}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 4 {
				if ok, _ := m.Allow(context.Background(), []Request{{Key: "k", Limit: l}}, make([]Result, 1)); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 25 {
		t.Errorf("admitted %d, want 25", got)
	}
}

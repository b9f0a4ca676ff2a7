package ratelimit

import (
	"context"
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

func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	now := fakeClock(m)
	now.Store(1) // sweeps compare with the last one, at 0
	l := Limit{Rate: 1, Period: time.Second, Burst: 1}
	for _, k := range []string{"a", "b", "c"} {
		m.Allow(context.Background(), []Request{{Key: k, Limit: l}}, make([]Result, 1))
	}
	if got := m.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	now.Store(int64(sweepEvery) + 2) // all full again; time to sweep
	m.Allow(context.Background(), []Request{{Key: "d", Limit: l}}, make([]Result, 1))
	if got := m.Len(); got != 1 {
		t.Errorf("Len after sweep = %d, want 1", got)
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

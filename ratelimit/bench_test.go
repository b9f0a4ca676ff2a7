package ratelimit

import (
	"context"
	"testing"
	"time"
)

// twoRules is a typical request: a per-route and a per-token rule, with
// limits wide enough to admit everything a benchmark sends.
func twoRules() []Request {
	l := Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000_000}
	return []Request{{Key: "route:9f86d081884c7d65", Limit: l}, {Key: "token:2c26b46b68ffc68f", Limit: l}}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory()
	reqs, res := twoRules(), make([]Result, 2)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := m.Allow(context.Background(), reqs, res); !ok {
			b.Fatal("denied")
		}
	}
}

func benchRedis(b *testing.B) *Redis {
	srv := startRedis(b)
	r := newRedis(b, srv, RedisOptions{})
	if err := r.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkRedisAllow is one request at a time: the round trip's latency.
func BenchmarkRedisAllow(b *testing.B) {
	r := benchRedis(b)
	reqs, res := twoRules(), make([]Result, 2)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Allow(context.Background(), reqs, res); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkRedisAllowParallel is many requests at once: throughput.
func BenchmarkRedisAllowParallel(b *testing.B) {
	r := benchRedis(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		reqs, res := twoRules(), make([]Result, 2)
		for pb.Next() {
			if ok, err := r.Allow(context.Background(), reqs, res); !ok || err != nil {
				b.Error(ok, err)
				return
			}
		}
	})
}

// BenchmarkRedisAllowDenied is a flood on an empty bucket, answered by the
// deny cache.
func BenchmarkRedisAllowDenied(b *testing.B) {
	r := benchRedis(b)
	reqs, res := twoRules(), make([]Result, 2)
	reqs[1].Limit = Limit{Rate: 1, Period: time.Hour, Burst: 1}
	r.Allow(context.Background(), reqs, res)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := r.Allow(context.Background(), reqs, res); ok {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkFallbackAllow is BenchmarkRedisAllow through a healthy Fallback.
func BenchmarkFallbackAllow(b *testing.B) {
	f, err := NewFallback(benchRedis(b), NewMemory(), FallbackOptions{})
	if err != nil {
		b.Fatal(err)
	}
	reqs, res := twoRules(), make([]Result, 2)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := f.Allow(context.Background(), reqs, res); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

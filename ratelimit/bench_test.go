package ratelimit

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
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

// BenchmarkRedisAllowParallel32 is 32 callers at once, as a busy replica
// has: besides ns/op it reports the read and write system calls per
// decision, of this process and of redis-server (from /proc/PID/io), and
// how many calls share a round trip.
func BenchmarkRedisAllowParallel32(b *testing.B) {
	for _, tt := range []struct {
		name     string
		inflight int
	}{
		{"unbatched", 1 << 30}, // every call finds a free slot: one round trip each
		{"inflight=1", 1},
		{"inflight=2", 2},
		{"inflight=4", 4},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r := benchRedis(b)
			r.batch.maxInflight = tt.inflight
			benchParallel32(b, r)
		})
	}
}

func benchParallel32(b *testing.B, r *Redis) {
	srvPID := redisPID(b, r)
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := r.Stats()
	selfR, selfW := syscalls(b, "self")
	srvR, srvW := syscalls(b, srvPID)
	selfCPU, srvCPU := cpuTime(b, "self"), cpuTime(b, srvPID)
	netIn := infoStat(b, r, "total_net_input_bytes")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		reqs, res := twoRules(), make([]Result, 2)
		for pb.Next() {
			if ok, err := r.Allow(context.Background(), reqs, res); !ok || err != nil {
				b.Error(ok, err)
				return
			}
		}
	})
	b.StopTimer()
	after := r.Stats()
	selfR2, selfW2 := syscalls(b, "self")
	srvR2, srvW2 := syscalls(b, srvPID)
	n := float64(b.N)
	b.ReportMetric(float64(infoStat(b, r, "total_net_input_bytes")-netIn)/n, "redis-in-B/op")
	b.ReportMetric(float64(cpuTime(b, "self")-selfCPU)/n/1e3, "cpu-µs/op")
	b.ReportMetric(float64(cpuTime(b, srvPID)-srvCPU)/n/1e3, "redis-cpu-µs/op")
	b.ReportMetric(float64(selfR2-selfR+selfW2-selfW)/n, "syscalls/op")
	b.ReportMetric(float64(srvR2-srvR+srvW2-srvW)/n, "redis-syscalls/op")
	if trips := after.RoundTrips - before.RoundTrips; trips > 0 {
		b.ReportMetric(float64(after.Calls-before.Calls)/float64(trips), "calls/trip")
	}
}

// redisPID returns the process id of the redis-server r talks to.
func redisPID(b *testing.B, r *Redis) string {
	info, err := r.client.Info(context.Background(), "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return v
		}
	}
	b.Fatal("INFO server: no process_id")
	return ""
}

// infoStat returns a counter of redis-server's INFO stats.
func infoStat(b *testing.B, r *Redis, name string) uint64 {
	info, err := r.client.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				b.Fatalf("INFO stats: %q: %v", line, err)
			}
			return n
		}
	}
	b.Fatalf("INFO stats: no %s", name)
	return 0
}

// cpuTime returns the user and system CPU time process pid (or "self")
// used so far, in ns, from /proc/PID/stat (in clock ticks, 100 a second).
func cpuTime(b *testing.B, pid string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatalf("CPU time: %v", err)
	}
	_, rest, _ := strings.Cut(string(data), ") ") // the command may hold spaces
	f := strings.Fields(rest)                     // f[0] is field 3, the state
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return (utime + stime) * int64(10*time.Millisecond)
}

// syscalls returns the read and write system calls process pid (or "self")
// made so far, from /proc/PID/io.
func syscalls(b *testing.B, pid string) (r, w uint64) {
	data, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		b.Fatalf("read and write counts: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			r = n
		case "syscw":
			w = n
		}
	}
	return r, w
}

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestRatioOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float64
		want ratioRange
		ok   bool
	}{
		{"one round", []float64{700}, []float64{1000}, ratioRange{0.7, 0.7, 0.7}, true},
		{"two rounds", []float64{700, 800}, []float64{1000, 1000}, ratioRange{0.75, 0.7, 0.8}, true},
		{"rounds paired, median of each", []float64{900, 600, 800}, []float64{1000, 1000, 800}, ratioRange{0.8, 0.6, 1}, true},
		{"a faster", []float64{2000, 3000}, []float64{1000, 1000}, ratioRange{2.5, 2, 3}, true},
		{"extra rounds of one ignored", []float64{500, 500, 9000}, []float64{1000, 1000}, ratioRange{0.5, 0.5, 0.5}, true},
		{"no round", nil, []float64{1000}, ratioRange{}, false},
		{"zero baseline", []float64{1000}, []float64{0}, ratioRange{}, false},
		{"zero target", []float64{0}, []float64{1000}, ratioRange{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ratioOver(tc.a, tc.b)
			if ok != tc.ok || !near(got.Median, tc.want.Median) || !near(got.Min, tc.want.Min) || !near(got.Max, tc.want.Max) {
				t.Errorf("ratioOver(%v, %v) = %+v, %v; want %+v, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1}, 2}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// rounds builds a target measured in rounds of the given throughputs, with
// its CPU time and Redis calls.
func roundsTarget(name string, rps ...float64) *target {
	t := &target{name: name, closed: &sample{statuses: map[int]int64{}}, open: &sample{}}
	for _, r := range rps {
		t.closedRounds = append(t.closedRounds, roundStat{rps: r})
		t.closed.sent += int64(r)
		t.closed.statuses[200] += int64(r)
	}
	return t
}

func withOpenP99(t *target, p99 time.Duration) *target {
	for range 98 {
		t.open.lat = append(t.open.lat, p99/2)
	}
	t.open.lat = append(t.open.lat, p99, p99) // the 99th of 100 and the last
	return t
}

func TestGoals(t *testing.T) {
	fast := func() *target {
		kg := withOpenP99(roundsTarget("keygate", 10000, 12000), 1500*time.Microsecond)
		kg.cpuClosed = 22000 * 35 * time.Microsecond // 35 µs a request
		kg.redis = redisCalls{"evalsha": 22000, "hello": 3, "time": 22000}
		kg.redisCallsKG, kg.roundTripsKG = 22000, 2000 // 11 calls a pipeline
		return kg
	}
	bases := func() map[string]*target {
		return map[string]*target{
			"reverseproxy-pooled": roundsTarget("reverseproxy-pooled", 10000, 10000),
			"caddy":               roundsTarget("caddy", 12000, 10000),
			"nginx":               roundsTarget("nginx", 30000, 30000),
			"direct":              withOpenP99(roundsTarget("direct", 50000, 50000), 800*time.Microsecond),
		}
	}
	mem := &memResult{conns: 1000, rate: 5000, rateRSS: 40 << 10, busyRSS: 70 << 10}
	type want struct {
		measure string // a prefix of the row's measure
		value   string // a prefix of its value
		met     string // met, not met, or – (not measured)
	}
	for _, tc := range []struct {
		name string
		in   goalInputs
		want []want
	}{
		{"every figure", goalInputs{kg: fast(), bases: bases(), mem: mem, rate: 5000}, []want{
			{"throughput ÷ reverseproxy-pooled", "1.10 (1.00–1.20)", "met"},
			{"throughput ÷ caddy", "1.00 (0.83–1.20)", "met"},
			{"throughput ÷ nginx", "0.37 (0.33–0.40)", "not met"},
			{"CPU per proxied request", "35.0 µs", "met"},
			{"p99 added latency at half load (5000 req/s)", "0.70 ms", "met"},
			{"RSS, 1000 keep-alive clients sending 5000", "40.0 MiB", "met"},
			{"RSS, 1000 keep-alive clients each sending", "70.0 MiB", "not met"},
			{"Redis round trips per admitted request", "0.091 (2000 pipelines carrying 22000 script calls, 11.0 each, + 0 other commands, for 22000 admitted; Redis ran 22000 script calls, 3 background", "met"},
		}},
		{"baselines missing say why", goalInputs{kg: fast(), bases: map[string]*target{}, leftOut: map[string]string{"caddy": "could not be built: no network"}}, []want{
			{"throughput ÷ reverseproxy-pooled", "not measured", "–"},
			{"throughput ÷ caddy", "not measured", "–"},
			{"throughput ÷ nginx", "not measured", "–"},
			{"CPU per proxied request", "35.0 µs", "met"},
			{"p99 added latency", "not measured", "–"},
			{"Redis round trips", "0.091", "met"},
		}},
		{"a round trip more than admitted", goalInputs{kg: func() *target {
			kg := fast()
			kg.redis["incr"] = 5
			kg.roundTripsKG = 22000 // no batching
			kg.cpuClosed *= 2
			kg.open.lat[len(kg.open.lat)-2] = 3 * time.Millisecond
			kg.open.lat[len(kg.open.lat)-1] = 3 * time.Millisecond
			return kg
		}(), bases: bases()}, []want{
			{"throughput ÷ reverseproxy-pooled", "1.10", "met"},
			{"throughput ÷ caddy", "1.00", "met"},
			{"throughput ÷ nginx", "0.37", "not met"},
			{"CPU per proxied request", "70.0 µs", "not met"},
			{"p99 added latency", "2.20 ms", "not met"},
			{"Redis round trips", "1.000 (22000 pipelines carrying 22000 script calls, 1.0 each, + 5 other", "not met"},
		}},
		{"keygate's own count of admitted requests", goalInputs{kg: func() *target {
			kg := fast()
			kg.admittedKG = 22032 // wrk stopped counting 32 in flight
			kg.redis["evalsha"] = 22032
			kg.redisCallsKG, kg.roundTripsKG = 22032, 22032
			return kg
		}(), bases: bases()}, []want{
			{"throughput ÷ reverseproxy-pooled", "1.10", "met"},
			{"throughput ÷ caddy", "1.00", "met"},
			{"throughput ÷ nginx", "0.37", "not met"},
			{"CPU per proxied request", "35.0 µs", "met"},
			{"p99 added latency", "0.70 ms", "met"},
			{"Redis round trips", "1.000 (22032 pipelines carrying 22032 script calls, 1.0 each, + 0 other commands, for 22032 admitted", "met"},
		}},
		{"no keygate", goalInputs{bases: bases()}, []want{
			{"throughput ÷ reverseproxy-pooled", "not measured", "–"},
			{"throughput ÷ caddy", "not measured", "–"},
			{"throughput ÷ nginx", "not measured", "–"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := goals(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("goals() = %d rows %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if !strings.HasPrefix(g.Measure, w.measure) || !strings.HasPrefix(g.Value, w.value) || strings.Trim(g.verdict(), "*") != w.met {
					t.Errorf("goals() row %d = %q %q %s, want %q… %q… %s", i, g.Measure, g.Value, g.verdict(), w.measure, w.value, w.met)
				}
				if g.Met == nil && g.Note == "" {
					t.Errorf("goals() row %d (%s) not measured and says not why", i, g.Measure)
				}
			}
		})
	}
}

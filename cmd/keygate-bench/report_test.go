package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestHalfLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []*target
		want    float64
	}{
		{"half keygate's maximum, even when a proxy is slower", []*target{
			roundsTarget("direct", 30000), roundsTarget("reverseproxy-default", 3000), roundsTarget("keygate", 9000, 9150), roundsTarget("nginx", 20000),
		}, 4500},
		{"without keygate, half the slowest proxy's", []*target{
			roundsTarget("direct", 30000), roundsTarget("caddy", 7000), roundsTarget("nginx", 20000),
		}, 3500},
		{"rounded down to 100", []*target{roundsTarget("keygate", 4399)}, 2100},
		{"only the backend", []*target{roundsTarget("direct", 30000)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := halfLoad(tc.targets); got != tc.want {
				t.Errorf("halfLoad() = %v, want %v", got, tc.want)
			}
		})
	}
}

// testReport is a report of a run where Caddy could not be built.
func testReport() *report {
	o, _ := parseFlags(nil, nil)
	kg := withOpenP99(roundsTarget("keygate", 10000, 11000), 2*time.Millisecond)
	kg.keygate = true
	kg.cpuClosed = 21000 * 50 * time.Microsecond
	kg.redis = redisCalls{"evalsha": 21000}
	return &report{
		o: o,
		targets: []*target{
			withOpenP99(roundsTarget("direct", 40000, 40000), time.Millisecond),
			withOpenP99(roundsTarget("reverseproxy-pooled", 10000, 10000), time.Millisecond),
			withOpenP99(roundsTarget("nginx", 20000, 22000), time.Millisecond),
			kg,
		},
		rate:    5000,
		flood:   &floodResult{s: &sample{}, rejected: 1000, admitted: 10, scripts: 10, perRejected: 0.01},
		mem:     &memResult{conns: 1000, rate: 5000, startRSS: 15 << 10, rateRSS: 50 << 10, busyRSS: 60 << 10},
		leftOut: map[string]string{"caddy": "could not be built: no module proxy"},
	}
}

func TestReportMarkdown(t *testing.T) {
	var b bytes.Buffer
	testReport().write(&b)
	out := b.String()
	for _, want := range []string{
		"### Maximum load: wrk, 1 thread, 32 connections, 2 interleaved rounds × 5s per target",
		"| keygate | 10500 | 10000–11000 |",
		"- `caddy`: left out, could not be built: no module proxy",
		"| throughput ÷ reverseproxy-pooled, median (rounds min–max) | 1.05 (1.00–1.10) | ≥ 1.0 | met |",
		"| throughput ÷ caddy, median (rounds min–max) | not measured (could not be built: no module proxy) | ≥ 1.0 | – |",
		"| throughput ÷ nginx, median (rounds min–max) | 0.50 (0.50–0.50) | ≥ 0.5 | met |",
		"| CPU per proxied request, maximum load | 50.0 µs | ≤ 40 µs | **not met** |",
		"| p99 added latency at half load (5000 req/s): p99 keygate − p99 direct | 1.00 ms | ≤ 1.00 ms | met |",
		"| throughput nginx ÷ direct, median (rounds min–max) | 0.53 (0.50–0.55) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report.write() lacks %q; got:\n%s", want, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Loader  string
		Targets []struct {
			Name      string
			RPSMedian float64 `json:"rps_median"`
		}
		LeftOut map[string]string `json:"left_out"`
		Ratios  []struct {
			Of, To string
			Median float64
		}
		Goals []struct {
			Measure string
			Met     *bool
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("writeJSON() = %s: %v", b.Bytes(), err)
	}
	if got.Loader != "wrk" || len(got.Targets) != 4 || got.Targets[3].Name != "keygate" || got.Targets[3].RPSMedian != 10500 {
		t.Errorf("writeJSON() loader %q, targets %+v; want wrk and keygate fourth at 10500", got.Loader, got.Targets)
	}
	if got.LeftOut["caddy"] == "" {
		t.Errorf("writeJSON() left_out = %v, want caddy's reason", got.LeftOut)
	}
	if len(got.Ratios) == 0 || got.Ratios[0].Of != "keygate" || got.Ratios[0].To != "reverseproxy-pooled" || !near(got.Ratios[0].Median, 1.05) {
		t.Errorf("writeJSON() ratios = %+v, want keygate ÷ reverseproxy-pooled = 1.05 first", got.Ratios)
	}
	if len(got.Goals) != 8 || got.Goals[1].Met != nil || got.Goals[0].Met == nil || !*got.Goals[0].Met {
		t.Errorf("writeJSON() goals = %+v, want 8, the first met, the second (caddy) not measured", got.Goals)
	}
}

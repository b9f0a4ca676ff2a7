package main

import (
	"fmt"
	"slices"
	"time"
)

// roundStat is one target's maximum-load figures in one round.
type roundStat struct {
	rps            float64
	p50, p99, p999 time.Duration
}

// roundStat summarizes a sample of the Go closed loop, whose latencies
// collect has sorted.
func (s *sample) roundStat() roundStat {
	return roundStat{rps: s.rps(), p50: percentile(s.lat, 0.5), p99: percentile(s.lat, 0.99), p999: percentile(s.lat, 0.999)}
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratioRange compares a target with a baseline measured in the same
// interleaved rounds: the ratio of their median throughputs, and the
// lowest and highest ratio of one round's throughputs (round i of one
// beside round i of the other, measured a few seconds apart).
type ratioRange struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// ratioOver returns the ratioRange of a over b; ok is false when either has
// no round or a zero throughput in one.
func ratioOver(a, b []float64) (r ratioRange, ok bool) {
	n := min(len(a), len(b))
	if n == 0 {
		return r, false
	}
	for i := range n {
		if b[i] <= 0 || a[i] <= 0 {
			return ratioRange{}, false
		}
		x := a[i] / b[i]
		if i == 0 || x < r.Min {
			r.Min = x
		}
		if i == 0 || x > r.Max {
			r.Max = x
		}
	}
	r.Median = median(a[:n]) / median(b[:n])
	return r, true
}

func (r ratioRange) String() string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", r.Median, r.Min, r.Max)
}

// goalRow is one line of the goals table: a figure of keygate beside the
// goal issue #14 sets for it.
type goalRow struct {
	Measure string  `json:"measure"`
	Value   string  `json:"value"`  // as printed; "not measured" with Note saying why
	Number  float64 `json:"number"` // the figure judged: a ratio, µs, ms, MiB or round trips
	Goal    string  `json:"goal"`
	Met     *bool   `json:"met"` // nil: not measured
	Note    string  `json:"note,omitempty"`
}

func (g goalRow) verdict() string {
	switch {
	case g.Met == nil:
		return "–"
	case *g.Met:
		return "met"
	default:
		return "**not met**"
	}
}

// The goals of issue #14, with every check on (token, validation, two
// Redis limits, access log at info).
const (
	goalVsPooled   = 1.0  // × reverseproxy-pooled throughput
	goalVsCaddy    = 1.0  // × caddy throughput
	goalVsNginx    = 0.5  // × nginx throughput
	goalCPU        = 40.0 // µs of CPU per proxied request, maximum load
	goalAddedP99   = time.Millisecond
	goalRSSMiB     = 64.0 // with 1,000 keep-alive clients
	goalRedisPerOK = 1.0  // round trips per admitted request
)

// goalInputs are the figures the goals judge, gathered from a run.
type goalInputs struct {
	kg      *target            // keygate at LOG_LEVEL=info
	bases   map[string]*target // reverseproxy-pooled, caddy, nginx, direct, when measured
	leftOut map[string]string  // why a baseline is missing
	mem     *memResult
	rate    float64 // the half-load rate of the open loop
}

// goals judges keygate against each goal; a figure that could not be
// measured is a row that says so, never a verdict.
func goals(in goalInputs) []goalRow {
	var rows []goalRow
	add := func(measure, value, goal string, number float64, met bool) {
		rows = append(rows, goalRow{Measure: measure, Value: value, Number: number, Goal: goal, Met: &met})
	}
	missing := func(measure, goal, why string) {
		rows = append(rows, goalRow{Measure: measure, Value: "not measured", Goal: goal, Note: why})
	}
	kg := in.kg
	for _, b := range []struct {
		name string
		goal float64
	}{{"reverseproxy-pooled", goalVsPooled}, {"caddy", goalVsCaddy}, {"nginx", goalVsNginx}} {
		measure := "throughput ÷ " + b.name + ", median (rounds min–max)"
		goal := fmt.Sprintf("≥ %.1f", b.goal)
		base := in.bases[b.name]
		if kg == nil || base == nil {
			why := in.leftOut[b.name]
			if kg == nil {
				why = "keygate not measured"
			} else if why == "" {
				why = b.name + " not among the targets"
			}
			missing(measure, goal, why)
			continue
		}
		r, ok := ratioOver(kg.rounds(), base.rounds())
		if !ok {
			missing(measure, goal, "no throughput measured")
			continue
		}
		add(measure, r.String(), goal, r.Median, r.Median >= b.goal)
	}
	if kg == nil {
		return rows
	}
	if kg.closed != nil && kg.closed.sent > 0 {
		c := perReq(kg.cpuClosed, kg.closed.sent)
		add("CPU per proxied request, maximum load", fmt.Sprintf("%.1f µs", c), fmt.Sprintf("≤ %.0f µs", goalCPU), c, c <= goalCPU)
	} else {
		missing("CPU per proxied request, maximum load", fmt.Sprintf("≤ %.0f µs", goalCPU), "no request measured")
	}
	measure := fmt.Sprintf("p99 added latency at half load (%.0f req/s): p99 keygate − p99 direct", in.rate)
	goal := "≤ " + ms(goalAddedP99) + " ms"
	if d := in.bases["direct"]; d != nil && d.open != nil && kg.open != nil && len(kg.open.lat) > 0 && len(d.open.lat) > 0 {
		added := percentile(kg.open.lat, 0.99) - percentile(d.open.lat, 0.99)
		add(measure, ms(added)+" ms", goal, float64(added)/float64(time.Millisecond), added <= goalAddedP99)
	} else {
		missing(measure, goal, "keygate and direct must both be measured at the fixed rate")
	}
	if m := in.mem; m != nil {
		goal := fmt.Sprintf("< %.0f MiB", goalRSSMiB)
		mib := float64(m.rateRSS) / 1024
		add(fmt.Sprintf("RSS, %d keep-alive clients sending %.0f req/s in all", m.conns, m.rate), fmt.Sprintf("%.1f MiB", mib), goal, mib, mib < goalRSSMiB)
		mib = float64(m.busyRSS) / 1024
		add(fmt.Sprintf("RSS, %d keep-alive clients each sending without pause", m.conns), fmt.Sprintf("%.1f MiB", mib), goal, mib, mib < goalRSSMiB)
	}
	measure, goal = "Redis round trips per admitted request", fmt.Sprintf("≤ %.0f", goalRedisPerOK)
	if n := kg.admitted(); n > 0 {
		// keygate's own count: Redis's INFO commandstats counts commands, and
		// a pipeline carries many script calls in one round trip.
		scripts, others, background, _ := kg.redis.split()
		trips := kg.roundTripsKG + others // commands outside the script are round trips of their own
		v := float64(trips) / float64(n)
		perTrip := 0.0
		if kg.roundTripsKG > 0 {
			perTrip = float64(kg.redisCallsKG) / float64(kg.roundTripsKG)
		}
		add(measure, fmt.Sprintf("%.3f (%d pipelines carrying %d script calls, %.1f each, + %d other commands, for %d admitted; Redis ran %d script calls, %d background: connection setup, readiness probes)",
			v, kg.roundTripsKG, kg.redisCallsKG, perTrip, others, n, scripts, background),
			goal, v, trips <= n)
	} else {
		missing(measure, goal, "no request admitted")
	}
	return rows
}

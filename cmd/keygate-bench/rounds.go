package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// maxRound measures one target at maximum load for one round, with wrk or
// the Go closed loop, and adds the figures to the target's.
func maxRound(ctx context.Context, t *target, round int, o *options, wr *wrkRunner, rdb *redis.Client, ps procs, dir string, logf func(string, ...any)) error {
	var before, after redisCalls
	var kg0, kg1 kgCounts
	var m meter
	var perfStop func()
	var statsErr error
	h := hooks{
		Begin: func() {
			before, statsErr = commandStats(ctx, rdb)
			if t.keygate && statsErr == nil {
				kg0, statsErr = readCounts(t.admin)
			}
			if o.perf != "" && t.name == "keygate" {
				perfStop = startPerf(dir, o.perf, t.procs[0].pid(), round, logf)
			}
			m.begin(t, ps)
		},
		End: func() {
			m.end()
			if perfStop != nil {
				perfStop()
			}
			if t.keygate && statsErr == nil {
				kg1, statsErr = settledCounts(t.admin)
			}
			if statsErr == nil {
				after, statsErr = commandStats(ctx, rdb)
			}
		},
	}
	var s *sample
	var st roundStat
	var err error
	if wr != nil {
		s, st, err = wr.run(ctx, t.addr, h)
	} else {
		s, err = closedLoop(ctx, t.addr, t.reqs, o.conns, o.d, h)
		if err == nil {
			st = s.roundStat()
		}
	}
	if err == nil {
		err = statsErr
	}
	if err != nil {
		return fmt.Errorf("%s, round %d: %w", t.name, round, err)
	}
	t.cpuClosed += m.target
	t.foreignClosed += m.foreign
	t.wallClosed += m.wall
	if t.redis == nil {
		t.redis = redisCalls{}
	}
	for k, v := range after.sub(before) {
		t.redis[k] += v
	}
	t.admittedKG += kg1.admitted - kg0.admitted
	t.redisCallsKG += kg1.calls - kg0.calls
	t.roundTripsKG += kg1.roundTrips - kg0.roundTrips
	t.closedRounds = append(t.closedRounds, st)
	if t.closed == nil {
		t.closed = &sample{}
	}
	t.closed.merge(s)
	logf("max   round %d %-20s %8.0f req/s  p99 %-12v other load %s  %s %s", round, t.name, st.rps, st.p99, foreign(m.foreign, m.wall), s.statusSummary(), after.sub(before).String())
	return nil
}

// halfLoad is the open loop's rate: half keygate's maximum (median of
// rounds), or, without keygate among the targets, half the slowest proxy's;
// rounded down to 100 req/s.
func halfLoad(targets []*target) float64 {
	peak := 0.0
	for _, t := range targets {
		if t.name == "keygate" {
			peak = t.medianRPS()
			break
		}
		if t.name != "direct" && (peak == 0 || t.medianRPS() < peak) {
			peak = t.medianRPS()
		}
	}
	return float64(int(peak/2/100)) * 100
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

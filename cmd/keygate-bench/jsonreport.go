package main

import (
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"time"
)

// jsonReport is the report's JSON form (-json): the figures of the tables,
// in milliseconds, microseconds and MiB as named.
type jsonReport struct {
	Generated string            `json:"generated"`
	Machine   string            `json:"machine"`
	Go        string            `json:"go"`
	Versions  map[string]string `json:"versions"`
	Loader    string            `json:"loader"`
	Conns     int               `json:"conns"`
	Rounds    int               `json:"rounds"`
	Duration  string            `json:"duration"`
	Rate      float64           `json:"rate"`
	Targets   []jsonTarget      `json:"targets"`
	LeftOut   map[string]string `json:"left_out,omitempty"`
	Ratios    []jsonRatio       `json:"ratios"`
	Goals     []goalRow         `json:"goals"`
}

type jsonTarget struct {
	Name           string    `json:"name"`
	RPSMedian      float64   `json:"rps_median"`
	RPSRounds      []float64 `json:"rps_rounds"`
	P50MS          float64   `json:"p50_ms"`
	P99MS          float64   `json:"p99_ms"`
	P999MS         float64   `json:"p999_ms"`
	CPUPerReqUS    float64   `json:"cpu_us_per_req"`
	OtherLoadPct   float64   `json:"other_load_pct"` // CPU of processes outside the benchmark, % of the machine
	FixedOtherPct  float64   `json:"fixed_other_load_pct"`
	NotOK          string    `json:"not_200,omitempty"`
	FixedRPS       float64   `json:"fixed_rps"`
	FixedP50MS     float64   `json:"fixed_p50_ms"`
	FixedP99MS     float64   `json:"fixed_p99_ms"`
	FixedP999MS    float64   `json:"fixed_p999_ms"`
	FixedCPUPerReq float64   `json:"fixed_cpu_us_per_req"`
}

type jsonRatio struct {
	Of string `json:"of"`
	To string `json:"to"`
	ratioRange
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *report) writeJSON(w io.Writer) error {
	o := r.o
	j := jsonReport{
		Generated: r.generated.Format(time.RFC3339), Machine: machine(), Go: runtime.Version(),
		Versions: map[string]string{"redis": r.redisVersion},
		Loader:   o.loader, Conns: o.conns, Rounds: o.rounds, Duration: wrkSeconds(o), Rate: r.rate,
		LeftOut: r.leftOut, Goals: r.goals(),
	}
	for k, v := range map[string]string{"nginx": strings.TrimPrefix(r.nginxVersion, ", "), "caddy": r.caddyVersion, "wrk": r.loaderVersion} {
		if v != "" {
			j.Versions[k] = v
		}
	}
	for _, t := range r.targets {
		j.Targets = append(j.Targets, jsonTarget{
			Name: t.name, RPSMedian: t.medianRPS(), RPSRounds: t.rounds(),
			P50MS:       msf(t.maxP(func(s roundStat) time.Duration { return s.p50 })),
			P99MS:       msf(t.maxP(func(s roundStat) time.Duration { return s.p99 })),
			P999MS:      msf(t.maxP(func(s roundStat) time.Duration { return s.p999 })),
			CPUPerReqUS: perReq(t.cpuClosed, t.closed.sent), NotOK: t.closed.statusSummary(),
			OtherLoadPct: foreignPct(t.foreignClosed, t.wallClosed), FixedOtherPct: foreignPct(t.foreignOpen, t.wallOpen),
			FixedRPS: t.open.rps(), FixedP50MS: msf(percentile(t.open.lat, 0.5)), FixedP99MS: msf(percentile(t.open.lat, 0.99)),
			FixedP999MS: msf(percentile(t.open.lat, 0.999)), FixedCPUPerReq: perReq(t.cpuOpen, t.open.sent),
		})
	}
	if kg := r.target("keygate"); kg != nil {
		for _, base := range []string{"reverseproxy-pooled", "caddy", "nginx"} {
			if b := r.target(base); b != nil {
				if x, ok := ratioOver(kg.rounds(), b.rounds()); ok {
					j.Ratios = append(j.Ratios, jsonRatio{"keygate", base, x})
				}
			}
		}
	}
	for _, x := range r.extraRatios() {
		j.Ratios = append(j.Ratios, jsonRatio{x.of, x.to, x.r})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(j)
}

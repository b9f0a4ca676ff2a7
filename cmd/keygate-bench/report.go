package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// report is everything the harness prints.
type report struct {
	o                  *options
	targets            []*target
	rate               float64
	flood              *floodResult
	mem                *memResult
	logLines, logBytes int64
	leftOut            map[string]string // baselines missing, and why
	redisVersion       string
	nginxVersion       string
	caddyVersion       string
	loaderVersion      string // wrk's, when it is the loader
	generated          time.Time
}

func (r *report) target(name string) *target {
	for _, t := range r.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func perReq(cpu time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu) / float64(time.Microsecond) / float64(n)
}

// output writes the Markdown report to w, and the JSON one where -json says.
func (r *report) output(w io.Writer) error {
	if r.o.jsonOut == "-" {
		return r.writeJSON(w)
	}
	r.write(w)
	if r.o.jsonOut == "" {
		return nil
	}
	f, err := os.Create(r.o.jsonOut)
	if err != nil {
		return err
	}
	if err := r.writeJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// describe says what each target is, for the report's header.
var describe = map[string]string{
	"direct":               "the backend itself, no proxy",
	"reverseproxy-pooled":  "`httputil.ReverseProxy`, `Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}` and nothing else: **the Go baseline**",
	"reverseproxy-default": "`httputil.ReverseProxy` with `http.DefaultTransport` (2 idle connections per host): an extra, nobody runs a busy proxy like that",
	"caddy":                "Caddy `reverse_proxy` (HTTP/1.1, keep-alive pool of 1024, no admin API, no access log), built from its Go module",
	"nginx":                "nginx `proxy_pass`, 1 worker, upstream keep-alive, no access log",
	"keygate":              "`keygate serve`: token, parameter validation, 2 Redis limits, normalization, access log at `info` (a file)",
	"keygate-warn":         "the same with `KEYGATE_LOG_LEVEL=warn` (no access log)",
	"keygate-compare":      "the keygate binary given by `-compare`, at `info`",
}

func (r *report) write(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "## keygate-bench %s\n\n", r.generated.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Machine: %s. %s, redis-server %s%s%s%s.\n\n", machine(), runtime.Version(), r.redisVersion, r.nginxVersion,
		prefixed(", Caddy ", r.caddyVersion), prefixed(", ", r.loaderVersion))
	fmt.Fprintln(w, "Targets, all on loopback in front of one fast backend:")
	fmt.Fprintln(w)
	for _, t := range r.targets {
		fmt.Fprintf(w, "- `%s`: %s\n", t.name, describe[t.name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.leftOut)) {
		fmt.Fprintf(w, "- `%s`: left out, %s\n", name, r.leftOut[name])
	}
	fmt.Fprintf(w, "\nRequest: `POST /activate-key` with a Bearer token and a JSON body of about %d bytes, %d license keys in turn; backend answer: a %d-byte contract success.\n\n",
		len(activationBody(0)), o.keys, len(backendBody))

	loader := fmt.Sprintf("wrk, %d thread", o.threads)
	if o.threads > 1 {
		loader += "s"
	}
	if o.loader == "go" {
		loader = "the harness's Go closed loop"
	}
	fmt.Fprintf(w, "### Maximum load: %s, %d connections, %d interleaved rounds × %s per target\n\n", loader, o.conns, o.rounds, wrkSeconds(o))
	fmt.Fprintln(w, "| target | req/s (median) | rounds min–max | p50 ms | p99 ms | p99.9 ms | CPU µs/req | other load | not 200 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, t := range r.targets {
		lo, hi := minMax(t.rounds())
		fmt.Fprintf(w, "| %s | %.0f | %.0f–%.0f | %s | %s | %s | %.1f | %s | %s |\n", t.name, t.medianRPS(), lo, hi,
			ms(t.maxP(func(s roundStat) time.Duration { return s.p50 })), ms(t.maxP(func(s roundStat) time.Duration { return s.p99 })),
			ms(t.maxP(func(s roundStat) time.Duration { return s.p999 })),
			perReq(t.cpuClosed, t.closed.sent), foreign(t.foreignClosed, t.wallClosed), orNone(t.closed.statusSummary()))
	}
	fmt.Fprintf(w, "\n(Latency percentiles: the median over rounds of each round's, as %s reports them.)\n", map[string]string{"wrk": "wrk", "go": "the Go loader"}[o.loader])
	fmt.Fprintf(w, "\n### Fixed rate: open loop, %.0f req/s (half keygate's maximum), up to %d connections, latency from the intended send time\n\n", r.rate, o.openConn)
	fmt.Fprintln(w, "| target | req/s | p50 ms | p99 ms | p99.9 ms | send lag p99 ms | CPU µs/req | other load | not 200 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, t := range r.targets {
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %.1f | %s | %s |\n", t.name, t.open.rps(),
			ms(percentile(t.open.lat, 0.5)), ms(percentile(t.open.lat, 0.99)), ms(percentile(t.open.lat, 0.999)),
			ms(percentile(t.open.lag, 0.99)), perReq(t.cpuOpen, t.open.sent), foreign(t.foreignOpen, t.wallOpen), orNone(t.open.statusSummary()))
	}
	fmt.Fprintln(w, "\n(CPU µs/req: user+system time of that target's own process(es) from /proc/<pid>/stat, ÷ answers; for `direct` it is the backend's. "+
		"Other load: CPU taken by processes outside this benchmark during the measurements, in % of the machine; above a few % the figures are skewed. "+
		"Send lag: how late the generator sent requests after their intended time; it is part of the latency.)")

	fmt.Fprintf(w, "\n### Other figures\n\n")
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "|---|---:|")
	for _, x := range r.extraRatios() {
		fmt.Fprintf(w, "| throughput %s ÷ %s, median (rounds min–max) | %s |\n", x.of, x.to, x.r)
	}
	for _, t := range r.targets {
		if !t.keygate || t.name == "keygate" {
			continue
		}
		fmt.Fprintf(w, "| %s CPU per request, maximum load | %.1f µs |\n", t.name, perReq(t.cpuClosed, t.closed.sent))
	}
	for _, t := range r.targets {
		if !t.keygate {
			continue
		}
		if n := t.admitted(); n > 0 {
			_, _, _, all := t.redis.split()
			fmt.Fprintf(w, "| %s Redis commands run per admitted request, the script's included | %.2f |\n", t.name, float64(all)/float64(n))
		}
	}
	if kg := r.target("keygate"); kg != nil {
		fmt.Fprintf(w, "| keygate CPU per request at the fixed rate | %.1f µs |\n", perReq(kg.cpuOpen, kg.open.sent))
	}
	f := r.flood
	fmt.Fprintf(w, "| Redis round trips per rejected request, flood of one key (%d × 429, %d × 200 in %s; goal ≤ 0.05) | %.4f (%d) |\n",
		f.rejected, f.admitted, o.floodD, f.perRejected, f.scripts+f.others)
	m := r.mem
	fmt.Fprintf(w, "| keygate RSS at start, before any client | %.1f MiB |\n", float64(m.startRSS)/1024)
	fmt.Fprintf(w, "\nRSS is measured on a keygate process started for it, with every client connected the whole time: at %.0f req/s in all p99 was %s ms; "+
		"with each client sending without pause keygate served %.0f req/s, p99 %s ms%s. ", m.rate, ms(m.rateP99), m.busyRPS, ms(m.busyP99), orEmpty(m.nonOK))
	if r.logLines > 0 {
		fmt.Fprintf(w, "Access log at info: %d lines, %.0f bytes a line.", r.logLines, float64(r.logBytes)/float64(r.logLines))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\n### keygate (`info`) against the goals of issue #14\n\n")
	fmt.Fprintln(w, "| measure | value | goal | |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, g := range r.goals() {
		v := g.Value
		if g.Note != "" {
			v += " (" + g.Note + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Measure, v, g.Goal, g.verdict())
	}
	fmt.Fprintf(w, "\nRatios: keygate's median req/s over the baseline's, both measured in the same %d interleaved rounds; in brackets the lowest and highest ratio of one round's figures. "+
		"Added latency: keygate's p99 minus the backend's own (`direct`) at the same fixed rate, both from the open loop.\n", o.rounds)
	fmt.Fprintf(w, "\nReproduce: `make bench` (or `go run ./cmd/keygate-bench %s`).\n", strings.Join(flagsUsed(o), " "))
}

func (r *report) goals() []goalRow {
	bases := map[string]*target{}
	for _, name := range []string{"reverseproxy-pooled", "caddy", "nginx", "direct"} {
		if t := r.target(name); t != nil {
			bases[name] = t
		}
	}
	leftOut := maps.Clone(r.leftOut)
	if leftOut == nil {
		leftOut = map[string]string{}
	}
	return goals(goalInputs{kg: r.target("keygate"), bases: bases, leftOut: leftOut, mem: r.mem, rate: r.rate})
}

// extraRatio is a throughput ratio outside the goals.
type extraRatio struct {
	of, to string
	r      ratioRange
}

// extraRatios are the ratios of the other keygate targets to the baselines,
// and of the baselines to the backend.
func (r *report) extraRatios() []extraRatio {
	var out []extraRatio
	pair := func(of, to string) {
		a, b := r.target(of), r.target(to)
		if a == nil || b == nil {
			return
		}
		if x, ok := ratioOver(a.rounds(), b.rounds()); ok {
			out = append(out, extraRatio{of, to, x})
		}
	}
	for _, kg := range []string{"keygate-warn", "keygate-compare"} {
		for _, base := range []string{"reverseproxy-pooled", "caddy", "nginx"} {
			pair(kg, base)
		}
	}
	pair("keygate", "reverseproxy-default")
	pair("keygate-compare", "keygate")
	for _, base := range []string{"reverseproxy-pooled", "reverseproxy-default", "caddy", "nginx"} {
		pair(base, "direct")
	}
	return out
}

func wrkSeconds(o *options) string {
	if o.loader == "wrk" {
		return fmt.Sprintf("%ds", max(1, int((o.d+time.Second/2)/time.Second)))
	}
	return o.d.String()
}

func flagsUsed(o *options) []string {
	f := []string{fmt.Sprintf("-d %s", o.d), fmt.Sprintf("-rounds %d", o.rounds), fmt.Sprintf("-c %d", o.conns), "-loader " + o.loader}
	if o.only != defaultTargets {
		f = append(f, "-targets "+o.only)
	}
	return f
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// foreignPct is the CPU time cpu in % of what the machine had in wall.
func foreignPct(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * float64(cpu) / float64(wall) / float64(runtime.NumCPU())
}

func foreign(cpu, wall time.Duration) string {
	if wall <= 0 {
		return "?"
	}
	pct := foreignPct(cpu, wall)
	if pct >= 5 {
		return fmt.Sprintf("**%.0f%%**", pct)
	}
	return fmt.Sprintf("%.0f%%", pct)
}

func minMax(xs []float64) (lo, hi float64) {
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

func orNone(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func orEmpty(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// machine describes the CPU, memory and kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d × %s%s, Linux %s, %s/%s; load generator, backend, Redis and proxies share these CPUs",
		runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.GOOS, runtime.GOARCH)
}

func redisVersion(ctx context.Context, rdb *redis.Client) string {
	s, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

func nginxVersion() string {
	out, err := exec.Command("nginx", "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	return ", " + strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
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
	redisVersion       string
	nginxVersion       string
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

func (r *report) write(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "## keygate-bench %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Machine: %s. %s, redis-server %s%s.\n\n", machine(), runtime.Version(), r.redisVersion, r.nginxVersion)
	fmt.Fprintf(w, "Targets on loopback: `direct` = the backend itself; `bare` = stock `httputil.ReverseProxy` (no BufferPool, default transport) → backend; "+
		"`keygate` = `keygate serve` (token, params, 2 Redis limits, normalization; `KEYGATE_LOG_LEVEL=info`, one access-log line per request to a file) → backend; "+
		"`keygate-warn` = the same with `KEYGATE_LOG_LEVEL=warn`")
	if r.target("nginx") != nil {
		fmt.Fprintf(w, "; `nginx` = `proxy_pass` with upstream keep-alive, no access log")
	}
	fmt.Fprintf(w, ". Request: `POST /activate-key` with a Bearer token and a JSON body of about %d bytes, %d license keys in turn; backend answer: a %d-byte contract success.\n\n",
		len(activationBody(0)), o.keys, len(backendBody))

	fmt.Fprintf(w, "### Maximum load: closed loop, %d connections, %d interleaved rounds × %s per target\n\n", o.conns, o.rounds, o.d)
	fmt.Fprintln(w, "| target | req/s (median) | rounds min–max | p50 ms | p99 ms | p99.9 ms | CPU µs/req | other load | not 200 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, t := range r.targets {
		lo, hi := minMax(t.closedRPS)
		fmt.Fprintf(w, "| %s | %.0f | %.0f–%.0f | %s | %s | %s | %.1f | %s | %s |\n", t.name, t.medianRPS(), lo, hi,
			ms(percentile(t.closed.lat, 0.5)), ms(percentile(t.closed.lat, 0.99)), ms(percentile(t.closed.lat, 0.999)),
			perReq(t.cpuClosed, t.closed.sent), foreign(t.foreignClosed, t.wallClosed), orNone(t.closed.statusSummary()))
	}
	fmt.Fprintf(w, "\n### Fixed rate: open loop, %.0f req/s (half the slowest proxy's maximum), up to %d connections, latency from the intended send time\n\n", r.rate, o.openConn)
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

	direct, bare, ngx := r.target("direct"), r.target("bare"), r.target("nginx")
	var kgs []*target
	for _, t := range []*target{r.target("keygate"), r.target("keygate-warn"), r.target("keygate-compare")} {
		if t != nil {
			kgs = append(kgs, t)
		}
	}
	fmt.Fprintf(w, "\n### Ratios and targets\n\n")
	fmt.Fprintln(w, "| measure | value | target | |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	ratio := func(a, b *target) float64 { return a.medianRPS() / b.medianRPS() }
	row := func(name, value, goal string, ok bool) {
		verdict := "holds"
		if !ok {
			verdict = "**misses**"
		}
		if goal == "" {
			verdict = ""
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, value, goal, verdict)
	}
	for _, kg := range kgs {
		if bare != nil {
			row("throughput "+kg.name+" / bare", fmt.Sprintf("%.2f", ratio(kg, bare)), "≥ 1.0", ratio(kg, bare) >= 1)
		}
		if ngx != nil {
			row("throughput "+kg.name+" / nginx", fmt.Sprintf("%.2f", ratio(kg, ngx)), "≥ 0.5", ratio(kg, ngx) >= 0.5)
		}
	}
	if bare != nil && direct != nil {
		row("throughput bare / direct", fmt.Sprintf("%.2f", ratio(bare, direct)), "", true)
	}
	for _, t := range kgs {
		c := perReq(t.cpuClosed, t.closed.sent)
		row(t.name+" CPU per request, max load", fmt.Sprintf("%.1f µs", c), "≤ 60 µs", c <= 60)
		c = perReq(t.cpuOpen, t.open.sent)
		row(t.name+" CPU per request, fixed rate", fmt.Sprintf("%.1f µs", c), "≤ 60 µs", c <= 60)
	}
	for _, t := range kgs {
		if direct != nil {
			add := percentile(t.open.lat, 0.99) - percentile(direct.open.lat, 0.99)
			row(t.name+" p99 added latency at fixed rate (vs direct)", ms(add)+" ms", "≤ 1 ms", add <= time.Millisecond)
		}
		if bare != nil {
			add := percentile(t.open.lat, 0.99) - percentile(bare.open.lat, 0.99)
			row(t.name+" p99 added latency at fixed rate (vs bare)", ms(add)+" ms", "", true)
		}
	}
	for _, t := range kgs {
		scripts, others, all := t.redis.split()
		n := float64(t.closed.statuses[200])
		row(t.name+" Redis round trips per admitted request", fmt.Sprintf("%.3f (%.3f script + %.3f other)", float64(scripts+others)/n, float64(scripts)/n, float64(others)/n),
			"= 1", scripts+others == int64(n))
		row(t.name+" Redis commands run per admitted request, script's included", fmt.Sprintf("%.2f", float64(all)/n), "", true)
	}
	f := r.flood
	row(fmt.Sprintf("Redis round trips per rejected request, flood of one key (%d × 429, %d × 200 in %s)", f.rejected, f.admitted, o.floodD),
		fmt.Sprintf("%.4f (%d)", f.perRejected, f.scripts+f.others), "≤ 0.05", f.rejected > 0 && f.perRejected <= 0.05)
	row("Redis commands run per rejected request, script's included", fmt.Sprintf("%.4f", f.allPerRj), "", true)
	m := r.mem
	row(fmt.Sprintf("keygate RSS, %d keep-alive clients, %.0f req/s in all", m.conns, m.rate), fmt.Sprintf("%.1f MiB", float64(m.rateRSS)/1024), "< 64 MiB", m.rateRSS < 64*1024)
	row(fmt.Sprintf("keygate RSS, %d keep-alive clients, each sending without pause", m.conns), fmt.Sprintf("%.1f MiB", float64(m.busyRSS)/1024), "< 64 MiB", m.busyRSS < 64*1024)
	row("keygate RSS at start, before any client", fmt.Sprintf("%.1f MiB", float64(m.startRSS)/1024), "", true)
	fmt.Fprintf(w, "\nRSS is measured on a keygate process started for it, with every client connected the whole time: at %.0f req/s in all p99 was %s ms; "+
		"with each client sending without pause keygate served %.0f req/s, p99 %s ms%s. ", m.rate, ms(m.rateP99), m.busyRPS, ms(m.busyP99), orEmpty(m.nonOK))
	if r.logLines > 0 {
		fmt.Fprintf(w, "Access log at info: %d lines, %.0f bytes a line.", r.logLines, float64(r.logBytes)/float64(r.logLines))
	}
	fmt.Fprintf(w, "\n\nReproduce: `make bench` (or `go run ./cmd/keygate-bench %s`).\n", strings.Join(flagsUsed(o), " "))
}

func flagsUsed(o *options) []string {
	return []string{fmt.Sprintf("-d %s", o.d), fmt.Sprintf("-rounds %d", o.rounds), fmt.Sprintf("-c %d", o.conns)}
}

func foreign(cpu, wall time.Duration) string {
	if wall <= 0 {
		return "?"
	}
	pct := 100 * float64(cpu) / float64(wall) / float64(runtime.NumCPU())
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

// Command keygate-bench is keygate's load harness (issue #14). On loopback it
// starts a fast backend and, in front of it, the real keygate binary (built
// from ./cmd/keygate, run as `keygate serve` with a real redis-server it
// starts itself) and the proxies a user could run instead: the Go baseline,
// httputil.ReverseProxy with a pooled transport (reverseproxy-pooled);
// Caddy's reverse_proxy, built from its Go module in the tools module
// cmd/keygate-bench/peers and cached; and nginx proxy_pass with one worker
// when nginx is installed. It drives each target in turn, in interleaved
// rounds (A B C ... A B C ...), at maximum load with wrk (1 thread, 32
// connections, 5 s; or its own Go closed loop with -loader go) and at a
// fixed rate, half keygate's maximum, with its own open-loop generator
// (latency counted from each request's intended send time); it measures
// keygate's CPU per request, Redis commands per admitted and per rejected
// request, and RSS with 1,000 keep-alive clients. It prints a Markdown
// report ending with keygate's ratios to each baseline and its figures
// beside the goals of the issue, and with -json writes them as JSON.
//
// Usage:
//
//	go run ./cmd/keygate-bench [-d 5s] [-rounds 2] [-c 32] [-loader wrk|go] [-targets ...] [-json FILE]
//
// Every loop is bounded by a duration; every address is on 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) > 1 && slices.Contains(roles, os.Args[1]) {
		if err := runRole(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "keygate-bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keygate-bench:", err)
		stop()
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	d, floodD, rssD time.Duration
	rounds          int
	conns, openConn int
	threads         int
	rssConns        int
	rate            float64
	loader          string
	wrk             string
	keygate         string
	caddy           string
	peersCache      string
	nginx           bool
	keep            bool
	keys            int
	only            string
	perf            string
	compare         string
	jsonOut         string
	env             envFlag
}

// envFlag collects VAR=value flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not VAR=value", v)
	}
	*e = append(*e, v)
	return nil
}

// Targets: the default set, and the extras -targets can add.
const (
	defaultTargets = "direct,reverseproxy-pooled,caddy,nginx,keygate,keygate-warn"
	allTargets     = defaultTargets + ",reverseproxy-default,keygate-compare"
)

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("keygate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.d, "d", 5*time.Second, "duration of each measurement (one target, one round, one mode); wrk rounds it to whole seconds")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds of interleaved measurements (A B C ... A B C ...)")
	fs.StringVar(&o.loader, "loader", "wrk", "maximum-load generator: wrk (closed loop in C, needs wrk installed) or go (the harness's own closed loop)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads")
	fs.IntVar(&o.conns, "c", 32, "maximum load: concurrent keep-alive connections")
	fs.IntVar(&o.openConn, "oc", 64, "open loop: connections the fixed-rate generator may use")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second; 0 is half keygate's maximum (median of rounds)")
	fs.DurationVar(&o.floodD, "flood", 3*time.Second, "duration of the over-limit flood")
	fs.IntVar(&o.rssConns, "rss-conns", 1000, "keep-alive clients for the RSS measurement")
	fs.DurationVar(&o.rssD, "rss-d", 3*time.Second, "duration of the RSS measurement")
	fs.StringVar(&o.keygate, "keygate", "", "keygate binary to run; empty builds ./cmd/keygate")
	fs.StringVar(&o.caddy, "caddy", "", "Caddy binary to run; empty builds it from the tools module cmd/keygate-bench/peers (cached), \"off\" leaves Caddy out")
	fs.StringVar(&o.peersCache, "peers-cache", defaultPeersCache(), "directory where built peers (Caddy) are cached, one subdirectory per go.sum")
	fs.BoolVar(&o.nginx, "nginx", true, "add nginx proxy_pass (1 worker, upstream keep-alive) as a target when nginx is installed")
	fs.StringVar(&o.compare, "compare", "", "another keygate binary (say, an older build) to add as target keygate-compare, same settings as keygate")
	fs.Var(&o.env, "env", "`VAR=value` for every keygate process, such as GOGC=50 or GODEBUG=gctrace=1; repeatable")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, configs, wrk scripts) and print its path")
	fs.IntVar(&o.keys, "keys", 1000, "distinct license keys the requests cycle through")
	fs.StringVar(&o.only, "targets", defaultTargets, "comma-separated targets to measure, of "+allTargets+"; \"all\" for every one")
	fs.StringVar(&o.perf, "perf", "", "`perf record` options: profile keygate (info) during each maximum-load round into the work directory (implies -keep); e.g. \"-g\"")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results (targets, ratios, goals) as JSON to this `file`; \"-\" writes JSON to stdout instead of Markdown")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.d <= 0 || o.rounds < 1 || o.conns < 1 || o.threads < 1 || o.openConn < 1 || o.rssConns < 1 || o.keys < 1 || o.floodD <= 0 || o.rssD <= 0 {
		return nil, fmt.Errorf("durations, rounds, threads, connections and keys must be positive")
	}
	if o.loader != "wrk" && o.loader != "go" {
		return nil, fmt.Errorf("-loader %q: want wrk or go", o.loader)
	}
	if o.loader == "wrk" && o.conns < o.threads {
		return nil, fmt.Errorf("-c %d: wrk needs at least one connection per thread (-threads %d)", o.conns, o.threads)
	}
	if o.only == "all" {
		o.only = allTargets
	}
	for _, n := range strings.Split(o.only, ",") {
		if !slices.Contains(strings.Split(allTargets, ","), n) {
			return nil, fmt.Errorf("-targets: unknown target %q (known: %s)", n, allTargets)
		}
	}
	if o.compare != "" && !slices.Contains(strings.Split(o.only, ","), "keygate-compare") {
		o.only += ",keygate-compare"
	}
	return o, nil
}

// wants reports whether target name is to be measured.
func (o *options) wants(name string) bool { return slices.Contains(strings.Split(o.only, ","), name) }

// target is one server under load.
type target struct {
	name    string
	addr    string
	procs   []*proc // whose CPU time is the target's
	reqs    [][]byte
	keygate bool
	admin   string // keygate: its admin address, for /metrics

	closedRounds []roundStat // maximum load, per round
	closed       *sample     // maximum load, every round: counts (and the Go loader's latencies)
	open         *sample
	cpuClosed    time.Duration
	cpuOpen      time.Duration
	// CPU time other processes (not the harness, not the servers it
	// started) took during the measurements, and the measurements' length:
	// another workload on the machine skews every figure.
	foreignClosed, foreignOpen time.Duration
	wallClosed, wallOpen       time.Duration
	redis                      redisCalls // during the closed rounds
	admittedKG                 int64      // keygate: requests it admitted during the closed rounds, by its own count
	redisCallsKG, roundTripsKG int64      // keygate: its rate-limit calls to Redis and the round trips carrying them, by its own count
}

func (t *target) pids() []int {
	var ps []int
	for _, p := range t.procs {
		ps = append(ps, p.pid())
	}
	return ps
}

// rounds are the maximum-load throughputs, one per round.
func (t *target) rounds() []float64 {
	var r []float64
	for _, s := range t.closedRounds {
		r = append(r, s.rps)
	}
	return r
}

func (t *target) medianRPS() float64 { return median(t.rounds()) }

// maxP is the median over rounds of a latency percentile at maximum load.
func (t *target) maxP(pick func(roundStat) time.Duration) time.Duration {
	var ds []time.Duration
	for _, s := range t.closedRounds {
		ds = append(ds, pick(s))
	}
	return median(ds)
}

// admitted is the number of requests the target admitted during the
// closed rounds: for keygate its own count (see readCounts), which
// includes requests still in flight when wrk stopped counting; else the
// 200s the load generator received.
func (t *target) admitted() int64 {
	if t.admittedKG > 0 {
		return t.admittedKG
	}
	if t.closed == nil {
		return 0
	}
	return t.closed.statuses[200]
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "# "+format+"\n", a...) }
	var wr *wrkRunner
	if o.loader == "wrk" {
		bin, err := findWrk(o.wrk)
		if err != nil {
			return err
		}
		wr = &wrkRunner{bin: bin, threads: o.threads, conns: o.conns, d: o.d, timeout: 5 * time.Second, token: benchToken}
		for i := range o.keys {
			wr.bodies = append(wr.bodies, activationBody(i))
		}
	}
	dir, err := os.MkdirTemp("", "keygate-bench-")
	if err != nil {
		return err
	}
	if wr != nil {
		wr.dir = dir
	}
	if o.perf != "" {
		o.keep = true
	}
	if o.keep {
		logf("work directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var ps procs
	defer func() { ps.stopAll() }() // ps as it is at the end, not now

	bin := o.keygate
	if bin == "" {
		logf("building ./cmd/keygate")
		if bin, err = buildKeygate(ctx, dir); err != nil {
			return err
		}
	}
	leftOut := map[string]string{}
	caddyBin := o.caddy
	if !o.wants("caddy") {
		caddyBin = "off"
	} else if caddyBin == "off" {
		leftOut["caddy"] = "left out by -caddy off"
	}
	if caddyBin == "" {
		if caddyBin, err = buildCaddy(ctx, o.peersCache, logf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("caddy left out: %v", err)
			leftOut["caddy"] = "could not be built: " + firstLine(err.Error())
			caddyBin = "off"
		}
	}
	redisProc, redisAddr, err := ps.startRedis(dir)
	if err != nil {
		return err
	}
	_ = redisProc
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 1})
	defer rdb.Close()

	backendProc, backendAddr, err := ps.startRole(dir, "backend")
	if err != nil {
		return err
	}
	targets := []*target{{name: "direct", addr: backendAddr, procs: []*proc{backendProc}}}
	for _, role := range []string{"reverseproxy-pooled", "reverseproxy-default"} {
		if !o.wants(role) {
			continue
		}
		p, addr, err := ps.startRole(dir, role, "-upstream", "http://"+backendAddr)
		if err != nil {
			return err
		}
		targets = append(targets, &target{name: role, addr: addr, procs: []*proc{p}})
	}
	if caddyBin != "off" {
		if p, addr, err := ps.startCaddy(dir, caddyBin, backendAddr); err == nil {
			targets = append(targets, &target{name: "caddy", addr: addr, procs: []*proc{p}})
		} else {
			logf("caddy left out: %v", err)
			leftOut["caddy"] = "did not start: " + firstLine(err.Error())
		}
	}
	if o.nginx && o.wants("nginx") {
		if np, naddr, err := ps.startNginx(dir, backendAddr); err == nil {
			targets = append(targets, &target{name: "nginx", addr: naddr, procs: []*proc{np}})
		} else {
			logf("nginx left out: %v", err)
			leftOut["nginx"] = "not installed or did not start: " + firstLine(err.Error())
		}
	} else if !o.nginx {
		leftOut["nginx"] = "left out by -nginx=false"
	}
	for name, data := range map[string]string{"policy.yaml": benchPolicy, "tokens.yaml": tokensFile()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	kgVars := func(level, prefix string) map[string]string {
		vars := map[string]string{
			"KEYGATE_UPSTREAM_URL": "http://" + backendAddr,
			"KEYGATE_POLICY_FILE":  filepath.Join(dir, "policy.yaml"),
			"KEYGATE_TOKENS_FILE":  filepath.Join(dir, "tokens.yaml"),
			"KEYGATE_REDIS_URL":    "redis://" + redisAddr,
			"KEYGATE_REDIS_PREFIX": prefix,
			"KEYGATE_LOG_LEVEL":    level,
		}
		for _, kv := range o.env {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		return vars
	}
	// keygate (info) always runs: the flood and the checks need it.
	kgProc, kgAddr, kgAdmin, err := ps.startKeygate(dir, "keygate", bin, kgVars("info", "kg-info:"))
	if err != nil {
		return err
	}
	kgTarget := &target{name: "keygate", addr: kgAddr, admin: kgAdmin, procs: []*proc{kgProc}, keygate: true}
	targets = append(targets, kgTarget)
	if o.wants("keygate-warn") {
		p, addr, admin, err := ps.startKeygate(dir, "keygate-warn", bin, kgVars("warn", "kg-warn:"))
		if err != nil {
			return err
		}
		targets = append(targets, &target{name: "keygate-warn", addr: addr, admin: admin, procs: []*proc{p}, keygate: true})
	}
	if o.compare != "" {
		p, addr, admin, err := ps.startKeygate(dir, "keygate-compare", o.compare, kgVars("info", "kg-cmp:"))
		if err != nil {
			return err
		}
		targets = append(targets, &target{name: "keygate-compare", addr: addr, admin: admin, procs: []*proc{p}, keygate: true})
	}
	targets = slices.DeleteFunc(targets, func(t *target) bool { return !o.wants(t.name) })
	if len(targets) == 0 {
		return fmt.Errorf("-targets %q names no target that could run", o.only)
	}
	for _, t := range targets {
		t.reqs = activations(t.addr, o.keys)
		if err := check(t); err != nil {
			return err
		}
	}
	if err := checkKeygate(kgAddr); err != nil {
		return err
	}
	logf("targets: %s", names(targets))

	// Warm up: connections, Redis script cache, the runtimes' heaps.
	for _, t := range targets {
		if _, err := closedLoop(ctx, t.addr, t.reqs, o.conns, min(o.d/2, time.Second), hooks{}); err != nil {
			return fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}

	// Maximum load, interleaved.
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			if err := maxRound(ctx, t, round, o, wr, rdb, ps, dir, logf); err != nil {
				return err
			}
		}
	}
	rate := o.rate
	if rate == 0 {
		rate = halfLoad(targets)
	}
	if rate <= 0 {
		return fmt.Errorf("no throughput measured")
	}

	// Fixed rate, interleaved.
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			var m meter
			s, err := openLoop(ctx, t.addr, t.reqs, o.openConn, rate, o.d, hooks{
				Begin: func() { m.begin(t, ps) },
				End:   m.end,
			})
			if err != nil {
				return err
			}
			t.cpuOpen += m.target
			t.foreignOpen += m.foreign
			t.wallOpen += m.wall
			if t.open == nil {
				t.open = &sample{}
			}
			t.open.merge(s)
			logf("rate  round %d %-20s %8.0f req/s  p99 %-12v other load %s  %s", round, t.name, s.rps(), percentile(s.lat, 0.99), foreign(m.foreign, m.wall), s.statusSummary())
		}
	}
	for _, t := range targets {
		slices.Sort(t.open.lat)
		slices.Sort(t.open.lag)
	}

	kg := &target{name: "keygate", addr: kgAddr, procs: []*proc{kgProc}, reqs: activations(kgAddr, o.keys)}
	fl, err := flood(ctx, rdb, kg, o)
	if err != nil {
		return err
	}
	logf("flood: %d answers, %s", fl.s.sent, fl.s.statusSummary())
	rssProc, rssAddr, _, err := ps.startKeygate(dir, "keygate-rss", bin, kgVars("info", "kg-rss:"))
	if err != nil {
		return err
	}
	mem, err := measureRSS(ctx, rssProc, rssAddr, activations(rssAddr, o.keys), rate, o)
	if err != nil {
		return err
	}
	rssProc.stop()
	logLines, logBytes := countLog(kgProc.log)
	r := &report{o: o, targets: targets, rate: rate, flood: fl, mem: mem, logLines: logLines, logBytes: logBytes, leftOut: leftOut,
		redisVersion: redisVersion(ctx, rdb), nginxVersion: nginxVersion(), generated: time.Now().UTC()}
	if wr != nil {
		r.loaderVersion = wrkVersion(wr.bin)
	}
	if slices.ContainsFunc(targets, func(t *target) bool { return t.name == "caddy" }) {
		r.caddyVersion = caddyVersion(caddyBin)
	}
	return r.output(stdout)
}

func names(ts []*target) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.name+"="+t.addr)
	}
	return strings.Join(n, " ")
}

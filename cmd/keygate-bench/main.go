// Command keygate-bench is keygate's load harness. On loopback it starts a
// fast backend, a stock httputil.ReverseProxy in front of it (and one with a
// pooled transport and copy buffers, to show what net/http itself costs), the real
// keygate binary (built from ./cmd/keygate, run as `keygate serve` with a
// real redis-server it starts itself) in front of it too, and nginx when it
// is installed; then it drives each target in turn, interleaved, at maximum
// load (closed loop) and at a fixed rate (open loop, latency counted from
// each request's intended send time), and measures keygate's CPU per
// request, Redis commands per admitted and per rejected request, and RSS
// with 1,000 keep-alive clients. It prints a Markdown report.
//
// Usage:
//
//	go run ./cmd/keygate-bench [-d 2s] [-rounds 4] [-c 64] ...
//
// Every loop is bounded by a duration; every address is on 127.0.0.1.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	if len(os.Args) > 1 && (os.Args[1] == "backend" || os.Args[1] == "bare" || os.Args[1] == "bare-tuned") {
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
	rssConns        int
	rate            float64
	keygate         string
	nginx           bool
	keep            bool
	keys            int
	only            string
	perf            string
	compare         string
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

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("keygate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.d, "d", 2*time.Second, "duration of each measurement (one target, one round, one mode)")
	fs.IntVar(&o.rounds, "rounds", 4, "rounds of interleaved measurements (A B A B ...)")
	fs.IntVar(&o.conns, "c", 64, "closed loop: concurrent connections")
	fs.IntVar(&o.openConn, "oc", 64, "open loop: connections the fixed-rate generator may use")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: requests per second; 0 is half the slowest proxy's maximum")
	fs.DurationVar(&o.floodD, "flood", 3*time.Second, "duration of the over-limit flood")
	fs.IntVar(&o.rssConns, "rss-conns", 1000, "keep-alive clients for the RSS measurement")
	fs.DurationVar(&o.rssD, "rss-d", 3*time.Second, "duration of the RSS measurement")
	fs.StringVar(&o.keygate, "keygate", "", "keygate binary to run; empty builds ./cmd/keygate")
	fs.BoolVar(&o.nginx, "nginx", true, "add nginx proxy_pass as a target when nginx is installed")
	fs.StringVar(&o.compare, "compare", "", "another keygate binary (say, an older build) to add as target keygate-compare, same settings as keygate")
	fs.Var(&o.env, "env", "`VAR=value` for every keygate process, such as GOGC=50 or GODEBUG=gctrace=1; repeatable")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, configs) and print its path")
	fs.IntVar(&o.keys, "keys", 1000, "distinct license keys the requests cycle through")
	fs.StringVar(&o.only, "targets", "", "comma-separated targets to measure (direct, bare, keygate, keygate-warn, nginx); empty: all")
	fs.StringVar(&o.perf, "perf", "", "`perf record` options: profile keygate (info) during each maximum-load round into the work directory (implies -keep); e.g. \"-g\"")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.d <= 0 || o.rounds < 1 || o.conns < 1 || o.openConn < 1 || o.rssConns < 1 || o.keys < 1 || o.floodD <= 0 || o.rssD <= 0 {
		return nil, fmt.Errorf("durations, rounds, connections and keys must be positive")
	}
	return o, nil
}

// target is one server under load.
type target struct {
	name    string
	addr    string
	procs   []*proc // whose CPU time is the target's
	reqs    [][]byte
	keygate bool

	closedRPS []float64 // per round
	closed    *sample
	open      *sample
	cpuClosed time.Duration
	cpuOpen   time.Duration
	// CPU time other processes (not the harness, not the servers it
	// started) took during the measurements, and the measurements' length:
	// another workload on the machine skews every figure.
	foreignClosed, foreignOpen time.Duration
	wallClosed, wallOpen       time.Duration
	redis                      redisCalls // during the closed rounds
}

func (t *target) pids() []int {
	var ps []int
	for _, p := range t.procs {
		ps = append(ps, p.pid())
	}
	return ps
}

func (t *target) medianRPS() float64 {
	s := slices.Clone(t.closedRPS)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Fixture: one global token, a product and license keys that pass the
// policy's rules.
const (
	benchToken   = "kg-bench-token-0123456789abcdef"
	benchProduct = "prod_bench_000000000000001"
)

// benchPolicy has the two limits of the issue on activate, high enough never
// to trip, and a get route whose per-license limit a flood runs into.
const benchPolicy = `routes:
  - name: activate
    method: POST
    path: /activate-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
      hostId: {required: true, min: 1, max: 64}
      deviceTag: {min: 1, max: 64}
    limits:
      - name: bench-per-license
        key: [product, licenseKey]
        rate: 100000
        per: 1s
        burst: 1000000
      - name: bench-per-token
        key: [token]
        rate: 100000
        per: 1s
        burst: 1000000
  - name: get
    method: POST
    path: /get-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
    limits:
      - name: flood-per-license
        key: [licenseKey]
        rate: 10
        per: 1s
        burst: 10
      - name: bench-per-token
        key: [token]
        rate: 100000
        per: 1s
        burst: 1000000
`

func tokensFile() string {
	sum := sha256.Sum256([]byte(benchToken))
	return fmt.Sprintf("tokens:\n  - name: bench\n    sha256: %q\n    products: [\"*\"]\n", hex.EncodeToString(sum[:]))
}

func licenseKey(i int) string { return fmt.Sprintf("KEY-BENCH-%04d-0000-0000-0001", i%10000) }

func request(host, path, token, body string) []byte {
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keygate-bench\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, host, auth, len(body), body)
}

// activations are n activation requests for distinct license keys.
func activations(host string, n int) [][]byte {
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = request(host, "/activate-key", benchToken, activationBody(i))
	}
	return reqs
}

func activationBody(i int) string {
	return fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"host-%d"}`, benchProduct, licenseKey(i), i%97)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "# "+format+"\n", a...) }
	dir, err := os.MkdirTemp("", "keygate-bench-")
	if err != nil {
		return err
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
	bareProc, bareAddr, err := ps.startRole(dir, "bare", "-upstream", "http://"+backendAddr)
	if err != nil {
		return err
	}
	tunedProc, tunedAddr, err := ps.startRole(dir, "bare-tuned", "-upstream", "http://"+backendAddr)
	if err != nil {
		return err
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
	kgProc, kgAddr, err := ps.startKeygate(dir, "keygate", bin, kgVars("info", "kg-info:"))
	if err != nil {
		return err
	}
	kgWarnProc, kgWarnAddr, err := ps.startKeygate(dir, "keygate-warn", bin, kgVars("warn", "kg-warn:"))
	if err != nil {
		return err
	}
	var cmpTarget *target
	if o.compare != "" {
		p, addr, err := ps.startKeygate(dir, "keygate-compare", o.compare, kgVars("info", "kg-cmp:"))
		if err != nil {
			return err
		}
		cmpTarget = &target{name: "keygate-compare", addr: addr, procs: []*proc{p}, keygate: true}
	}
	targets := []*target{
		{name: "direct", addr: backendAddr, procs: []*proc{backendProc}},
		{name: "bare", addr: bareAddr, procs: []*proc{bareProc}},
		{name: "bare-tuned", addr: tunedAddr, procs: []*proc{tunedProc}},
		{name: "keygate", addr: kgAddr, procs: []*proc{kgProc}, keygate: true},
		{name: "keygate-warn", addr: kgWarnAddr, procs: []*proc{kgWarnProc}, keygate: true},
	}
	if cmpTarget != nil {
		targets = append(targets, cmpTarget)
	}
	if o.nginx {
		if np, naddr, err := ps.startNginx(dir, backendAddr); err == nil {
			targets = append(targets, &target{name: "nginx", addr: naddr, procs: []*proc{np}})
		} else {
			logf("nginx left out: %v", err)
		}
	}
	if o.only != "" {
		want := strings.Split(o.only, ",")
		targets = slices.DeleteFunc(targets, func(t *target) bool { return !slices.Contains(want, t.name) })
		if len(targets) == 0 {
			return fmt.Errorf("-targets %q names no target", o.only)
		}
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
			var before, after redisCalls
			var m meter
			var perfStop func()
			var statsErr error
			s, err := closedLoop(ctx, t.addr, t.reqs, o.conns, o.d, hooks{
				Begin: func() {
					before, statsErr = commandStats(ctx, rdb)
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
					if statsErr == nil {
						after, statsErr = commandStats(ctx, rdb)
					}
				},
			})
			if err == nil {
				err = statsErr
			}
			if err != nil {
				return err
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
			t.closedRPS = append(t.closedRPS, s.rps())
			if t.closed == nil {
				t.closed = &sample{}
			}
			t.closed.merge(s)
			logf("max   round %d %-15s %8.0f req/s  p99 %-12v other load %s  %s", round, t.name, s.rps(), percentile(s.lat, 0.99), foreign(m.foreign, m.wall), s.statusSummary())
		}
	}
	rate := o.rate
	if rate == 0 {
		slowest := 0.0
		for _, t := range targets {
			if t.name != "direct" && (slowest == 0 || t.medianRPS() < slowest) {
				slowest = t.medianRPS()
			}
		}
		rate = float64(int(slowest/2/100)) * 100
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
			logf("rate  round %d %-15s %8.0f req/s  p99 %-12v other load %s  %s", round, t.name, s.rps(), percentile(s.lat, 0.99), foreign(m.foreign, m.wall), s.statusSummary())
		}
	}
	for _, t := range targets {
		slices.Sort(t.closed.lat)
		slices.Sort(t.open.lat)
		slices.Sort(t.open.lag)
	}

	kg := &target{name: "keygate", addr: kgAddr, procs: []*proc{kgProc}, reqs: activations(kgAddr, o.keys)}
	fl, err := flood(ctx, rdb, kg, o)
	if err != nil {
		return err
	}
	logf("flood: %d answers, %s", fl.s.sent, fl.s.statusSummary())
	rssProc, rssAddr, err := ps.startKeygate(dir, "keygate-rss", bin, kgVars("info", "kg-rss:"))
	if err != nil {
		return err
	}
	mem, err := measureRSS(ctx, rssProc, rssAddr, activations(rssAddr, o.keys), rate, o)
	if err != nil {
		return err
	}
	rssProc.stop()
	logLines, logBytes := countLog(kgProc.log)
	r := &report{o: o, targets: targets, rate: rate, flood: fl, mem: mem, logLines: logLines, logBytes: logBytes,
		redisVersion: redisVersion(ctx, rdb), nginxVersion: nginxVersion()}
	r.write(stdout)
	return nil
}

func names(ts []*target) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.name+"="+t.addr)
	}
	return strings.Join(n, " ")
}

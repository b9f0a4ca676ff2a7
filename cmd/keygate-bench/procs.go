package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process the harness started. Every one is stopped, by its
// own pid, when the harness ends; the kernel kills it too if the harness
// dies first (Pdeathsig).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string // file holding its stderr
}

// procs are the processes started so far, stopped in reverse order.
type procs []*proc

func (ps *procs) start(name, logFile string, cmd *exec.Cmd) (*proc, error) {
	if cmd.Stderr == nil {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stderr = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() { _ = cmd.Wait(); close(p.done) }()
	*ps = append(*ps, p)
	return p, nil
}

func (ps procs) stopAll() {
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// stop asks the process to end (SIGTERM), then kills it after 3s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports an early exit with the end of its log.
func (p *proc) exited() error {
	select {
	case <-p.done:
		out, _ := os.ReadFile(p.log)
		return fmt.Errorf("%s exited: %s", p.name, lastLines(string(out), 5))
	default:
		return nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startRole starts a copy of the harness in a role (see runRole) and reads
// the address it listens on.
func (ps *procs) startRole(dir, role string, args ...string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, append([]string{role}, args...)...)
	cmd.Env = baseEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	p, err := ps.start(role, filepath.Join(dir, role+".log"), cmd)
	if err != nil {
		return nil, "", err
	}
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addrc <- strings.TrimSpace(line)
	}()
	select {
	case addr := <-addrc:
		if addr == "" {
			return nil, "", fmt.Errorf("%s: %w", role, p.waitExit())
		}
		return p, addr, nil
	case <-time.After(10 * time.Second):
		return nil, "", fmt.Errorf("%s: no address after 10s", role)
	}
}

func (p *proc) waitExit() error {
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	if err := p.exited(); err != nil {
		return err
	}
	return errors.New("no address")
}

// baseEnv is what the servers get of the harness's environment: no
// KEYGATE_* variable of the caller's leaks in.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "TMPDIR" || k == "GOMAXPROCS" || k == "GOGC" {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address nothing listens on, as far as one can
// tell without holding it.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, p exits or 15s pass.
func waitHTTP(p *proc, url string) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not ready after 15s", p.name, url)
}

// waitTCP waits until addr accepts connections.
func waitTCP(p *proc, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s does not accept connections after 15s", p.name, addr)
}

// startRedis starts a redis-server on a free loopback port, without
// persistence.
func (ps *procs) startRedis(dir string) (*proc, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server is not installed (apt-get install -y redis-server): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", rdir, "--logfile", "")
	log := filepath.Join(dir, "redis.log")
	f, err := os.Create(log)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	p, err := ps.start("redis-server", log, cmd)
	if err != nil {
		return nil, "", err
	}
	return p, addr, waitTCP(p, addr)
}

// nginxConf proxies every request to the backend over keep-alive
// connections, without an access log: nginx at its most favourable, with
// the one worker issue #14 measured (one core of the two the benchmark
// shares).
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server %[2]s;
    keepalive 128;
  }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`

// startNginx starts nginx as a fourth target when it is installed.
func (ps *procs) startNginx(dir, backend string) (*proc, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			return nil, "", err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return nil, "", err
	}
	conf := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, ndir, backend, addr), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "-p", ndir, "-c", conf, "-e", filepath.Join(ndir, "nginx-error.log"))
	p, err := ps.start("nginx", filepath.Join(dir, "nginx.log"), cmd)
	if err != nil {
		return nil, "", err
	}
	return p, addr, waitTCP(p, addr)
}

// startKeygate runs the real keygate binary: `keygate serve` configured by
// KEYGATE_* variables, its log (stderr) in a file. It returns the API and
// the admin address.
func (ps *procs) startKeygate(dir, name, bin string, vars map[string]string) (p *proc, api, admin string, err error) {
	if api, err = freeAddr(); err != nil {
		return nil, "", "", err
	}
	if admin, err = freeAddr(); err != nil {
		return nil, "", "", err
	}
	env := baseEnv()
	vars["KEYGATE_LISTEN_ADDR"], vars["KEYGATE_ADMIN_ADDR"] = api, admin
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	if p, err = ps.start(name, filepath.Join(dir, name+".log"), cmd); err != nil {
		return nil, "", "", err
	}
	return p, api, admin, waitHTTP(p, "http://"+admin+"/readyz")
}

// buildKeygate builds ./cmd/keygate of this module into dir.
func buildKeygate(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "keygate")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/keygate/keygate/cmd/keygate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/keygate: %w\n%s", err, b)
	}
	return out, nil
}

// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ).
const clockTick = 10 * time.Millisecond

// cpuTime returns the user and system CPU time of pids and their children
// (nginx's workers), from /proc/<pid>/stat.
func cpuTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range withChildren(pids) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// fields after "(comm)": state is field 3, utime 14, stime 15
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * clockTick
}

// withChildren adds the direct children of pids.
func withChildren(pids []int) []int {
	all := append([]int(nil), pids...)
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				all = append(all, c)
			}
		}
	}
	return all
}

// memKB reads a field such as VmRSS or VmHWM of /proc/<pid>/status, in KiB.
func memKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// startPerf runs `perf record` on pid with the options given, into the work
// directory; the function it returns stops it.
func startPerf(dir, opts string, pid, round int, logf func(string, ...any)) func() {
	out := filepath.Join(dir, fmt.Sprintf("perf-keygate-%d.data", round))
	args := append([]string{"record", "-q", "-o", out, "-p", strconv.Itoa(pid)}, strings.Fields(opts)...)
	cmd := exec.Command("perf", args...)
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return func() {}
	}
	time.Sleep(100 * time.Millisecond) // let it attach
	logf("perf recording into %s", out)
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
}

// meter measures one run: the target's CPU time, and the CPU time of
// processes that are neither the harness nor one it started.
type meter struct {
	t                     *target
	ps                    procs
	t0                    time.Time
	cpu0, busy0, ours0    time.Duration
	target, foreign, wall time.Duration
}

func (m *meter) begin(t *target, ps procs) {
	m.t, m.ps = t, ps
	m.cpu0, m.busy0, m.ours0 = cpuTime(t.pids()), systemBusy(), m.ours()
	m.t0 = time.Now()
}

func (m *meter) end() {
	m.wall = time.Since(m.t0)
	m.target = cpuTime(m.t.pids()) - m.cpu0
	m.foreign = max(0, systemBusy()-m.busy0-(m.ours()-m.ours0))
}

// ours is the CPU time of the harness, the servers it started, and the
// children it ran and waited for (wrk), which the kernel adds to the
// harness's cutime and cstime.
func (m *meter) ours() time.Duration { return cpuTime(m.ourPids()) + reapedCPU() }

// reapedCPU is the CPU time of the harness's children it has waited for,
// from /proc/self/stat.
func reapedCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * clockTick
}

func (m *meter) ourPids() []int {
	pids := []int{os.Getpid()}
	for _, p := range m.ps {
		pids = append(pids, p.pid())
	}
	return pids
}

// systemBusy returns the CPU time all CPUs spent on anything but idling,
// from /proc/stat.
func systemBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		// user, nice, system and steal: not idle or iowait; not irq and
		// softirq either, where the kernel accounts much of the loopback
		// traffic of the processes measured; not guest (counted in user)
		if i == 0 || i == 1 || i == 2 || i == 7 {
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The maximum-load measurement of issue #14 is wrk's: 1 thread, 32
// connections, 5 s. wrk is a closed loop in C, lighter than the Go one on a
// machine the generator shares with the servers it measures, and the figures
// of the issue were taken with it, so the ratios are comparable.

// wrkMarker starts the line of JSON the script's done() writes.
const wrkMarker = "keygate-bench-wrk "

// wrkScript is the Lua script wrk runs: every request is built once, in
// init, from the same bytes the Go loader sends (method, path, Host,
// User-Agent, Bearer token, Content-Type, body), and request() returns them
// in turn, so the generator spends its CPU on sending rather than on string
// building; done() writes wrk's summary as one line of JSON.
func wrkScript(host, token string, bodies []string) string {
	var b strings.Builder
	b.WriteString("-- written by keygate-bench for one run of wrk\nlocal bodies = {\n")
	for _, body := range bodies {
		fmt.Fprintf(&b, "  %s,\n", luaString(body))
	}
	fmt.Fprintf(&b, `}
local host, auth = %s, %s
local reqs, n = {}, 0

function init(args)
  for i, body in ipairs(bodies) do
    reqs[i] = wrk.format("POST", "/activate-key", {
      ["Host"] = host,
      ["User-Agent"] = "keygate-bench",
      ["Authorization"] = auth,
      ["Content-Type"] = "application/json",
    }, body)
  end
end

function request()
  n = n %% #reqs + 1
  return reqs[n]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(%s,
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`, luaString(host), luaString("Bearer "+token), luaString(wrkMarker+`{"requests":%.0f,"duration_us":%.0f,"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f,"p50_us":%.0f,"p99_us":%.0f,"p999_us":%.0f,"max_us":%.0f}`+"\n"))
	return b.String()
}

// luaString quotes s as a Lua string literal: printable ASCII as it is,
// anything else as a decimal escape, which every Lua reads the same way.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// wrkResult is the summary the script's done() writes.
type wrkResult struct {
	Requests      int64   `json:"requests"`
	DurationUS    float64 `json:"duration_us"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	StatusErrors  int64   `json:"status_errors"` // answers with a status above 399
	Timeouts      int64   `json:"timeouts"`
	P50US         float64 `json:"p50_us"`
	P99US         float64 `json:"p99_us"`
	P999US        float64 `json:"p999_us"`
	MaxUS         float64 `json:"max_us"`
}

// parseWrk finds the script's summary in wrk's output (wrk prints its own
// report first) and checks it describes a run that happened.
func parseWrk(out []byte) (*wrkResult, error) {
	var line []byte
	for _, l := range bytes.Split(out, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(l), []byte(wrkMarker)); ok {
			line = rest // the last one counts
		}
	}
	if line == nil {
		return nil, fmt.Errorf("wrk printed no %q line: %s", strings.TrimSpace(wrkMarker), lastLines(string(out), 5))
	}
	var r wrkResult
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("wrk summary %q: %w", line, err)
	}
	switch {
	case r.DurationUS <= 0:
		return nil, fmt.Errorf("wrk summary %q: no duration", line)
	case r.Requests <= 0:
		return nil, fmt.Errorf("wrk summary %q: no answer in %s", line, us(r.DurationUS))
	case r.Requests < r.StatusErrors || r.Requests < 0 || r.StatusErrors < 0 || r.ConnectErrors < 0 ||
		r.ReadErrors < 0 || r.WriteErrors < 0 || r.Timeouts < 0:
		return nil, fmt.Errorf("wrk summary %q: inconsistent counts", line)
	}
	return &r, nil
}

func us(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

// sample turns wrk's summary into the harness's: every answer is counted
// as sent; wrk does not tell statuses apart beyond "above 399", which are
// kept as status 0 (shown as such) so that the rest count as 200.
func (r *wrkResult) sample() (*sample, roundStat) {
	s := &sample{
		sent:     r.Requests,
		ok:       r.Requests - r.StatusErrors,
		statuses: map[int]int64{200: r.Requests - r.StatusErrors},
		errors:   r.ConnectErrors + r.ReadErrors + r.WriteErrors + r.Timeouts,
		elapsed:  us(r.DurationUS),
	}
	if r.StatusErrors > 0 {
		s.statuses[statusWrkError] = r.StatusErrors
	}
	if s.errors > 0 {
		s.firstErr = fmt.Sprintf("wrk: %d connect, %d read, %d write, %d timeouts", r.ConnectErrors, r.ReadErrors, r.WriteErrors, r.Timeouts)
	}
	return s, roundStat{rps: s.rps(), p50: us(r.P50US), p99: us(r.P99US), p999: us(r.P999US)}
}

// statusWrkError stands for the answers wrk counts as errors: status 400
// and above, whichever.
const statusWrkError = 0

// wrkRunner runs wrk against one target with a script written for it.
type wrkRunner struct {
	bin            string
	threads, conns int
	d              time.Duration
	dir            string
	scripts        map[string]string // target address → script file
	token          string
	bodies         []string
	timeout        time.Duration
	extra          []string // more wrk arguments, for tests
}

func (w *wrkRunner) script(addr string) (string, error) {
	if p, ok := w.scripts[addr]; ok {
		return p, nil
	}
	p := filepath.Join(w.dir, "wrk-"+strings.NewReplacer(":", "-", ".", "-").Replace(addr)+".lua")
	if err := os.WriteFile(p, []byte(wrkScript(addr, w.token, w.bodies)), 0o644); err != nil {
		return "", err
	}
	if w.scripts == nil {
		w.scripts = map[string]string{}
	}
	w.scripts[addr] = p
	return p, nil
}

// run drives addr for w.d; h.Begin runs just before wrk starts and h.End
// right after it exits, so what they measure covers its whole run (its
// connection setup included, a few dozen handshakes).
func (w *wrkRunner) run(ctx context.Context, addr string, h hooks) (*sample, roundStat, error) {
	script, err := w.script(addr)
	if err != nil {
		return nil, roundStat{}, err
	}
	secs := max(1, int((w.d+time.Second/2)/time.Second)) // wrk counts whole seconds
	args := []string{"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-d", strconv.Itoa(secs) + "s",
		"--timeout", strconv.Itoa(max(1, int(w.timeout/time.Second))) + "s", "-s", script}
	args = append(args, w.extra...)
	args = append(args, "http://"+addr+"/activate-key")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	h.begin()
	err = cmd.Run()
	h.end()
	if err != nil {
		return nil, roundStat{}, fmt.Errorf("%s %s: %w: %s", w.bin, strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	r, err := parseWrk(out.Bytes())
	if err != nil {
		return nil, roundStat{}, err
	}
	s, st := r.sample()
	return s, st, nil
}

// findWrk returns the wrk binary: the one named, or wrk on PATH.
func findWrk(name string) (string, error) {
	if name == "" {
		name = "wrk"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", errors.New("wrk is not installed (apt-get install -y wrk), or run with -loader go")
	}
	return p, nil
}

// wrkVersion is the first line wrk -v prints, such as "wrk 4.1.0 [epoll]".
func wrkVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput() // wrk -v exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	if len(f) >= 2 {
		return f[0] + " " + strings.TrimPrefix(f[1], "debian/")
	}
	return "wrk"
}

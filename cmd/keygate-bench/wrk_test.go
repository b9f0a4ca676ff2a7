package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wrkOutput is what wrk prints before the script's summary.
const wrkOutput = `Running 5s test @ http://127.0.0.1:40000/activate-key
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  412.00us   9.80ms   81.00%
    Req/Sec    21.10k     1.20k   23.00k    70.00%
  105000 requests in 5.00s, 27.10MB read
Requests/sec:  20999.80
Transfer/sec:      5.42MB
`

func TestParseWrk(t *testing.T) {
	good := `keygate-bench-wrk {"requests":105000,"duration_us":5000012,"connect_errors":0,"read_errors":1,"write_errors":0,"status_errors":7,"timeouts":2,"p50_us":1400,"p99_us":3100,"p999_us":5200,"max_us":9800}`
	for _, tc := range []struct {
		name    string
		out     string
		want    *wrkResult
		wantErr string
	}{
		{"summary after wrk's report", wrkOutput + good + "\n",
			&wrkResult{Requests: 105000, DurationUS: 5000012, ReadErrors: 1, StatusErrors: 7, Timeouts: 2, P50US: 1400, P99US: 3100, P999US: 5200, MaxUS: 9800}, ""},
		{"last summary counts", strings.Replace(good, "105000", "1", 1) + "\n" + good, &wrkResult{Requests: 105000, DurationUS: 5000012, ReadErrors: 1, StatusErrors: 7, Timeouts: 2, P50US: 1400, P99US: 3100, P999US: 5200, MaxUS: 9800}, ""},
		{"indented, CRLF", "  " + good + "\r\n", &wrkResult{Requests: 105000, DurationUS: 5000012, ReadErrors: 1, StatusErrors: 7, Timeouts: 2, P50US: 1400, P99US: 3100, P999US: 5200, MaxUS: 9800}, ""},
		{"no summary", wrkOutput, nil, "printed no"},
		{"script error", "PANIC: unprotected error in call to Lua API (script.lua:3: bad argument)\n", nil, "printed no"},
		{"empty", "", nil, "printed no"},
		{"truncated JSON", `keygate-bench-wrk {"requests":10`, nil, "unexpected EOF"},
		{"unknown field", `keygate-bench-wrk {"requests":10,"duration_us":1,"rps":3}`, nil, "unknown field"},
		{"no answer", `keygate-bench-wrk {"requests":0,"duration_us":5000000}`, nil, "no answer"},
		{"no duration", `keygate-bench-wrk {"requests":10,"duration_us":0}`, nil, "no duration"},
		{"more errors than answers", `keygate-bench-wrk {"requests":10,"duration_us":5,"status_errors":11}`, nil, "inconsistent"},
		{"negative count", `keygate-bench-wrk {"requests":10,"duration_us":5,"read_errors":-1}`, nil, "inconsistent"},
		{"float count", `keygate-bench-wrk {"requests":10.5,"duration_us":5}`, nil, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk([]byte(tc.out))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseWrk(%q) error = %v, want one containing %q", tc.out, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWrk(%q) error = %v", tc.out, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseWrk(%q) mismatch (-want +got):\n%s", tc.out, diff)
			}
		})
	}
}

func TestWrkResultSample(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        wrkResult
		rps      float64
		statuses map[int]int64
		errors   int64
		summary  string
	}{
		{"all good", wrkResult{Requests: 1000, DurationUS: 2e6, P50US: 1000, P99US: 2500, P999US: 4000}, 500, map[int]int64{200: 1000}, 0, ""},
		{"status errors apart", wrkResult{Requests: 1000, DurationUS: 1e6, StatusErrors: 10}, 1000, map[int]int64{200: 990, statusWrkError: 10}, 0, "10×≥400"},
		{"socket errors", wrkResult{Requests: 10, DurationUS: 1e6, ConnectErrors: 1, ReadErrors: 2, WriteErrors: 3, Timeouts: 4}, 10, map[int]int64{200: 10}, 10,
			"10 transport errors (first: wrk: 1 connect, 2 read, 3 write, 4 timeouts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, st := tc.r.sample()
			if st.rps != tc.rps || s.rps() != tc.rps {
				t.Errorf("sample(%+v) rps = %v, %v; want %v", tc.r, st.rps, s.rps(), tc.rps)
			}
			if st.p50 != us(tc.r.P50US) || st.p99 != us(tc.r.P99US) || st.p999 != us(tc.r.P999US) {
				t.Errorf("sample(%+v) percentiles = %v %v %v", tc.r, st.p50, st.p99, st.p999)
			}
			if diff := cmp.Diff(tc.statuses, s.statuses); diff != "" || s.errors != tc.errors || s.sent != tc.r.Requests {
				t.Errorf("sample(%+v) = sent %d, errors %d, statuses diff %s; want sent %d, errors %d", tc.r, s.sent, s.errors, diff, tc.r.Requests, tc.errors)
			}
			if got := s.statusSummary(); got != tc.summary {
				t.Errorf("sample(%+v).statusSummary() = %q, want %q", tc.r, got, tc.summary)
			}
		})
	}
}

func TestLuaString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":"b"}`, `"{\"a\":\"b\"}"`},
		{`back\slash`, `"back\\slash"`},
		{"new\nline\x00é", `"new\010line\000\195\169"`},
		{"]]==]", `"]]==]"`},
		{"", `""`},
	} {
		if got := luaString(tc.in); got != tc.want {
			t.Errorf("luaString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// seen is one request as the test server read it.
type seen struct {
	method, host, path, query string
	header                    http.Header
	body                      string
}

// TestWrkSendsWhatTheGoLoaderSends runs the real wrk with the harness's
// script against a server that records every request, and checks each is
// the activation the Go loader sends: same method, path, headers and
// bodies, cycling through every license key; and that the summary counts
// answers above 399 as status errors.
func TestWrkSendsWhatTheGoLoaderSends(t *testing.T) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed")
	}
	bodies := []string{activationBody(0), activationBody(1), activationBody(2)}
	for _, tc := range []struct {
		name   string
		status int
	}{{"success", 200}, {"over limit", 429}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, seen{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"message":"ok","code":0}`)
			}))
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			wr := &wrkRunner{bin: bin, threads: 1, conns: 2, d: time.Second, timeout: 5 * time.Second, dir: t.TempDir(), token: "tok-123", bodies: bodies}
			var began, ended bool
			s, st, err := wr.run(context.Background(), addr, hooks{Begin: func() { began = true }, End: func() { ended = true }})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !began || !ended {
				t.Errorf("run hooks: begin %v, end %v; want both", began, ended)
			}
			mu.Lock()
			defer mu.Unlock()
			if s.sent <= 0 || int64(len(got)) < s.sent || st.rps <= 0 {
				t.Fatalf("run = %d answers at %.0f req/s, server saw %d; want some, at most what it saw", s.sent, st.rps, len(got))
			}
			wantErrs := int64(0)
			if tc.status >= 400 {
				wantErrs = s.sent
			}
			if s.statuses[statusWrkError] != wantErrs || s.statuses[200] != s.sent-wantErrs {
				t.Errorf("run statuses = %v, want %d × ≥400 of %d", s.statuses, wantErrs, s.sent)
			}
			// What the Go loader sends, as net/http reads it.
			wantHeader := http.Header{
				"User-Agent":     {"keygate-bench"},
				"Authorization":  {"Bearer tok-123"},
				"Content-Type":   {"application/json"},
				"Content-Length": nil, // set per body below
			}
			var order []string
			for i, r := range got {
				wantHeader["Content-Length"] = []string{strconv.Itoa(len(r.body))}
				if r.method != "POST" || r.host != addr || r.path != "/activate-key" || r.query != "" || !slices.Contains(bodies, r.body) {
					t.Fatalf("request %d = %s %s%s?%s %q; want POST %s/activate-key with one of %q", i, r.method, r.host, r.path, r.query, r.body, addr, bodies)
				}
				if diff := cmp.Diff(wantHeader, r.header); diff != "" {
					t.Fatalf("request %d header mismatch (-want +got):\n%s", i, diff)
				}
				if i < 6 {
					order = append(order, r.body)
				}
			}
			// One connection's requests arrive in order; with two, the first
			// few still hold every body.
			for _, b := range bodies {
				if !slices.Contains(order, b) {
					t.Errorf("first requests = %q; want every body among them, missing %q", order, b)
				}
			}
		})
	}
}

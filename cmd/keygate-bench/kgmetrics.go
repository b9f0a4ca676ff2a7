package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Admitted requests are counted by keygate itself: its rate-limit decisions
// "allowed" for one rule of the activate route (every admitted request has
// one). wrk stops counting with requests in flight, which keygate has
// admitted all the same and asked Redis about; the load generator's count
// of 200 answers would miss them.
const (
	admittedMetric = "keygate_ratelimit_decisions_total"
	admittedRoute  = "activate"
	admittedRule   = "bench-per-license"
)

// scrape returns keygate's admin /metrics, in the Prometheus text format.
func scrape(admin string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return "", fmt.Errorf("keygate metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("keygate metrics: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("keygate metrics: %w", err)
	}
	return string(body), nil
}

// kgCounts are keygate's own counts, from one scrape of its /metrics: the
// activations it admitted, its rate-limit calls to Redis and the round
// trips (pipelines) that carried them.
type kgCounts struct{ admitted, calls, roundTrips int64 }

// readCounts scrapes keygate's admin /metrics once for its kgCounts.
func readCounts(admin string) (kgCounts, error) {
	var c kgCounts
	text, err := scrape(admin)
	if err != nil {
		return c, err
	}
	if c.admitted, err = sumSeries(strings.NewReader(text), admittedMetric, map[string]string{"route": admittedRoute, "rule": admittedRule, "result": "allowed"}); err != nil {
		return c, err
	}
	if c.calls, err = sumSeries(strings.NewReader(text), "keygate_redis_calls_total", nil); err != nil {
		return c, err
	}
	c.roundTrips, err = sumSeries(strings.NewReader(text), "keygate_redis_round_trips_total", nil)
	return c, err
}

// settledCounts reads readCounts until two reads 20ms apart agree on the
// admitted count (the requests in flight when the load stopped have been
// decided), for at most 2s; it returns the last read.
func settledCounts(admin string) (kgCounts, error) {
	last, err := readCounts(admin)
	for i := 0; err == nil && i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		var c kgCounts
		if c, err = readCounts(admin); err == nil && c.admitted == last.admitted {
			return c, nil
		}
		last = c
	}
	return last, err
}

// sumSeries sums the samples of metric whose labels include every one of
// want, in a Prometheus text exposition. No series is a sum of 0: they
// appear with the first event.
func sumSeries(r io.Reader, metric string, want map[string]string) (int64, error) {
	var n int64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var labels, value string
		if rest, ok := strings.CutPrefix(line, metric+" "); ok { // a series without labels
			value = rest
		} else if rest, ok := strings.CutPrefix(line, metric+"{"); ok {
			if labels, value, ok = strings.Cut(rest, "} "); !ok {
				return 0, fmt.Errorf("keygate metrics: line %q", line)
			}
		} else {
			continue
		}
		if !hasLabels(labels, want) {
			continue
		}
		f := strings.Fields(value) // the value, then maybe a timestamp
		if len(f) == 0 {
			return 0, fmt.Errorf("keygate metrics: line %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || v < 0 || v != v {
			return 0, fmt.Errorf("keygate metrics: line %q", line)
		}
		n += int64(v)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("keygate metrics: %w", err)
	}
	return n, nil
}

// hasLabels reports whether a Prometheus label set such as
// result="allowed",route="activate",rule="x" has every name="value" of
// want. The values compared hold no comma, quote or backslash.
func hasLabels(labels string, want map[string]string) bool {
	have := map[string]bool{}
	for _, kv := range strings.Split(labels, ",") {
		have[kv] = true
	}
	for k, v := range want {
		if !have[k+"="+strconv.Quote(v)] {
			return false
		}
	}
	return true
}

//go:build soak

package main

import (
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/internal/redistest"
)

var (
	soakDuration = flag.Duration("soak.duration", 3*time.Minute, "how long the soak runs")
	soakRate     = flag.Int("soak.rate", 400, "requests per second, fixed")
)

var metricLine = regexp.MustCompile(`(?m)^(go_goroutines|process_resident_memory_bytes) ([0-9.e+]+)$`)

func gauges(t *testing.T, kg *instance) (goroutines, rssMiB float64) {
	t.Helper()
	resp, err := http.Get("http://" + kg.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, m := range metricLine.FindAllStringSubmatch(readAll(resp), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "go_goroutines" {
			goroutines = v
		} else {
			rssMiB = v / (1 << 20)
		}
	}
	return goroutines, rssMiB
}

// TestSoak drives one keygate with Redis at a fixed rate for soak.duration
// with mixed traffic (valid, invalid, unauthorized, limited, broken backend
// answers), restarts Redis half-way, and checks: no answer outside the
// contract, no goroutine growth, stable RSS. Run it with `make soak`.
func TestSoak(t *testing.T) {
	rs := redistest.Start(t)
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_REDIS_URL="+rs.URL(),
		"KEYGATE_LOG_LEVEL=warn", "KEYGATE_UPSTREAM_TIMEOUT=500ms", "KEYGATE_TRUSTED_PROXIES=127.0.0.1")

	p := backend.ProductID
	mix := []struct{ path, token, body string }{
		{"/get-key", "alpha", fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, p, backend.LicenseKey)},
		{"/activate-key", "alpha", activation(backend.LicenseKey, "soak-host")}, // soon limited: 429s
		{"/get-key", "alpha", fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, p, backend.HTMLErrorKey)},
		{"/get-key", "alpha", fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, p, backend.PlainTextKey)},
		{"/block-key", "alpha", fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, p, resetKey)},
		{"/get-key", "wrong", fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, p, backend.LicenseKey)},
		{"/activate-key", "alpha", `{"productId":"short"}`},
		{"/get-key", "alpha", fmt.Sprintf(`{"productId":%q,"licenseKey":"DEMO-UNKNOWN-000-0000-0000-0001"}`, p)},
	}

	warm := time.Now().Add(10 * time.Second)
	for time.Now().Before(warm) { // let pools and caches fill before the baseline
		post(t, kg.api, mix[0].path, mix[0].token, mix[0].body)
	}
	g0, rss0 := gauges(t, kg)

	var sent, violations atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*soakRate)
	start := time.Now()
	restarted := false
	for i := 0; time.Since(start) < *soakDuration; i++ {
		if due := start.Add(time.Duration(i) * interval); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		if !restarted && time.Since(start) > *soakDuration/2 {
			restarted = true
			go rs.Restart()
		}
		wg.Add(1)
		sent.Add(1)
		go func(i int) {
			defer wg.Done()
			m := mix[i%len(mix)]
			r, err := send(kg.api, m.path, m.token, m.body, "X-Forwarded-For", fmt.Sprintf("203.0.%d.%d", i/250%250, i%250+1))
			if err != nil {
				violations.Add(1)
				t.Error(err)
				return
			}
			if problem := inContract(r); problem != "" {
				violations.Add(1)
				t.Errorf("%s: %s", m.path, problem)
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // idle keep-alive goroutines settle
	g1, rss1 := gauges(t, kg)
	t.Logf("soak: %d requests in %s at %d/s, %d contract violations, answers %v", sent.Load(), *soakDuration, *soakRate, violations.Load(), statuses)
	t.Logf("soak: goroutines %.0f -> %.0f, RSS %.1f MiB -> %.1f MiB, Redis restarted once", g0, g1, rss0, rss1)
	if violations.Load() != 0 {
		t.Errorf("%d answers outside the contract", violations.Load())
	}
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", g0, g1)
	}
	if rss1 > rss0*1.5+8 {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB", rss0, rss1)
	}
}

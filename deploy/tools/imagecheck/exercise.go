package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// families are the metric families keygate exports only once something
// happened; exercise makes each happen, so that the saved /metrics lists
// every family the dashboard and the alert rules may query.
var families = []string{
	"keygate_requests_total",
	"keygate_upstream_duration_seconds",
	"keygate_upstream_rewrites_total",
	"keygate_token_rejections_total",
	"keygate_ratelimit_decisions_total",
	"keygate_ratelimit_errors_total",
	"keygate_ratelimit_fallback_active",
	"keygate_redis_errors_total",
	"keygate_idempotency_total",
	"keygate_tokens_reloads_total",
}

// exercise sends a wrong token, a request the backend answers with HTML, an
// activation with an Idempotency-Key (its store, Redis, is down), and reloads
// the tokens file on SIGHUP; then waits for every family in /metrics.
func (c *checker) exercise(ctx context.Context, name, api, admin, tokensFile, tokens string) error {
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, productID, fastKey)
	if a := send(ctx, api, "/get-key", "not-a-token-of-ours", body); a.err != nil || a.status != 401 {
		return fmt.Errorf("POST /get-key with an unknown token = %d %s (%v), want 401", a.status, a.body, a.err)
	}
	html := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, productID, htmlKey)
	a := send(ctx, api, "/get-key", token, html)
	if a.err != nil || a.status != 404 || !strings.HasPrefix(a.body, `{"message":`) || !strings.HasSuffix(a.body, `,"code":1}`) ||
		strings.Contains(strings.ToLower(a.body), "html") {
		return fmt.Errorf("POST /get-key answered with HTML by the backend = %d %s (%v), want a contract 404 code 1", a.status, a.body, a.err)
	}
	activate := fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"imagecheck-host"}`, productID, fastKey)
	if err := send(ctx, api, "/activate-key", token, activate, "Idempotency-Key", "imagecheck-0001").ok(); err != nil {
		return fmt.Errorf("POST /activate-key with an Idempotency-Key: %w", err)
	}
	// A changed tokens file (the same token, renamed), then SIGHUP.
	changed := strings.Replace(tokens, "name: imagecheck", "name: imagecheck-reloaded", 1)
	if err := os.WriteFile(tokensFile+".tmp", []byte(changed), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tokensFile+".tmp", tokensFile); err != nil {
		return err
	}
	if err := c.eng.signal(ctx, name, "HUP"); err != nil {
		return err
	}
	var missing []string
	err := c.poll(ctx, name, "every metric family in /metrics", time.Minute, func() bool {
		text, err := getMetrics(ctx, admin)
		if err != nil {
			return false
		}
		missing = missing[:0]
		for _, f := range families {
			if !strings.Contains(text, "\n# TYPE "+f+" ") {
				missing = append(missing, f)
			}
		}
		return len(missing) == 0
	})
	if err != nil {
		return fmt.Errorf("%w (missing: %s)", err, strings.Join(missing, ", "))
	}
	c.logf("a wrong token, an HTML 404 rewritten, an idempotent activation, a tokens reload: %d metric families exported", len(families))
	return nil
}

func getMetrics(ctx context.Context, admin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("GET /metrics = %d (%v)", resp.StatusCode, err)
	}
	return string(raw), nil
}

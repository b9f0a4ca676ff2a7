package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/policy"
)

// TestServeAccessLogFormats: `keygate serve` writes one access line per
// request in the configured format, with slog's keys, order and value
// formats, the secrets by hash only.
func TestServeAccessLogFormats(t *testing.T) {
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "good-token")
	keyHash, tokenHash := policy.HashToken(backend.LicenseKey), policy.HashToken("good-token")
	tests := []struct {
		format string
		line   *regexp.Regexp
	}{
		{"json", regexp.MustCompile(`(?m)^\{"time":"[^"]+","level":"INFO","msg":"request","request_id":"access-1","route":"get",` +
			`"status":200,"code":"0","duration_ms":[0-9.]+,"ip":"127\.0\.0\.1","licenseKey_hash":"` + keyHash + `","token_hash":"` + tokenHash + `"\}$`)},
		{"text", regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=request request_id=access-1 route=get status=200 code=0 ` +
			`duration_ms=[0-9.]+ ip=127\.0\.0\.1 licenseKey_hash=` + keyHash + ` token_hash=` + tokenHash + `$`)},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_LOG_FORMAT="+tc.format)
			body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)
			if r := post(t, kg.api, "/get-key", "good-token", body, "X-Request-Id", "access-1"); r.status != 200 {
				t.Fatalf("POST /get-key = %d %s, want 200", r.status, r.raw)
			}
			waitFor(t, "the access line", func() bool { return strings.Contains(kg.logs(), "access-1") })
			logs := kg.logs()
			if !tc.line.MatchString(logs) {
				t.Errorf("logs lack an access line matching %s:\n%s", tc.line, logs)
			}
			for _, secret := range []string{backend.LicenseKey, "good-token"} {
				if strings.Contains(logs, secret) {
					t.Errorf("logs hold %q:\n%s", secret, logs)
				}
			}
		})
	}
}

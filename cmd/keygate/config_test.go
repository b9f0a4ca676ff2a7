package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig([]string{"KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ListenAddr: ":8080", AdminAddr: ":9090", UpstreamURL: "http://127.0.0.1:3000", UpstreamTimeout: 10 * time.Second,
		TokensReload: 5 * time.Second, RateHeaders: "draft", MaxBodyBytes: 65536, MaxAnswerBytes: 262144,
		RedisTimeout: 50 * time.Millisecond, RedisFailure: "local", RedisPrefix: "keygate:", IdemTTL: 24 * time.Hour, IdemFailure: "forward",
		HeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, DrainTimeout: 20 * time.Second, LogLevel: "info", LogFormat: "json",
		TokensCacheTTL: 5 * time.Second, JWKSRefresh: 15 * time.Minute, JWTLeeway: 30 * time.Second,
		ClaimProducts: "products", ClaimOperations: "operations", ClaimName: "sub",
		IntrospectTimeout: 2 * time.Second, IntrospectCacheTTL: 30 * time.Second,
		IdleTimeout: 30 * time.Second, MaxConns: 4096, IdemMaxPerToken: 10000, RedisLocalShare: 1, UpstreamIdle: 30 * time.Second,
		IPv6Prefix: 64,
	}
	if diff := cmp.Diff(want, *c, cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("loadConfig defaults mismatch (-want +got):\n%s", diff)
	}
}

// configErrorCase is an environment with one mistake and the start of the
// one line that reports it.
type configErrorCase struct {
	env  string
	want string
}

// configErrorCases are the misconfigurations loadConfig reports; serve and
// check must agree on every one (TestCheckAgreesWithServe). ca is a file that
// holds no certificate.
func configErrorCases(ca string) []configErrorCase {
	return []configErrorCase{
		{"", "KEYGATE_UPSTREAM_URL: is required"},
		{"KEYGATE_UPSTREAM_URL=ftp://x", `KEYGATE_UPSTREAM_URL: "ftp://x" must be an http:// or https:// URL with a host`},
		{"KEYGATE_UPSTREAM_URL=http://", `KEYGATE_UPSTREAM_URL: "http://" must be an http:// or https:// URL with a host`},
		{"KEYGATE_UPSTREAM_URL=http://u:p@x", "KEYGATE_UPSTREAM_URL: must not carry credentials"},
		{"KEYGATE_UPSTREAM_TIMEOUT=soon", `KEYGATE_UPSTREAM_TIMEOUT: "soon" is not a valid duration`},
		{"KEYGATE_UPSTREAM_TIMEOUT=-1s", "KEYGATE_UPSTREAM_TIMEOUT: must be > 0"},
		{"KEYGATE_MAX_BODY_BYTES=lots", `KEYGATE_MAX_BODY_BYTES: "lots" is not a valid whole number`},
		{"KEYGATE_MAX_BODY_BYTES=0", "KEYGATE_MAX_BODY_BYTES: 0 must be between 1 and 16777216"},
		{"KEYGATE_MAX_ANSWER_BYTES=0", "KEYGATE_MAX_ANSWER_BYTES: 0 must be between 1 and 16777216"},
		{"KEYGATE_LISTEN_ADDR=8080", `KEYGATE_LISTEN_ADDR: "8080" is not host:port`},
		{"KEYGATE_ADMIN_ADDR=:8080", `KEYGATE_ADMIN_ADDR: ":8080" is the same address as KEYGATE_LISTEN_ADDR`},
		{"KEYGATE_TRUSTED_PROXIES=10.0.0.0/8,nope", `KEYGATE_TRUSTED_PROXIES: "nope" is not a CIDR`},
		{"KEYGATE_LOG_LEVEL=loud", `KEYGATE_LOG_LEVEL: "loud" must be debug, info, warn or error`},
		{"KEYGATE_LOG_FORMAT=xml", `KEYGATE_LOG_FORMAT: "xml" must be json or text`},
		{"KEYGATE_UPSTREAM_CA_FILE=" + ca, "KEYGATE_UPSTREAM_CA_FILE: " + ca + " holds no PEM certificate"},
		{"KEYGATE_DRAIN_TIMEOUT=0s", "KEYGATE_DRAIN_TIMEOUT: must be > 0"},
		{"KEYGATE_SHUTDOWN_DELAY=-1s", "KEYGATE_SHUTDOWN_DELAY: -1s must be between 0s and 5m0s"},
		{"KEYGATE_SHUTDOWN_DELAY=6m", "KEYGATE_SHUTDOWN_DELAY: 6m0s must be between 0s and 5m0s"},
		{"KEYGATE_READ_TIMEOUT=1s", "KEYGATE_READ_TIMEOUT: 1s must be at least KEYGATE_READ_HEADER_TIMEOUT (5s)"},
		{"KEYGATE_REDIS_FAILURE_MODE=maybe", `KEYGATE_REDIS_FAILURE_MODE: "maybe" must be local, open or closed`},
		{"KEYGATE_REDIS_TIMEOUT=0s", "KEYGATE_REDIS_TIMEOUT: must be > 0"},
		{"KEYGATE_REDIS_PREFIX={kg}", `KEYGATE_REDIS_PREFIX: "{kg}" must be non-empty, without braces or spaces`},
		{"KEYGATE_REDIS_URL=mysql://db", "KEYGATE_REDIS_URL: "},
		{"KEYGATE_REDIS_URL=127.0.0.1:6379", `KEYGATE_REDIS_URL: "127.0.0.1:6379" is not a URL: write it as redis://127.0.0.1:6379 (rediss:// for TLS)`},
		{"KEYGATE_REDIS_SENTINEL_MASTER=m", "KEYGATE_REDIS_SENTINEL_ADDRS: required with KEYGATE_REDIS_SENTINEL_MASTER"},
		{"KEYGATE_REDIS_TLS=perhaps", `KEYGATE_REDIS_TLS: "perhaps" is not a valid boolean`},
		{"KEYGATE_IDEMPOTENCY_FAILURE_MODE=ignore", `KEYGATE_IDEMPOTENCY_FAILURE_MODE: "ignore" must be forward or refuse`},
		{"KEYGATE_RATELIMIT_HEADERS=all", `KEYGATE_RATELIMIT_HEADERS: "all" must be draft, legacy, both or none`},
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("not a cert"), 0o600)
	tests := configErrorCases(ca)
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			env := []string{tc.env}
			if !strings.HasPrefix(tc.env, "KEYGATE_UPSTREAM_URL") && tc.env != "" {
				env = append(env, "KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000")
			}
			_, err := loadConfig(env, true)
			if err == nil {
				t.Fatalf("loadConfig(%q) = nil error, want %q", tc.env, tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Errorf("loadConfig(%q) error = %q, want one line starting %q", tc.env, err, tc.want)
			}
		})
	}
}

func TestConfigTrustedProxies(t *testing.T) {
	c, err := loadConfig([]string{"KEYGATE_UPSTREAM_URL=http://x", "KEYGATE_TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.7 ,::1"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.trusted {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.168.1.7/32", "::1/128"}; !cmp.Equal(got, want) {
		t.Errorf("trusted = %v, want %v", got, want)
	}
}

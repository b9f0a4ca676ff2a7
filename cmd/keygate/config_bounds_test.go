package main

import (
	"strings"
	"testing"
)

// TestConfigBoundsErrors checks the variables that bound client
// connections and stored records.
func TestConfigBoundsErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"KEYGATE_MAX_CONNS=0", "KEYGATE_MAX_CONNS: 0 must be between 1 and 1048576"},
		{"KEYGATE_MAX_CONNS=many", `KEYGATE_MAX_CONNS: "many" is not a valid whole number`},
		{"KEYGATE_IDLE_TIMEOUT=0s", "KEYGATE_IDLE_TIMEOUT: must be > 0"},
		{"KEYGATE_IDEMPOTENCY_MAX_PER_TOKEN=0", "KEYGATE_IDEMPOTENCY_MAX_PER_TOKEN: 0 must be at least 1"},
		{"KEYGATE_IPV6_PREFIX=47", "KEYGATE_IPV6_PREFIX: 47 must be between 48 and 128"},
		{"KEYGATE_IPV6_PREFIX=129", "KEYGATE_IPV6_PREFIX: 129 must be between 48 and 128"},
		{"KEYGATE_IPV6_PREFIX=/64", `KEYGATE_IPV6_PREFIX: "/64" is not a valid whole number`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			_, err := loadConfig([]string{tc.env, "KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000"}, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadConfig(%q) = %v, want an error containing %q", tc.env, err, tc.want)
			}
		})
	}
}

package main

import (
	"strings"
	"testing"
)

// TestConfigRecoveryErrors checks the variables of Redis recovery and the
// upstream connections.
func TestConfigRecoveryErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"KEYGATE_REDIS_LOCAL_SHARE=0", "KEYGATE_REDIS_LOCAL_SHARE: 0 must be between 1 and 1024"},
		{"KEYGATE_REDIS_LOCAL_SHARE=2000", "KEYGATE_REDIS_LOCAL_SHARE: 2000 must be between 1 and 1024"},
		{"KEYGATE_REDIS_LOCAL_SHARE=half", `KEYGATE_REDIS_LOCAL_SHARE: "half" is not a valid whole number`},
		{"KEYGATE_UPSTREAM_IDLE_TIMEOUT=0s", "KEYGATE_UPSTREAM_IDLE_TIMEOUT: must be at least 1ms"},
		{"KEYGATE_UPSTREAM_IDLE_TIMEOUT=soon", `KEYGATE_UPSTREAM_IDLE_TIMEOUT: "soon" is not a valid duration`},
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

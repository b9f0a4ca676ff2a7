package redisconn

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRedisConfigFieldErrors checks that every problem comes as a
// FieldError on the field to fix, and that Text names every field the
// message mentions through the caller's names, so that no caller has to
// rewrite a message to name its own settings.
func TestRedisConfigFieldErrors(t *testing.T) {
	upper := func(f string) string { return "<" + strings.ToUpper(f) + ">" }
	tests := []struct {
		name string
		c    Config
		want []string // Text(upper) of each problem, in order
	}{
		{"nothing", Config{}, []string{"<URL>: not set, nor <SENTINELADDRS> nor <CLUSTERADDRS>: set one of them"}},
		{"three modes", Config{URL: "redis://h", SentinelMaster: "m", SentinelAddrs: []string{"h:1"}, ClusterAddrs: []string{"h:2"}},
			[]string{"<URL>: set together with <SENTINELADDRS> and <CLUSTERADDRS>: set only one"}},
		{"master without sentinels", Config{SentinelMaster: "m"}, []string{"<SENTINELADDRS>: required with <SENTINELMASTER>"}},
		{"sentinel credentials alone", Config{URL: "redis://h", SentinelUsername: "u", SentinelPassword: "p"},
			[]string{"<SENTINELUSERNAME>: set without <SENTINELADDRS>", "<SENTINELPASSWORD>: set without <SENTINELADDRS>"}},
		{"db in cluster", Config{ClusterAddrs: []string{"h:1", "h"}, DB: 2}, []string{
			"<DB>: must be 0 with <CLUSTERADDRS>: a Redis Cluster has database 0 only",
			`<CLUSTERADDRS>[1]: "h" must be host:port`,
		}},
		{"password twice", Config{URL: "redis://u:secret@h", Password: "other"}, []string{"<PASSWORD>: also set in <URL>; set it in one place"}},
		{"CA without TLS", Config{URL: "redis://h", CAFile: "ca.pem"}, []string{"<CAFILE>: set but TLS is off; set <TLS> or use a rediss:// URL"}},
		{"negative pool", Config{URL: "redis://h", PoolSize: -2}, []string{"<POOLSIZE>: -2 must be >= 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v (%T), want a *ConfigError", err, err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Text(upper))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() problems, Text(upper) (-want +got):\n%s", diff)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe != ce.Problems[0] {
				t.Errorf("errors.As(Validate(), *FieldError) = %v, want the first problem", fe)
			}
		})
	}
}

// TestRedisConfigFieldErrorCause checks that a problem another package
// reported keeps its cause.
func TestRedisConfigFieldErrorCause(t *testing.T) {
	err := Config{URL: "rediss://h", CAFile: "/nonexistent/ca.pem"}.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "CAFile" || fe.Err == nil || !strings.Contains(err.Error(), "CAFile: ") {
		t.Fatalf("Validate() = %v, want a CAFile FieldError with its cause", err)
	}
}

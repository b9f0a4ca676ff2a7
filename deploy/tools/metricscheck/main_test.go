package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`max by (namespace, pod) (keygate_ratelimit_fallback_active) > 0`, []string{"keygate_ratelimit_fallback_active"}},
		{`sum by (namespace) (rate(keygate_requests_total{status=~"5.."}[5m])) / sum by (namespace) (rate(keygate_requests_total[5m])) > 0.05`,
			[]string{"keygate_requests_total"}},
		{`histogram_quantile(0.99, sum by (route, le) (rate(keygate_upstream_duration_seconds_bucket{namespace=~"$namespace", pod=~"${pod}"}[$__rate_interval])))`,
			[]string{"keygate_upstream_duration_seconds_bucket"}},
		{`rate(a_total[5m]) and on (pod) b > 1e3 or c offset 5m unless d{x="rate(e)"}`, []string{"a_total", "b", "c", "d"}},
		{`vector(1)`, nil},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestExpositionHas(t *testing.T) {
	e := exposition{"keygate_requests_total": "counter", "keygate_upstream_duration_seconds": "histogram", "rpc": "summary"}
	for name, want := range map[string]bool{
		"keygate_requests_total":                   true,
		"keygate_upstream_duration_seconds_bucket": true,
		"keygate_upstream_duration_seconds_count":  true,
		"keygate_requests_total_count":             false,
		"rpc_sum":                                  true,
		"rpc_bucket":                               false,
		"keygate_request_total":                    false,
	} {
		if got := e.has(name); got != want {
			t.Errorf("has(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestRun checks the whole program on a dashboard and rules that query one
// metric keygate lacks, and on ones that do not.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	metrics := write("metrics.txt", "# HELP keygate_requests_total x\n# TYPE keygate_requests_total counter\nkeygate_requests_total{route=\"get\"} 1\n")
	goodRules := write("good.yaml", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(keygate_requests_total[5m]) > 0\n")
	badRules := write("bad.yaml", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(keygate_request_total[5m]) > 0\n")
	goodDash := write("good.json", `{"panels":[{"title":"p","targets":[{"refId":"A","expr":"sum(rate(keygate_requests_total[1m]))"}]}],
		"templating":{"list":[{"name":"pod","type":"query","query":{"query":"label_values(keygate_requests_total, pod)"}}]}}`)
	badDash := write("bad.json", `{"panels":[{"title":"p","targets":[{"refId":"A","expr":"sum(rate(keygate_requests_total[1m]))"}]}],
		"templating":{"list":[{"name":"pod","type":"query","query":{"query":"label_values(kube_pod_info, pod)"}}]}}`)
	tests := []struct {
		name, rules, dash string
		code              int
		want              string
	}{
		{"good", goodRules, goodDash, 0, ""},
		{"misspelt rule metric", badRules, goodDash, 1, "keygate_request_total is not a metric keygate exports"},
		{"foreign variable metric", goodRules, badDash, 1, "variable pod: kube_pod_info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run([]string{"-metrics", metrics, "-rules", tt.rules, "-dashboard", tt.dash}, &out, &errOut)
			if code != tt.code || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("run(%s) = %d, %q; want %d and %q", tt.name, code, errOut.String(), tt.code, tt.want)
			}
		})
	}
}

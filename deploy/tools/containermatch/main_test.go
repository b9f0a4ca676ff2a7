package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const chartPod = `apiVersion: apps/v1
kind: Deployment
metadata: {name: chart}
spec:
  template:
    spec:
      enableServiceLinks: false
      terminationGracePeriodSeconds: 30
      containers:
        - name: backend
          image: backend
        - name: keygate
          image: "ghcr.io/keygate/keygate:0.1.0"
          args: ["serve"]
          env:
            - {name: KEYGATE_DRAIN_TIMEOUT, value: 20s}
          volumeMounts:
            - {name: chart-tokens, mountPath: /etc/keygate/tokens, readOnly: true}
`

func TestRun(t *testing.T) {
	tests := []struct {
		name, manifest string
		code           int
		want           string
	}{
		{"same, other volume name", strings.Replace(chartPod, "chart-tokens", "my-tokens", 1), 0, ""},
		{"older image", strings.Replace(chartPod, "keygate:0.1.0", "keygate:0.0.9", 1), 1, "keygate:0.0.9"},
		{"drain changed", strings.Replace(chartPod, "20s", "30s", 1), 1, "30s"},
		{"shorter grace", strings.Replace(chartPod, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 10", 1), 1, "GracePeriodSeconds"},
		{"writable mount", strings.Replace(chartPod, "readOnly: true", "readOnly: false", 1), 1, "ReadOnly"},
		{"no keygate", strings.Replace(chartPod, "name: keygate", "name: proxy", 1), 1, "no pod with a keygate container"},
	}
	dir := t.TempDir()
	want := filepath.Join(dir, "chart.yaml")
	if err := os.WriteFile(want, []byte(chartPod), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(file, []byte(tt.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := run([]string{"-want", want, file}, &out, &errOut)
			if code != tt.code || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("run(%s) = %d, %q; want %d and %q", tt.name, code, errOut.String(), tt.code, tt.want)
			}
		})
	}
}

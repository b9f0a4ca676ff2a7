package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const restrictedPod = `apiVersion: apps/v1
kind: Deployment
metadata: {name: good}
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: app
          image: app
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
`

// TestRun checks the evaluator on a restricted pod and on pods that each
// break one rule, as the sidecar examples' stand-in backends did.
func TestRun(t *testing.T) {
	tests := []struct {
		name, manifest string
		code           int
		want           string
	}{
		{"restricted", restrictedPod + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n", 0, ""},
		{"escalation allowed", strings.Replace(restrictedPod, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1), 1, "allowPrivilegeEscalation != false"},
		{"capabilities kept", strings.Replace(restrictedPod, "capabilities: {drop: [ALL]}", "capabilities: {drop: [NET_RAW]}", 1), 1, "unrestricted capabilities"},
		{"may run as root", strings.Replace(restrictedPod, "runAsNonRoot: true", "runAsNonRoot: false", 1), 1, "runAsNonRoot != true"},
		{"no seccomp", strings.Replace(restrictedPod, "seccompProfile: {type: RuntimeDefault}", "fsGroup: 1", 1), 1, "seccompProfile"},
		{"second container", restrictedPod + "        - name: backend\n          image: backend\n", 1, `container "backend"`},
		{"a cronjob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: c}]\n", 1, "CronJob/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(file, []byte(tt.manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := run([]string{file}, &out, &errOut)
			if code != tt.code || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("run(%s) = %d, %q; want %d and %q", tt.name, code, errOut.String(), tt.code, tt.want)
			}
		})
	}
}

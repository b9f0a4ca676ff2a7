package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKeygate writes a stand-in for `keygate check` that fails when the
// policy or tokens file says "bad", and records its arguments.
func fakeKeygate(t *testing.T) (bin, argsLog string) {
	t.Helper()
	dir := t.TempDir()
	argsLog = filepath.Join(dir, "args")
	bin = filepath.Join(dir, "keygate")
	script := `#!/bin/sh
echo "$@" >> ` + argsLog + `
[ -n "$KEYGATE_TOKENS_FILE" ] && { echo "KEYGATE_* leaked into check"; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in -policy|-tokens) grep -q bad "$2" && { echo "$2:1: bad"; exit 1; };; esac
  shift
done
exit 0
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsLog
}

func TestRun(t *testing.T) {
	t.Setenv("KEYGATE_TOKENS_FILE", "/from/the/test/environment")
	bin, _ := fakeKeygate(t)
	tests := []struct {
		name     string
		files    []string
		extra    []string
		wantCode int
		want     []string // substrings of stderr, one per expected problem
	}{
		{
			name:  "documented variables, files on their mounts, check passes",
			files: []string{"good.yaml"},
		},
		{
			name:     "undocumented, duplicate, empty required, unmounted and itemless files",
			files:    []string{"bad.yaml"},
			wantCode: 1,
			want: []string{
				`bad.yaml: CronJob/job container "keygate": KEYGATE_LOGLEVEL is not in testdata/README.md's variable table`,
				`KEYGATE_LOG_LEVEL is set more than once`,
				`KEYGATE_UPSTREAM_URL is not set; keygate needs it`,
				`KEYGATE_TOKENS_FILE=/etc/tokens/tokens.yaml: no volume mount of container "keygate" holds /etc/tokens/tokens.yaml`,
				`KEYGATE_POLICY_FILE=/etc/policy/p.yaml: volume "policy" (ConfigMap policy) lists no item with path "p.yaml"`,
			},
		},
		{
			name:     "no keygate container anywhere",
			files:    []string{"nokeygate.yaml"},
			wantCode: 1,
			want:     []string{"no keygate container in any of the 1 files"},
		},
		{
			name:  "files without keygate pass beside one with it",
			files: []string{"nokeygate.yaml", "good.yaml"},
		},
		{
			name:     "cover: a README variable no file sets",
			files:    []string{"good.yaml"},
			extra:    []string{"-cover"},
			wantCode: 1,
			want:     []string{"KEYGATE_LOG_FORMAT is in testdata/README.md's variable table but no keygate container in these files sets it"},
		},
		{
			name:     "cover: a credential counts through its _FILE twin",
			files:    []string{"good.yaml"},
			extra:    []string{"-cover"},
			wantCode: 1,
			want:     []string{"KEYGATE_JWT_SECRET is in testdata/README.md's variable table but no keygate container"},
		},
		{
			name:  "cover: every variable, JWT_SECRET through JWT_SECRET_FILE; a JWT key is a token source",
			files: []string{"good.yaml", "jwt.yaml"},
			extra: []string{"-cover"},
		},
		{
			name:     "no token source (a store set to false is none); a credential as a literal value",
			files:    []string{"badauth.yaml"},
			wantCode: 1,
			want: []string{
				`badauth.yaml: Pod/nosource container "keygate": none of KEYGATE_TOKENS_FILE, KEYGATE_TOKENS_STORE, KEYGATE_JWT_SECRET, KEYGATE_JWT_SECRET_FILE, KEYGATE_JWT_PUBLIC_KEYS_FILE, KEYGATE_JWKS_URL, KEYGATE_INTROSPECT_URL is set; keygate needs one`,
				`badauth.yaml: Pod/literal container "keygate": KEYGATE_JWT_SECRET is set to a literal value, but it holds a credential: mount it from a Secret and set KEYGATE_JWT_SECRET_FILE`,
			},
		},
		{
			name:     "nothing required is still checked for documentation",
			files:    []string{"bad.yaml"},
			extra:    []string{"-require", ""},
			wantCode: 1,
			want:     []string{"KEYGATE_LOGLEVEL is not in"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-readme", "testdata/README.md", "-keygate", bin}, tt.extra...)
			for _, f := range tt.files {
				args = append(args, filepath.Join("testdata", f))
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.files, code, tt.wantCode, &stdout, &stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("run(%q) stderr lacks %q:\n%s", tt.files, w, &stderr)
				}
			}
			if tt.wantCode == 0 && stderr.Len() > 0 {
				t.Errorf("run(%q) stderr = %q, want none", tt.files, &stderr)
			}
		})
	}
}

// TestKeygateCheckGetsTheMountedFiles checks that the policy and tokens given
// to `keygate check` are the ConfigMap and Secret contents, and that a bad
// one is reported with keygate's own message.
func TestKeygateCheckGetsTheMountedFiles(t *testing.T) {
	bin, argsLog := fakeKeygate(t)
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad-policy.yaml")
	if err := os.WriteFile(bad, bytes.Replace(good, []byte("routes: good"), []byte("routes: bad"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-readme", "testdata/README.md", "-keygate", bin, "testdata/good.yaml", bad}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("run = %d, want 1; stderr:\n%s", code, &stderr)
	}
	if want := `container "proxy": keygate check: exit status 1`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, &stderr)
	}
	if want := "policy.yaml:1: bad"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks keygate's message %q:\n%s", want, &stderr)
	}
	args, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(args), "check -policy "); got != 2 {
		t.Errorf("keygate check ran with -policy %d times, want 2:\n%s", got, args)
	}
}

func TestIsKeygate(t *testing.T) {
	tests := []struct {
		c    container
		want bool
	}{
		{container{Name: "app", Image: "ghcr.io/keygate/keygate:0.1.0"}, true},
		{container{Name: "app", Image: "localhost:5000/keygate"}, true},
		{container{Name: "app", Image: "keygate@sha256:00"}, true},
		{container{Name: "keygate", Image: "example.com/proxy:1"}, true},
		{container{Name: "redis", Image: "redis:7.4-alpine"}, false},
		{container{Name: "app", Image: "localhost:5000/keygate-redis:1"}, false},
	}
	for _, tt := range tests {
		if got := isKeygate(tt.c); got != tt.want {
			t.Errorf("isKeygate(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// checkEnv is an environment serve would accept with the built-in policy.
var checkEnv = []string{"KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000", "KEYGATE_TOKENS_STORE=true", "KEYGATE_REDIS_URL=redis://127.0.0.1:1"}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodPolicy := write("good.yaml", string(policy.Builtin))
	badPolicy := write("bad.yaml", "routes:\n  - name: get\n    method: FETCH\n    path: /get-key\n    colour: blue\n")
	goodTokens := write("tokens.yaml", "tokens:\n  - name: a\n    sha256: "+strings.Repeat("ab", 32)+"\n    products: [\"*\"]\n    operations: [get]\n")
	badTokens := write("badtokens.yaml", "tokens:\n  - name: a\n    sha256: xyz\n    products: []\n    operations: [fly]\n")
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    []string // lines expected in the output
	}{
		{"built-in policy", nil, false, []string{"built-in policy: ok, 6 routes"}},
		{"good files", []string{"-policy", goodPolicy, "-tokens", goodTokens}, false,
			[]string{goodPolicy + ": ok, 6 routes", goodTokens + ": ok, 1 tokens"}},
		{"bad policy", []string{"-policy", badPolicy}, true, []string{
			badPolicy + `:5:5: unknown field "colour" in route`,
			badPolicy + `:3:13: route get: method "FETCH" must be one of GET, POST, PUT, PATCH, DELETE`,
		}},
		{"bad tokens", []string{"-tokens", badTokens}, true, []string{
			badTokens + ":3:13: token a: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)",
			badTokens + `:4:15: token a: products must list product ids, or "*" for all`,
			badTokens + `:5:17: token a: operation "fly" is not a route of the policy`,
		}},
		{"missing file", []string{"-policy", filepath.Join(dir, "nope.yaml")}, true, []string{"no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"check"}, tc.args...), &out, &out, checkEnv)
			if (err != nil) != tc.wantErr {
				t.Fatalf("check %v error = %v, want error %v\n%s", tc.args, err, tc.wantErr, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("check %v output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
		})
	}
}

func TestPolicyCommandPrintsBuiltin(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"policy"}, &out, &out, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Parse("printed", out.Bytes()); err != nil {
		t.Errorf("keygate policy prints a policy that does not parse: %v", err)
	}
	if !bytes.Equal(out.Bytes(), policy.Builtin) {
		t.Error("keygate policy output differs from the built-in policy")
	}
}

func TestDemoSelftest(t *testing.T) {
	var out, logs bytes.Buffer
	err := run(context.Background(), []string{"demo", "-selftest"}, &out, &logs, nil)
	if err != nil {
		t.Fatalf("demo -selftest: %v\n%s\n%s", err, out.String(), logs.String())
	}
	if logs.Len() > 0 { // the report is the output: logs only for warnings
		t.Errorf("demo -selftest logged on stderr:\n%s", logs.String())
	}
	for _, want := range []string{"HTTP 200 {", `HTTP 500 {"message":"Server error","code":1}`, "HTTP 429 {"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

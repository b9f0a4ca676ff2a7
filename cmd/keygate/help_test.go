package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCommandLine runs every subcommand with help flags, bad flags and extra
// arguments, and checks the exit status and which stream says what.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdout     string // expected in stdout ("" : stdout must be empty)
		errContain string // expected in the error main prints on stderr
	}{
		{nil, 2, "", "no command given"},
		{[]string{"-h"}, 0, "Commands:", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"help", "check"}, 0, "usage: keygate check", ""},
		{[]string{"help", "serve"}, 0, "KEYGATE_UPSTREAM_TIMEOUT", ""},
		{[]string{"help", "nope"}, 2, "", `unknown command "nope"`},
		{[]string{"help", "a", "b"}, 2, "", "help takes one command name"},
		{[]string{"--version"}, 0, "keygate ", ""},
		{[]string{"version"}, 0, "keygate ", ""},
		{[]string{"version", "-h"}, 0, "usage: keygate version", ""},
		{[]string{"version", "extra"}, 2, "", `version takes no arguments (got "extra")`},
		{[]string{"serv"}, 2, "", `unknown command "serv" (did you mean serve?)`},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"; commands: serve, demo`},
		{[]string{"--verbose"}, 2, "", "unknown flag --verbose"},
		{[]string{"serve", "-h"}, 0, "KEYGATE_LISTEN_ADDR", ""},
		{[]string{"serve", "--help"}, 0, "KEYGATE_LISTEN_ADDR", ""},
		{[]string{"serve", "now"}, 2, "", `serve takes no arguments`},
		{[]string{"demo", "-h"}, 0, "usage: keygate demo", ""},
		{[]string{"demo", "--help"}, 0, "127.0.0.1:8080", ""},
		{[]string{"demo", "-selftst"}, 2, "", "demo: unknown flag -selftst (did you mean -selftest?)"},
		{[]string{"demo", "extra"}, 2, "", `demo: unexpected argument "extra"`},
		{[]string{"check", "-h"}, 0, "usage: keygate check", ""},
		{[]string{"check", "--help"}, 0, "-strict", ""},
		{[]string{"check", "-polcy", "x"}, 2, "", "check: unknown flag -polcy (did you mean -policy?)"},
		{[]string{"check", "extra"}, 2, "", `check: unexpected argument "extra"`},
		{[]string{"token"}, 2, "", "token needs a subcommand: add, list or revoke"},
		{[]string{"token", "-h"}, 0, "keygate token add", ""},
		{[]string{"token", "add", "--help"}, 0, "keygate token add", ""},
		{[]string{"token", "lst"}, 2, "", `token: unknown subcommand "lst" (did you mean list?)`},
		{[]string{"token", "list", "extra"}, 2, "", "token list takes no arguments"},
		{[]string{"token", "revoke"}, 2, "", "token revoke takes one argument"},
		// token add checks its flags before it needs Redis (none is configured here)
		{[]string{"token", "add", "-products", "*"}, 1, "", "-name is required"},
		{[]string{"token", "add", "-name", "a", "-products", "*", "-ttl", "1d"}, 1, "", `-ttl "1d" must be a duration such as 720h`},
		{[]string{"token", "add", "-nme", "a"}, 2, "", "token add: unknown flag -nme (did you mean -name?)"},
		{[]string{"policy", "-h"}, 0, "usage: keygate policy", ""},
		{[]string{"policy", "extra"}, 2, "", `policy takes no arguments (got "extra")`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"keygate"}, tt.args...), " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, nil)
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code = %d (%v), want %d", got, err, tt.code)
			}
			if tt.stdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.stdout)
			}
			if tt.code == 0 && stderr.Len() > 0 {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
			if tt.errContain != "" && (err == nil || !strings.Contains(err.Error(), tt.errContain)) {
				t.Errorf("error = %v, want it to contain %q", err, tt.errContain)
			}
		})
	}
}

// TestPrintErrorPrefixesEveryLine: each line of a multi-line error starts
// with "keygate: ".
func TestPrintErrorPrefixesEveryLine(t *testing.T) {
	_, err := loadConfig([]string{"KEYGATE_UPSTREAM_TIMEOUT=soon", "KEYGATE_LOG_LEVEL=loud", "KEYGATE_UPSTREAM_URL=ftp://x"}, true)
	var b bytes.Buffer
	printError(&b, err)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("printError wrote %d lines, want 3 (every problem in one run):\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "keygate: KEYGATE_") {
			t.Errorf("printError line %q, want it to start with \"keygate: KEYGATE_\"", l)
		}
	}
}

// TestServeHelpListsEveryVariable: serve -h names every variable of Config
// with its default and its meaning.
func TestServeHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, &out, &out, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range configVars() {
		if v.Meaning == "" {
			t.Errorf("%s has no meaning in varMeanings", v.Name)
			continue
		}
		def := v.Default
		if def == "" {
			def = "-"
		}
		row := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v.Name) + ` +` + regexp.QuoteMeta(def) + ` +` + regexp.QuoteMeta(strings.ReplaceAll(v.Meaning, "`", "")) + `$`)
		if !row.MatchString(out.String()) {
			t.Errorf("serve -h has no row for %s with default %q and its meaning", v.Name, def)
		}
	}
}

func TestUnknownVariablesAreWarned(t *testing.T) {
	got := unknownVars([]string{"KEYGATE_UPSTREM_TIMEOUT=1s", "KEYGATE_UPSTREAM_URL=http://x", "HOME=/root", "KEYGATE_FROBNICATE=1"})
	want := []string{
		"KEYGATE_FROBNICATE is not a keygate variable and is ignored",
		"KEYGATE_UPSTREM_TIMEOUT is not a keygate variable and is ignored (did you mean KEYGATE_UPSTREAM_TIMEOUT?)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("unknownVars = %q, want %q", got, want)
	}
}

func TestLogDurationsAsText(t *testing.T) {
	var b bytes.Buffer
	newLogger(&Config{LogLevel: "info", LogFormat: "json"}, &b).Info("x", "timeout", 20*time.Second)
	if !strings.Contains(b.String(), `"timeout":"20s"`) {
		t.Errorf("log = %s, want \"timeout\":\"20s\"", b.String())
	}
}

// TestCheckGolden: check on files with mistakes of every kind (type,
// unknown field, bad value, bad reference, indentation) reports each at its
// own line and column, in one run; warnings do not fail unless -strict.
func TestCheckGolden(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"mistakes-policy.yaml", "mistakes-tokens.yaml", "warnings-tokens.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append([]string{"KEYGATE_UPSTRAEM_URL=x"}, checkEnv...)
	var out bytes.Buffer
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-policy", "mistakes-policy.yaml", "-tokens", "mistakes-tokens.yaml"}, 1},
		{[]string{"-tokens", "warnings-tokens.yaml"}, 1}, // fetch is no route of the built-in policy
		{[]string{"-tokens", "mistakes-tokens.yaml", "-policy", ""}, 1},
	} {
		fmt.Fprintf(&out, "$ keygate check %s\n", strings.Join(c.args, " "))
		for i, a := range c.args {
			if strings.HasSuffix(a, ".yaml") {
				c.args[i] = filepath.Join(dir, a)
			}
		}
		var o bytes.Buffer
		err := run(context.Background(), append([]string{"check"}, c.args...), &o, &o, env)
		out.WriteString(strings.ReplaceAll(o.String(), dir+string(filepath.Separator), ""))
		fmt.Fprintf(&out, "exit %d\n\n", exitCode(err))
		if exitCode(err) != c.code {
			t.Errorf("check %v exit code = %d (%v), want %d", c.args, exitCode(err), err, c.code)
		}
	}
	golden := filepath.Join("testdata", "check.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("check output differs from %s (go test -run TestCheckGolden -update):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestCheckWarnings: expired tokens and unknown variables are warnings: exit
// 0, and 1 with -strict.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	doc := "tokens:\n  - name: old\n    sha256: " + strings.Repeat("ab", 32) + "\n    products: [\"*\"]\n    expires: 2021-01-01T00:00:00Z\n"
	if err := os.WriteFile(tokens, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("tokens: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"-tokens", tokens}, nil, 0, "warning: " + tokens + ": token old expired on 2021-01-01T00:00:00Z"},
		{[]string{"-tokens", tokens, "-strict"}, nil, 1, "expired on"},
		{[]string{"-tokens", empty}, nil, 0, "holds no tokens"},
		{nil, []string{"KEYGATE_UPSTREM_TIMEOUT=1s"}, 0, "(did you mean KEYGATE_UPSTREAM_TIMEOUT?)"},
		{[]string{"-strict"}, []string{"KEYGATE_UPSTREM_TIMEOUT=1s"}, 1, "KEYGATE_UPSTREM_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.args, tt.env...), " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"check"}, tt.args...), &out, &out, append(tt.env, checkEnv...))
			if exitCode(err) != tt.code {
				t.Errorf("check exit code = %d (%v), want %d\n%s", exitCode(err), err, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("check output = %q, want it to contain %q", out.String(), tt.want)
			}
		})
	}
}

// TestCheckAgreesWithServe: every misconfiguration that stops serve is
// reported by check, with the same line, and fails it.
func TestCheckAgreesWithServe(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("not a cert"), 0o600)
	cases := configErrorCases(ca)
	cases = append(cases, configErrorCase{"KEYGATE_LOG_LEVEL=info", "KEYGATE_TOKENS_FILE is required"}) // token routes, no token source
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			env := []string{tc.env}
			if !strings.HasPrefix(tc.env, "KEYGATE_UPSTREAM_URL") && tc.env != "" {
				env = append(env, "KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000")
			}
			var out bytes.Buffer
			serveErr := run(context.Background(), []string{"serve"}, &out, &out, env)
			if serveErr == nil || !strings.Contains(serveErr.Error(), tc.want) {
				t.Fatalf("serve with %q = %v, want an error with %q", tc.env, serveErr, tc.want)
			}
			out.Reset()
			checkErr := run(context.Background(), []string{"check"}, &out, &out, env)
			if exitCode(checkErr) != 1 {
				t.Errorf("check with %q exit code = %d, want 1 like serve", tc.env, exitCode(checkErr))
			}
			for _, line := range strings.Split(serveErr.Error(), "\n") {
				if !strings.Contains(out.String(), line) {
					t.Errorf("check with %q output lacks serve's %q:\n%s", tc.env, line, out.String())
				}
			}
		})
	}
}

// TestServeWarnsUnknownVariables: serve names a misspelled variable, both
// when the configuration is refused and when it starts, and warns about
// expired tokens as check does.
func TestServeWarnsUnknownVariables(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), []string{"serve"}, &out, &out, []string{"KEYGATE_UPSTREM_URL=http://127.0.0.1:3000"})
		if err == nil {
			t.Fatal("serve without KEYGATE_UPSTREAM_URL = nil error")
		}
		if want := "keygate: warning: KEYGATE_UPSTREM_URL is not a keygate variable and is ignored (did you mean KEYGATE_UPSTREAM_URL?)"; !strings.Contains(out.String(), want) {
			t.Errorf("serve stderr = %q, want %q", out.String(), want)
		}
	})
	t.Run("starting", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0") // serve stops at the listener, after its start-up warnings
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		tokens := filepath.Join(t.TempDir(), "tokens.yaml")
		doc := "tokens:\n  - name: old\n    sha256: " + strings.Repeat("ab", 32) + "\n    products: [\"*\"]\n    expires: 2021-01-01T00:00:00Z\n"
		if err := os.WriteFile(tokens, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		env := []string{"KEYGATE_LISTEN_ADDR=" + busy.Addr().String(), "KEYGATE_ADMIN_ADDR=127.0.0.1:0", "KEYGATE_UPSTREM_TIMEOUT=1s",
			"KEYGATE_TOKENS_FILE=" + tokens, "KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000"}
		if err := run(context.Background(), []string{"serve"}, &out, &out, env); err == nil {
			t.Fatal("serve on a busy address = nil error")
		}
		for _, want := range []string{
			`"msg":"KEYGATE_UPSTREM_TIMEOUT is not a keygate variable and is ignored (did you mean KEYGATE_UPSTREAM_TIMEOUT?)"`,
			`: token old expired on 2021-01-01T00:00:00Z"`,
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("serve log = %s, want %s", out.String(), want)
			}
		}
	})
}

// TestVersionFromLdflags: make build sets main.version; version and
// --version print it.
func TestVersionFromLdflags(t *testing.T) {
	old := version
	version = "v1.2.3"
	defer func() { version = old }()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &out, nil); err != nil || !strings.HasPrefix(out.String(), "keygate v1.2.3") {
			t.Errorf("keygate %s = %q, %v; want \"keygate v1.2.3 ...\"", args[0], out.String(), err)
		}
	}
}

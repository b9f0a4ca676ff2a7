package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/keygate/keygate/policy"
)

const checkUsage = `usage: keygate check [-policy FILE] [-tokens FILE] [-strict]

Runs the validation serve runs, on the same environment, without binding
ports or reaching Redis: every KEYGATE_* variable, the policy file (or the
built-in policy), the tokens file, and whether the policy's token routes have
a token source. It reports every problem in one run, a file's at
file:line:column, and exits 1 when there is one.

Warnings (printed, and fatal only with -strict): KEYGATE_* variables keygate
does not know (with the closest known name), a tokens file with no tokens, and
tokens past their expiry.

  -policy FILE   policy file (default $KEYGATE_POLICY_FILE, else the built-in policy)
  -tokens FILE   tokens file (default $KEYGATE_TOKENS_FILE)
  -strict        fail on warnings too
`

// errCheckFailed reports that check found problems; they are printed already.
var errCheckFailed = errors.New("check failed")

// check validates the configuration as serve would and prints every problem
// and warning on stdout.
func check(args []string, stdout, _ io.Writer, environ []string) error {
	m := env.ToMap(environ)
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	policyFile := fs.String("policy", m[envPrefix+"POLICY_FILE"], "")
	tokensFile := fs.String("tokens", m[envPrefix+"TOKENS_FILE"], "")
	strict := fs.Bool("strict", false, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	environ = append(environ[:len(environ):len(environ)], envPrefix+"POLICY_FILE="+*policyFile, envPrefix+"TOKENS_FILE="+*tokensFile)
	failed, warned := false, false
	report := func(err error) {
		failed = true
		fmt.Fprintln(stdout, err)
	}
	warn := func(format string, args ...any) {
		warned = true
		fmt.Fprintf(stdout, "warning: "+format+"\n", args...)
	}
	for _, w := range unknownVars(environ) {
		warn("%s", w)
	}
	cfg, err := loadConfig(environ, true)
	if err != nil {
		report(err)
	}
	pol := policy.Default()
	if *policyFile == "" {
		fmt.Fprintf(stdout, "built-in policy: ok, %d routes\n", len(pol.Routes))
	} else if p, err := policy.Load(*policyFile); err != nil {
		report(err)
		pol = nil
	} else {
		pol = p
		fmt.Fprintf(stdout, "%s: ok, %d routes\n", *policyFile, len(pol.Routes))
	}
	if *tokensFile != "" {
		if toks, err := policy.LoadTokens(*tokensFile, pol); err != nil {
			report(err)
		} else {
			fmt.Fprintf(stdout, "%s: ok, %d tokens\n", *tokensFile, toks.Len())
			for _, w := range tokenWarnings(*tokensFile, toks, time.Now()) {
				warn("%s", w)
			}
		}
	}
	if cfg != nil && pol != nil {
		if err := requireTokenSource(cfg, pol); err != nil {
			report(err)
		}
	}
	switch {
	case failed:
		return errCheckFailed
	case warned && *strict:
		return errors.New("check failed: warnings with -strict")
	}
	return nil
}

// tokenWarnings lists what is suspicious, not wrong, in a tokens file: no
// tokens at all, and tokens past their expiry.
func tokenWarnings(file string, toks *policy.Tokens, now time.Time) []string {
	if toks.Len() == 0 {
		return []string{fmt.Sprintf("%s holds no tokens: every token route answers 401 unless another token source accepts the token", file)}
	}
	var out []string
	for _, t := range toks.List {
		if t.Expired(now) {
			out = append(out, fmt.Sprintf("%s: token %s expired on %s", file, t.Name, t.ExpiresAt().UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// requireTokenSource refuses a policy with token routes and no way to check
// a token. serve and check both call it.
func requireTokenSource(cfg *Config, pol *policy.Policy) error {
	if cfg.TokensFile == "" && needsTokens(pol) && !cfg.tokenSourceConfigured() {
		return fmt.Errorf("%sTOKENS_FILE is required (or KEYGATE_TOKENS_STORE, a JWT key, KEYGATE_INTROSPECT_URL): the policy has routes with auth: token", envPrefix)
	}
	return nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/caarlos0/env/v11"

	"github.com/keygate/keygate/policy"
)

// errCheckFailed reports that check found problems; they are printed already.
var errCheckFailed = errors.New("check failed")

// check validates a policy file (or the built-in policy) and a tokens file,
// printing every problem as file:line: message.
func check(args []string, stdout io.Writer, environ []string) error {
	m := env.ToMap(environ)
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stdout)
	policyFile := fs.String("policy", m[envPrefix+"POLICY_FILE"], "policy file (default $KEYGATE_POLICY_FILE, else the built-in policy)")
	tokensFile := fs.String("tokens", m[envPrefix+"TOKENS_FILE"], "tokens file (default $KEYGATE_TOKENS_FILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	failed := false
	report := func(err error) {
		failed = true
		var fe *policy.FileError
		if errors.As(err, &fe) {
			fmt.Fprintln(stdout, fe.Error())
			return
		}
		fmt.Fprintln(stdout, err)
	}
	var pol *policy.Policy
	var err error
	if *policyFile == "" {
		pol = policy.Default()
		fmt.Fprintf(stdout, "built-in policy: ok, %d routes\n", len(pol.Routes))
	} else if pol, err = policy.Load(*policyFile); err != nil {
		report(err)
	} else {
		fmt.Fprintf(stdout, "%s: ok, %d routes\n", *policyFile, len(pol.Routes))
	}
	if *tokensFile != "" {
		if toks, err := policy.LoadTokens(*tokensFile, pol); err != nil {
			report(err)
		} else {
			fmt.Fprintf(stdout, "%s: ok, %d tokens\n", *tokensFile, toks.Len())
		}
	}
	if failed {
		return errCheckFailed
	}
	return nil
}

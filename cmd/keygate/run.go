package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/keygate/keygate/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `keygate enforces the Keymint license API contract in front of a license backend.

Usage:
  keygate serve     run the proxy; configured by KEYGATE_* environment variables
  keygate demo      run keygate in front of an embedded demo backend (no Redis, no network)
  keygate check     validate the policy and tokens files (KEYGATE_POLICY_FILE, KEYGATE_TOKENS_FILE,
                    or -policy FILE -tokens FILE); prints each problem as file:line
  keygate token     add, list or revoke tokens of the Redis token store (keygate token for help)
  keygate policy    print the built-in policy as YAML
  keygate version   print the version
`

// errUsage is returned for an unknown command; run has printed the usage.
var errUsage = errors.New("unknown command (see keygate help)")

// run dispatches a subcommand. ctx ends on SIGTERM or SIGINT.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, environ)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr, environ)
	case "check":
		return check(args[1:], stdout, environ)
	case "token":
		return tokenCmd(ctx, args[1:], stdout, stderr, environ)
	case "policy":
		_, err := stdout.Write(policy.Builtin)
		return err
	case "version":
		fmt.Fprintln(stdout, "keygate", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return errUsage
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Command keygate is a sidecar and edge proxy that enforces the Keymint
// license API's public contract in front of a license backend: access tokens,
// request validation, distributed rate limits and normalized errors.
//
// Usage:
//
//	keygate serve     run the proxy (configured by KEYGATE_* variables)
//	keygate demo      run keygate in front of an embedded demo backend
//	keygate check     validate the policy and tokens files
//	keygate policy    print the built-in policy
//	keygate version   print the version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		stop()
		os.Exit(1)
	}
}

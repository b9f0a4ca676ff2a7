// Command keygate is a sidecar and edge proxy that enforces the Keymint
// license API's public contract in front of a license backend: access tokens,
// request validation, distributed rate limits and normalized errors.
//
// Usage:
//
//	keygate serve     run the proxy (configured by KEYGATE_* variables)
//	keygate demo      run keygate in front of an embedded demo backend
//	keygate check     validate the configuration as serve would, without starting
//	keygate token     manage the tokens of the Redis token store
//	keygate policy    print the built-in policy
//	keygate version   print the version
//	keygate help      print help (keygate serve -h lists every variable)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ()); err != nil {
		printError(os.Stderr, err)
		stop()
		os.Exit(exitCode(err))
	}
}

// printError writes err on w, each of its lines prefixed with "keygate: ".
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(w, "keygate:", line)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/suggest"
	"github.com/keygate/keygate/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// command is one subcommand of keygate.
type command struct {
	name    string
	summary string // one line, for the command list
	usage   string // the command's help, after its usage line
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error
}

// commands lists keygate's subcommands in the order help prints them.
var commands []*command

func init() {
	commands = []*command{
		{"serve", "run the proxy; configured by KEYGATE_* environment variables", serveUsage,
			func(ctx context.Context, args []string, _, stderr io.Writer, environ []string) error {
				return serve(ctx, args, stderr, environ)
			}},
		{"demo", "run keygate in front of an embedded demo backend (no Redis, no network)", demoUsage, demo},
		{"check", "validate the configuration, policy and tokens files as serve would, without starting", checkUsage,
			func(_ context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
				return check(args, stdout, stderr, environ)
			}},
		{"token", "add, list or revoke tokens of the Redis token store", tokenUsage, tokenCmd},
		{"policy", "print the built-in policy as YAML", "usage: keygate policy\n\nPrints the built-in policy, a starting point for KEYGATE_POLICY_FILE.\n",
			func(_ context.Context, args []string, stdout, _ io.Writer, _ []string) error {
				if err := noArgs("policy", args); err != nil {
					return err
				}
				_, err := stdout.Write(policy.Builtin)
				return err
			}},
		{"version", "print the version and the source revision", "usage: keygate version\n",
			func(_ context.Context, args []string, stdout, _ io.Writer, _ []string) error {
				if err := noArgs("version", args); err != nil {
					return err
				}
				fmt.Fprintln(stdout, "keygate", versionString())
				return nil
			}},
		{"help", "print help about keygate or one of its commands", "usage: keygate help [command]\n", nil}, // run handles it
	}
}

// usageError is a mistake on the command line: main exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode is the exit status for run's error: 0, 1 for a failure, 2 for a
// command-line mistake.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// run dispatches a subcommand. ctx ends on SIGTERM or SIGINT. Help goes to
// stdout; errors are returned for main to print on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage())
		return usagef("no command given (see keygate help)")
	}
	name, rest := args[0], args[1:]
	switch {
	case isHelp(name):
		fmt.Fprint(stdout, mainUsage())
		return nil
	case name == "--version" || name == "-version":
		name = "version"
	case name == "help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, mainUsage())
			return nil
		}
		if len(rest) > 1 {
			return usagef("help takes one command name (got %q)", strings.Join(rest, " "))
		}
		c, err := lookup(rest[0])
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, c.help())
		return nil
	}
	c, err := lookup(name)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(rest, isHelp) {
		fmt.Fprint(stdout, c.help())
		return nil
	}
	return c.run(ctx, rest, stdout, stderr, environ)
}

// lookup finds a command by name, or explains that there is none.
func lookup(name string) (*command, error) {
	var names []string
	for _, c := range commands {
		if c.name == name {
			return c, nil
		}
		names = append(names, c.name)
	}
	if strings.HasPrefix(name, "-") {
		return nil, usagef("unknown flag %s: flags come after the command (see keygate help)", name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := suggest.Closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return nil, usagef("%s; commands: %s", msg, strings.Join(names, ", "))
}

func (c *command) help() string {
	if c.name == "serve" {
		var b strings.Builder
		b.WriteString(c.usage)
		printVars(&b)
		return b.String()
	}
	return c.usage
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString("keygate enforces the Keymint license API contract in front of a license backend.\n\nUsage:\n  keygate <command> [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s  %s\n", c.name, c.summary)
	}
	b.WriteString("\nkeygate help <command> (or keygate <command> -h) tells more; keygate --version prints the version.\n")
	return b.String()
}

// noArgs refuses arguments to a command that takes none.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q)", name, args[0])
	}
	return nil
}

// parseFlags parses a command's flags without printing anything: help is
// handled by run, and a bad flag becomes one usage error naming it.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil {
		if fs.NArg() > 0 {
			return usagef("%s: unexpected argument %q (see keygate help %s)", fs.Name(), fs.Arg(0), fs.Name())
		}
		return nil
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, "-"+f.Name) })
		msg = "unknown flag " + name
		if s := suggest.Closest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
	}
	return usagef("%s: %s (see keygate help %s)", fs.Name(), msg, strings.Fields(fs.Name())[0])
}

// versionString is the version: from -ldflags when set, else the module
// version and VCS revision Go recorded in the binary.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "devel"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if !ok {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) {
		v += fmt.Sprintf(" (revision %s%s)", rev[:min(12, len(rev))], modified)
	}
	return v + " " + bi.GoVersion
}

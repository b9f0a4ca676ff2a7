// Command imagecheck runs keygate's container image the way Kubernetes runs
// it and checks what the chart depends on. CI runs it after `make image`
// (see deploy/image/check.sh):
//
//   - the binary in the build context is static, -trimpath, version stamped,
//     with the time zone database embedded (go version -m);
//   - the image holds only the listed files, none writable, and is within the
//     size budget; its config runs /keygate serve as 65532:65532;
//   - started with a read-only root, every capability dropped and
//     no-new-privileges, the process runs as 65532 with no capabilities on a
//     read-only root (read from /proc on the host, not from the engine);
//   - a bad configuration exits 1 with its message in the container log;
//   - /readyz answers, a request goes through to a real backend, which reads
//     exactly the body the client sent;
//   - SIGTERM turns /readyz to 503 while KEYGATE_SHUTDOWN_DELAY keeps the API
//     serving, a second SIGTERM ends the delay, the in-flight request
//     finishes, and the container exits 0 within the drain timeout;
//   - the admin port's /metrics is saved for the dashboard and rules checks.
//
// Every wait has a deadline, and every container it starts is removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are imagecheck's flags.
type options struct {
	engine     string
	image      string
	binary     string
	version    string
	maxBytes   int64
	metricsOut string
	timeout    time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("imagecheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.engine, "engine", "podman", "container engine: podman or docker")
	fs.StringVar(&o.image, "image", "keygate:dev", "image to check")
	fs.StringVar(&o.binary, "binary", "", "the keygate binary of the build context (bin/image/linux-ARCH/keygate), for its build settings")
	fs.StringVar(&o.version, "version", "", "version the binary must report")
	fs.Int64Var(&o.maxBytes, "max-bytes", 20<<20, "size budget: the image's compressed layers (what a node pulls) must be smaller")
	fs.StringVar(&o.metricsOut, "metrics-out", "", "write the admin port's /metrics here")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.binary == "" || o.version == "" {
		fmt.Fprintln(stderr, "imagecheck: -binary and -version are required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := &checker{o: o, out: stdout, eng: &engine{name: o.engine, prefix: fmt.Sprintf("keygate-imagecheck-%d", os.Getpid())}}
	defer c.eng.cleanup(stdout)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"build settings of the binary", c.buildSettings},
		{"image config, files and size", c.imageContents},
		{"version, read-only and unprivileged", c.version},
		{"bad configuration exits 1 with its message", c.badConfig},
		{"serves, forwards, shuts down cleanly", c.serve},
	}
	failed := 0
	for _, s := range steps {
		fmt.Fprintf(stdout, "== %s\n", s.name)
		if err := s.fn(ctx); err != nil {
			failed++
			fmt.Fprintf(stdout, "   FAIL: %v\n", err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintln(stdout, "   ok")
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "imagecheck: %d check(s) failed\n", failed)
		return 1
	}
	fmt.Fprintln(stdout, "imagecheck: all checks passed")
	return 0
}

// checker holds what the steps share.
type checker struct {
	o   options
	out io.Writer
	eng *engine
}

func (c *checker) logf(format string, args ...any) {
	fmt.Fprintf(c.out, "   "+format+"\n", args...)
}

// buildSettings reads the build settings Go records in the binary.
func (c *checker) buildSettings(ctx context.Context) error {
	out, err := command(ctx, "go", "version", "-m", c.o.binary)
	if err != nil {
		return err
	}
	settings := parseBuildInfo(out)
	c.logf("%s: %s", filepath.Base(c.o.binary), strings.Join([]string{
		"CGO_ENABLED=" + settings["CGO_ENABLED"], "-trimpath=" + settings["-trimpath"], "-tags=" + settings["-tags"],
		"GOOS=" + settings["GOOS"], "GOARCH=" + settings["GOARCH"]}, " "))
	return checkBuildSettings(settings, c.o.version)
}

// version runs `keygate version` under the restrictions of the chart.
func (c *checker) version(ctx context.Context) error {
	out, err := c.eng.run(ctx, "version", append(restricted(), c.o.image, "version")...)
	if err != nil {
		return err
	}
	// "keygate <version>", then what the build recorded (the VCS revision,
	// the Go version): the stamp is the first word after the name.
	want := "keygate " + c.o.version
	if f := strings.Fields(out); len(f) < 2 || f[0] != "keygate" || f[1] != c.o.version {
		return fmt.Errorf("keygate version = %q, want %q followed by build details", strings.TrimSpace(out), want)
	}
	c.logf("%s", strings.TrimSpace(out))
	return nil
}

// badConfig starts serve without KEYGATE_UPSTREAM_URL: it must exit 1 and
// say why in the container log.
func (c *checker) badConfig(ctx context.Context) error {
	cname, err := c.eng.start(ctx, "bad", append(restricted(), "-e", "KEYGATE_TOKENS_FILE=/nonexistent", c.o.image)...)
	if err != nil {
		return err
	}
	code, err := c.eng.wait(ctx, cname, time.Minute)
	if err != nil {
		return err
	}
	logs, err := c.eng.logs(ctx, cname)
	if err != nil {
		return err
	}
	if code != 1 {
		return fmt.Errorf("exit code = %d, want 1; log:\n%s", code, logs)
	}
	const want = "KEYGATE_UPSTREAM_URL: is required"
	if !strings.Contains(logs, want) {
		return fmt.Errorf("log lacks %q:\n%s", want, logs)
	}
	c.logf("exit 1: %s", strings.TrimSpace(logs))
	return nil
}

// restricted are the run flags of the chart's securityContext: read-only
// root, no capabilities, no privilege escalation, the image's own user.
func restricted() []string {
	return []string{"--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges"}
}

// errStopped reports a container that ended while a check waited on it.
var errStopped = errors.New("container stopped")

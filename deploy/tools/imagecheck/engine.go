package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// engine drives podman or docker through its command line. Every container
// it starts is named after prefix and removed by cleanup.
type engine struct {
	name   string
	prefix string

	mu      sync.Mutex
	started []string
}

// command runs a program with a bound (ctx) and returns its standard output;
// a failure carries its standard error.
func command(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (e *engine) cmd(ctx context.Context, args ...string) (string, error) {
	return command(ctx, e.name, args...)
}

// run runs a container named prefix-suffix to its end and returns its
// output; cleanup removes it should the engine's client be cut short.
func (e *engine) run(ctx context.Context, suffix string, args ...string) (string, error) {
	name := e.prefix + "-" + suffix
	e.mu.Lock()
	e.started = append(e.started, name)
	e.mu.Unlock()
	return e.cmd(ctx, append([]string{"run", "--rm", "--pull=never", "--name", name}, args...)...)
}

// start starts a detached container named prefix-suffix.
func (e *engine) start(ctx context.Context, suffix string, args ...string) (string, error) {
	name := e.prefix + "-" + suffix
	e.mu.Lock()
	e.started = append(e.started, name)
	e.mu.Unlock()
	_, err := e.cmd(ctx, append([]string{"run", "-d", "--pull=never", "--name", name}, args...)...)
	return name, err
}

// wait waits at most d for the container to end and returns its exit code.
func (e *engine) wait(ctx context.Context, name string, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := e.cmd(ctx, "wait", name)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%s still running after %s", name, d)
		}
		return 0, err
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s wait %s: no exit code", e.name, name)
	}
	return strconv.Atoi(fields[len(fields)-1])
}

func (e *engine) logs(ctx context.Context, name string) (string, error) {
	// The container writes its log to stderr; the engine replays it on both.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.name, "logs", name)
	cmd.WaitDelay = 5 * time.Second
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		return b.String(), fmt.Errorf("%s logs %s: %v", e.name, name, err)
	}
	return b.String(), nil
}

// signal sends sig (TERM, KILL) to the container's main process.
func (e *engine) signal(ctx context.Context, name, sig string) error {
	_, err := e.cmd(ctx, "kill", "--signal", sig, name)
	return err
}

// inspect evaluates a Go template over the container's or image's state.
func (e *engine) inspect(ctx context.Context, name, format string) (string, error) {
	out, err := e.cmd(ctx, "inspect", "--format", format, name)
	return strings.TrimSpace(out), err
}

// hostPort is the host address published for the container's port.
func (e *engine) hostPort(ctx context.Context, name string, port int) (string, error) {
	out, err := e.cmd(ctx, "port", name, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "127.0.0.1:") {
			return line, nil
		}
	}
	return "", fmt.Errorf("%s port %s %d: no 127.0.0.1 address in %q", e.name, name, port, out)
}

// cleanup removes every container started, even after a failure or an
// interrupt (hence a fresh context).
func (e *engine) cleanup(w io.Writer) {
	e.mu.Lock()
	names := e.started
	e.started = nil
	e.mu.Unlock()
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		args := []string{"rm", "-f", name}
		if e.name == "podman" {
			args = []string{"rm", "-f", "-t", "0", name} // kill at once, no stop timeout
		}
		if _, err := e.cmd(ctx, args...); err != nil && !strings.Contains(strings.ToLower(err.Error()), "no such container") {
			fmt.Fprintf(w, "imagecheck: removing %s: %v\n", name, err)
		}
		cancel()
	}
}

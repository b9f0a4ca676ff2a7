package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The peers a user would run instead of keygate are built from their Go
// modules in a tools module of their own (cmd/keygate-bench/peers), so that
// none of their dependencies enters keygate's go.mod. The binaries are
// cached by everything that decides them, like deploy/validate.sh caches its
// tools, in a directory of their own: validate.sh prunes its cache of every
// key but its current one.

// caddyPkg is the command the peers module builds.
const caddyPkg = "github.com/caddyserver/caddy/v2/cmd/caddy"

// peersDir finds the tools module beside this command's source, from the
// main module's go.mod.
func peersDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the keygate module: run from its source tree, or give -caddy a binary")
	}
	dir := filepath.Join(filepath.Dir(gomod), "cmd", "keygate-bench", "peers")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", err
	}
	return dir, nil
}

// peersKey names the cache entry of a build: the Go version, the tools
// module's go.mod and go.sum, the build flags and the platform.
func peersKey(goVersion string, gomod, gosum []byte, flags []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s/%s\n%q\n", goVersion, runtime.GOOS, runtime.GOARCH, flags)
	h.Write(gomod)
	h.Write([]byte{0})
	h.Write(gosum)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// buildCaddy returns the cached Caddy binary of the tools module, building
// it first when the cache has none for this key. cache is the directory
// holding one subdirectory per key.
func buildCaddy(ctx context.Context, cache string, logf func(string, ...any)) (string, error) {
	dir, err := peersDir(ctx)
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	gosum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		return "", err
	}
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	flags := []string{"-trimpath", "-ldflags=-s -w"}
	key := peersKey(strings.TrimSpace(string(goVersion)), gomod, gosum, flags)
	bin := filepath.Join(cache, key, "caddy")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		logf("caddy: reusing %s", bin)
		return bin, nil
	}
	logf("caddy: building %s into %s (first run for this go.sum: a few minutes; later runs reuse it)", caddyPkg, bin)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.tmp.%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, append(flags, "-o", tmp, caddyPkg)...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w: %s", caddyPkg, err, buildError(out))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	// Entries of older keys are dead weight once go.sum moved on.
	if old, err := os.ReadDir(cache); err == nil {
		for _, e := range old {
			if e.IsDir() && e.Name() != key && len(e.Name()) == len(key) {
				_ = os.RemoveAll(filepath.Join(cache, e.Name()))
			}
		}
	}
	return bin, nil
}

// buildError is the end of go build's output without its progress lines
// ("go: downloading ..."), the first line of which says what went wrong.
func buildError(out []byte) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "go: downloading ") {
			keep = append(keep, line)
		}
	}
	return lastLines(strings.Join(keep, "\n"), 5)
}

// defaultPeersCache is where built peers are kept between runs.
func defaultPeersCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "keygate-bench-peers")
}

// caddyConfig is Caddy's JSON configuration for the benchmark: one HTTP/1.1
// server on the loopback address listen whose only route is reverse_proxy
// to backend, with a keep-alive pool as large as the pooled Go baseline's;
// no admin API, no saved config, no automatic HTTPS, no access log, and
// Caddy's own log at ERROR.
func caddyConfig(listen, backend string) ([]byte, error) {
	type obj = map[string]any
	cfg := obj{
		"admin":   obj{"disabled": true, "config": obj{"persist": false}},
		"logging": obj{"logs": obj{"default": obj{"level": "ERROR"}}},
		"apps": obj{"http": obj{"servers": obj{"bench": obj{
			"listen":          []string{listen},
			"protocols":       []string{"h1"},
			"automatic_https": obj{"disable": true},
			"routes": []obj{{"handle": []obj{{
				"handler":   "reverse_proxy",
				"upstreams": []obj{{"dial": backend}},
				"transport": obj{
					"protocol":   "http",
					"keep_alive": obj{"enabled": true, "max_idle_conns": 1024, "max_idle_conns_per_host": 1024},
				},
			}}}},
		}}}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// startCaddy runs `caddy run` with caddyConfig, its state directories
// inside the work directory.
func (ps *procs) startCaddy(dir, bin, backend string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cdir := filepath.Join(dir, "caddy")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, "", err
	}
	cfg, err := caddyConfig(addr, backend)
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(cdir, "caddy.json")
	if err := os.WriteFile(conf, cfg, 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "run", "--config", conf)
	cmd.Env = append(baseEnv(), "HOME="+cdir, "XDG_CONFIG_HOME="+filepath.Join(cdir, "config"), "XDG_DATA_HOME="+filepath.Join(cdir, "data"))
	p, err := ps.start("caddy", filepath.Join(dir, "caddy.log"), cmd)
	if err != nil {
		return nil, "", err
	}
	return p, addr, waitTCP(p, addr)
}

// caddyVersion is the version of Caddy's module the binary was built from,
// such as "v2.11.9", from its build information (`caddy version` says
// "unknown" for a build outside Caddy's own module).
func caddyVersion(bin string) string {
	out, err := exec.Command(bin, "build-info").Output()
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == "github.com/caddyserver/caddy/v2" {
			return f[2]
		}
	}
	return "?"
}

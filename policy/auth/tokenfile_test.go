package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// writeFile replaces path atomically, as a Kubernetes Secret volume does, so
// a concurrent reload never reads half a file.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func sha(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// fileTokensDoc is a valid tokens file of four tokens.
var fileTokensDoc = `tokens:
  - {name: admin, sha256: ` + sha("admin-secret") + `, products: ["*"]}
  - {name: shop, sha256: ` + strings.ToUpper(sha("shop-secret")) + `, products: [prd_abcdefghijklmnopqrst]}
  - {name: activator, sha256: ` + sha("activator-secret") + `, products: ["*"], operations: [activate, deactivate]}
  - {name: trial, sha256: ` + sha("trial-secret") + `, products: [prd_abcdefghijklmnopqrst], expires: 2027-01-01T00:00:00Z}
`

// getKeyPolicy is a policy with a route named get-key, which the built-in
// policy lacks (its routes are get, activate, ...).
func getKeyPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("get-key policy", []byte("routes:\n  - {name: get-key, method: POST, path: /v2/get-key}\n"))
	if err != nil {
		t.Fatalf("Parse(get-key policy) = %v", err)
	}
	return p
}

func oneToken(name, secret string) string {
	return "tokens:\n  - name: " + name + "\n    sha256: " + sha(secret) + "\n    products: [\"*\"]\n"
}

func TestOpenTokenFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenTokenFile(filepath.Join(dir, "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenTokenFile(missing) = %v, want os.ErrNotExist", err)
	}
	broken := filepath.Join(dir, "broken.yaml")
	writeFile(t, broken, "tokens:\n  - name: a\n")
	_, err := OpenTokenFile(broken, nil)
	var fe *policy.FileError
	if !errors.As(err, &fe) || fe.File != broken {
		t.Errorf("OpenTokenFile(broken) = %v, want a *FileError for %s", err, broken)
	}
	good := filepath.Join(dir, "tokens.yaml")
	writeFile(t, good, fileTokensDoc)
	f, err := OpenTokenFile(good, policy.Default())
	if err != nil {
		t.Fatalf("OpenTokenFile(good) = %v", err)
	}
	if f.Path() != good || f.Len() != 4 || f.Lookup("shop-secret") == nil {
		t.Errorf("OpenTokenFile(good) = path %q, %d tokens, shop %v; want %q, 4, found", f.Path(), f.Len(), f.Lookup("shop-secret"), good)
	}
	// Operations are checked against the policy given.
	writeFile(t, good, "tokens:\n  - {name: a, sha256: "+sha("a")+", products: [\"*\"], operations: [get-key]}\n")
	if _, err := OpenTokenFile(good, policy.Default()); err == nil {
		t.Errorf("OpenTokenFile(operation get-key, built-in policy) = nil error, want one")
	}
	if _, err := OpenTokenFile(good, getKeyPolicy(t)); err != nil {
		t.Errorf("OpenTokenFile(operation get-key, a policy with get-key) = %v, want no error", err)
	}
}

func TestTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, path, oneToken("first", "one"))
	f, err := OpenTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	known := func(secret string) bool { return f.Lookup(secret) != nil }

	if changed, err := f.Reload(); changed || err != nil {
		t.Errorf("Reload(same file) = %v, %v; want false, nil", changed, err)
	}

	writeFile(t, path, "tokens:\n  - name: first\n    sha256: nope\n")
	changed, err := f.Reload()
	if changed || err == nil {
		t.Errorf("Reload(broken file) = %v, %v; want false and an error", changed, err)
	}
	if !known("one") || f.Len() != 1 {
		t.Errorf("after a broken reload: Lookup(one) = %v, Len = %d; want the last good set", known("one"), f.Len())
	}
	if changed, err := f.Reload(); changed || err == nil {
		t.Errorf("Reload(still broken) = %v, %v; want false and an error again", changed, err)
	}

	writeFile(t, path, oneToken("second", "two")+"  - name: third\n    sha256: "+sha("three")+"\n    products: [\"*\"]\n")
	if changed, err := f.Reload(); !changed || err != nil {
		t.Errorf("Reload(changed file) = %v, %v; want true, nil", changed, err)
	}
	if known("one") || !known("two") || !known("three") || f.Len() != 2 {
		t.Errorf("after a good reload: one %v, two %v, three %v, Len %d; want false, true, true, 2", known("one"), known("two"), known("three"), f.Len())
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Reload(); changed || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload(removed file) = %v, %v; want false, os.ErrNotExist", changed, err)
	}
	if !known("two") {
		t.Errorf("after the file went away: Lookup(two) = nil, want the last good set")
	}
}

func TestTokenFileWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, path, oneToken("first", "one"))
	f, err := OpenTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	type report struct {
		changed bool
		err     error
	}
	reports := make(chan report, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		f.Watch(ctx, 5*time.Millisecond, func(changed bool, err error) {
			select {
			case reports <- report{changed, err}:
			default: // a broken file is reported at every tick; keep the first few
			}
		})
		close(done)
	}()
	next := func() report {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("Watch reported nothing within 5s")
			return report{}
		}
	}

	writeFile(t, path, oneToken("second", "two"))
	if r := next(); !r.changed || r.err != nil {
		t.Errorf("Watch report after a change = %v, %v; want true, nil", r.changed, r.err)
	}
	if f.Lookup("two") == nil || f.Lookup("one") != nil {
		t.Errorf("after Watch reloaded: two found %v, one found %v; want true, false", f.Lookup("two") != nil, f.Lookup("one") != nil)
	}
	writeFile(t, path, "tokens: [\n")
	if r := next(); r.changed || r.err == nil {
		t.Errorf("Watch report after a broken write = %v, %v; want false and an error", r.changed, r.err)
	}
	if f.Lookup("two") == nil {
		t.Errorf("after a broken write: Lookup(two) = nil, want the last good set")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// TestTokenFileConcurrent looks tokens up while the file is reloaded; run it
// with -race.
func TestTokenFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, path, oneToken("a", "shared")+"  - {name: b, sha256: "+sha("b")+", products: [\"*\"]}\n")
	f, err := OpenTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if f.Lookup("shared") == nil {
					t.Error("Lookup(shared) = nil during reloads, want it in every set")
					return
				}
				_ = f.Len()
			}
		})
	}
	for i := range 50 {
		if i%2 == 0 {
			writeFile(t, path, oneToken("a", "shared"))
		} else {
			writeFile(t, path, oneToken("a", "shared")+"  - {name: b, sha256: "+sha("b")+", products: [\"*\"]}\n")
		}
		if _, err := f.Reload(); err != nil {
			t.Fatalf("Reload #%d = %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}

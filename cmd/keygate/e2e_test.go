package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
)

// TestServeBlackBox sends valid, invalid and unauthorized requests to all six
// routes of a misbehaving legacy backend and finds no answer outside the
// contract.
func TestServeBlackBox(t *testing.T) {
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "good-token")
	// each request comes from its own client address, so the built-in
	// guessing limits do not turn the run into a wall of 429s
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_UPSTREAM_TIMEOUT=500ms",
		"KEYGATE_TRUSTED_PROXIES=127.0.0.1")

	p := backend.ProductID
	keys := []string{backend.LicenseKey, backend.ExpiredKey, backend.BlockedKey, backend.InactiveKey, backend.FullKey,
		backend.HTMLErrorKey, backend.ForeignJSONKey, backend.PlainTextKey, backend.RedirectKey, resetKey, hangKey,
		"DEMO-UNKNOWN-000-0000-0000-0001"}
	bodies := map[string][]string{}
	for _, k := range keys {
		kb := fmt.Sprintf(`{"productId":%q,"licenseKey":%q`, p, k)
		bodies["/get-key"] = append(bodies["/get-key"], kb+`}`)
		bodies["/activate-key"] = append(bodies["/activate-key"], kb+`,"hostId":"bb-host"}`)
		bodies["/deactivate-key"] = append(bodies["/deactivate-key"], kb+`,"hostId":"bb-host"}`, kb+`}`)
		bodies["/block-key"] = append(bodies["/block-key"], kb+`}`)
		bodies["/unblock-key"] = append(bodies["/unblock-key"], kb+`}`)
	}
	bodies["/create-key"] = []string{
		fmt.Sprintf(`{"productId":%q}`, p),
		fmt.Sprintf(`{"productId":%q,"maxActivations":"3","expiryDate":"2030-01-01"}`, p),
		fmt.Sprintf(`{"productId":%q,"customerId":"cust_missing"}`, p),
		fmt.Sprintf(`{"productId":%q,"newCustomer":{"name":"Bo","email":"ada@example.com"}}`, p),
		fmt.Sprintf(`{"productId":%q,"newCustomer":{"email":"x@example.com"}}`, p),
		fmt.Sprintf(`{"productId":%q,"maxActivations":3}`, p),
	}
	invalid := []string{``, `{}`, `[]`, `{"productId":1}`, `{"productId":"short","licenseKey":"short"}`, "{\"productId\":\"\xff\"}", `nul`}

	seen := map[int]int{}
	client := 0
	check := func(path, token, body string) {
		client++
		r := post(t, kg.api, path, token, body, "X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", client/250, client%250+1))
		seen[r.status]++
		if problem := inContract(r); problem != "" {
			t.Errorf("POST %s %s (token %q): %s", path, body, token, problem)
		}
	}
	for path, bs := range bodies {
		for _, b := range bs {
			check(path, "good-token", b)
			check(path, "", b)
			check(path, "wrong-token", b)
		}
		for _, b := range invalid {
			check(path, "good-token", b)
		}
	}
	check("/unknown", "good-token", `{}`)
	for _, st := range []int{200, 400, 401, 403, 404, 409, 500} {
		if seen[st] == 0 {
			t.Errorf("no answer with status %d: the black box did not cover it (seen %v)", st, seen)
		}
	}
}

func TestServeTokensReload(t *testing.T) {
	up := legacyBackend(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_TOKENS_RELOAD_INTERVAL=100ms")
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)

	if r := post(t, kg.api, "/get-key", "beta", body); r.status != 401 {
		t.Fatalf("beta before reload = %d, want 401", r.status)
	}
	writeTokens(t, tokens, "alpha", "beta")
	waitFor(t, "beta accepted after the file changed", func() bool { return post(t, kg.api, "/get-key", "beta", body).status == 200 })

	writeAtomic(t, tokens, "tokens:\n  - name: broken\n    sha256: nothex\n")
	waitFor(t, "the broken file is logged", func() bool { return strings.Contains(kg.logs(), "tokens reload failed") })
	if r := post(t, kg.api, "/get-key", "beta", body); r.status != 200 {
		t.Errorf("beta after a broken file = %d, want 200: the last good set stays", r.status)
	}
}

func TestServeReloadOnSIGHUP(t *testing.T) {
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_TOKENS_RELOAD_INTERVAL=1h")
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)
	writeTokens(t, tokens, "gamma")
	if r := post(t, kg.api, "/get-key", "gamma", body); r.status != 401 {
		t.Fatalf("gamma before SIGHUP = %d, want 401 (the poll interval is an hour)", r.status)
	}
	kg.signal(t, syscall.SIGHUP)
	waitFor(t, "gamma accepted after SIGHUP", func() bool { return post(t, kg.api, "/get-key", "gamma", body).status == 200 })
	if r := post(t, kg.api, "/get-key", "alpha", body); r.status != 401 {
		t.Errorf("alpha after reload = %d, want 401 (removed)", r.status)
	}
}

func TestServeDrainsOnSIGTERM(t *testing.T) {
	up, _, arrived, release := legacyBackendHeld(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens)
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, heldKey)

	got := make(chan reply, 1)
	failed := make(chan error, 1)
	go func() {
		r, err := send(kg.api, "/get-key", "alpha", body)
		if err != nil {
			failed <- err
			return
		}
		got <- r
	}()
	<-arrived // the request is now in flight, held by the backend
	kg.signal(t, syscall.SIGTERM)
	waitFor(t, "readyz fails after SIGTERM", func() bool {
		resp, err := http.Get("http://" + kg.admin + "/readyz")
		if err != nil {
			return true // not serving readiness any more counts as not ready
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	release() // keygate is draining: only now may the in-flight request finish
	var r reply
	select {
	case r = <-got:
	case err := <-failed:
		t.Fatalf("in-flight request: %v, want an answer during the drain", err)
	}
	if r.status != 200 || r.code == nil || *r.code != 0 {
		t.Errorf("in-flight request = %d %s, want 200: it must finish during the drain", r.status, r.raw)
	}
	select {
	case err := <-kg.done:
		if err != nil {
			t.Errorf("keygate exit = %v, want 0", err)
		}
		kg.done <- err // for cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("keygate did not exit after draining")
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	cmd := exec.Command(keygateBin, "serve")
	cmd.Env = []string{"KEYGATE_UPSTREAM_URL=http://127.0.0.1:1", "KEYGATE_UPSTREAM_TIMEOUT=fast"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("keygate serve with a bad value: err %v, want exit 1", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "KEYGATE_UPSTREAM_TIMEOUT") {
		t.Errorf("output = %q, want one line naming KEYGATE_UPSTREAM_TIMEOUT", out)
	}
}

func TestServeNeedsTokensForTokenRoutes(t *testing.T) {
	cmd := exec.Command(keygateBin, "serve")
	cmd.Env = []string{"KEYGATE_UPSTREAM_URL=http://127.0.0.1:1"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "KEYGATE_TOKENS_FILE is required") {
		t.Errorf("keygate serve without tokens: err %v, output %q; want exit 1 naming KEYGATE_TOKENS_FILE", err, out)
	}

}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting: %s", what)
}

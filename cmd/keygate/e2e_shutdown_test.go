package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
)

// TestServeShutdownDelayKeepsServing checks KEYGATE_SHUTDOWN_DELAY: after
// SIGTERM, /readyz fails at once but new requests are still answered, as
// endpoints and load balancers may still send them, and kept-alive
// connections are told to close; a second SIGTERM ends the
// delay, and keygate drains and exits 0. The delay is five minutes (the most
// allowed), so only the second signal can end it within the test.
func TestServeShutdownDelayKeepsServing(t *testing.T) {
	up := legacyBackend(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, tokens, "alpha")
	kg := startKeygate(t, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKENS_FILE="+tokens, "KEYGATE_SHUTDOWN_DELAY=5m")
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.LicenseKey)

	// A client that keeps its connection open across the SIGTERM.
	kept := &http.Client{Transport: &http.Transport{}}
	defer kept.CloseIdleConnections()
	if status, closing, err := keptPost(kept, kg.api, body); err != nil || status != 200 || closing {
		t.Fatalf("POST /get-key before SIGTERM = %d (Connection: close %v), %v; want 200 on a kept-alive connection", status, closing, err)
	}

	kg.signal(t, syscall.SIGTERM)
	waitFor(t, "readyz fails after SIGTERM", func() bool {
		resp, err := http.Get("http://" + kg.admin + "/readyz")
		if err != nil {
			return false // the admin server must stay up during the delay
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	// A new connection, as from a load balancer that has not yet seen the
	// endpoint go.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+kg.api+"/get-key", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer alpha")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /get-key during the shutdown delay: %v, want an answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /get-key during the shutdown delay = %d, want 200", resp.StatusCode)
	}

	// The kept connection is told to close, so its client reconnects
	// elsewhere rather than wait for the drain.
	if status, closing, err := keptPost(kept, kg.api, body); err != nil || status != 200 || !closing {
		t.Errorf("POST /get-key on a kept-alive connection during the shutdown delay = %d (Connection: close %v), %v; want 200 with Connection: close", status, closing, err)
	}

	kg.signal(t, syscall.SIGTERM)
	select {
	case err := <-kg.done:
		if err != nil {
			t.Errorf("keygate exit = %v, want 0", err)
		}
		kg.done <- err // for cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("keygate did not exit after the second SIGTERM")
	}
	if logs := kg.logs(); !strings.Contains(logs, "shutdown delay cut short") {
		t.Errorf("logs lack %q:\n%s", "shutdown delay cut short", logs)
	}
}

// keptPost posts body to /get-key with token alpha through client and
// returns the status and whether the server asked to close the connection.
func keptPost(client *http.Client, api, body string) (status int, closing bool, err error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/get-key", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer alpha")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close, nil
}

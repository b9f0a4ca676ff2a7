package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/internal/redistest"
)

// TestServeWithTokenSources: one keygate with the Redis token store, a JWT
// secret and a fixed upstream credential. Tokens issued by "keygate token
// add" pass until "keygate token revoke", within KEYGATE_TOKENS_CACHE_TTL;
// JWTs pass when signed; the backend only ever sees the fixed credential;
// a hung Redis gives 500, not 401.
func TestServeWithTokenSources(t *testing.T) {
	rs := redistest.Start(t)
	demo := backend.New()
	var mu sync.Mutex
	var upstreamAuth []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamAuth = append(upstreamAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		demo.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	secret := strings.Repeat("s", 32)
	env := []string{"KEYGATE_REDIS_URL=" + rs.URL(), "KEYGATE_TOKENS_STORE=true", "KEYGATE_TOKENS_CACHE_TTL=300ms"}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "add", "-name", "shop", "-products", backend.ProductID, "-operations", "activate,get"}, &out, &errOut, env); err != nil {
		t.Fatalf("token add: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "kg_") || !strings.Contains(errOut.String(), "never shown again") {
		t.Fatalf("token add printed %q / %q", out.String(), errOut.String())
	}
	kg := startKeygate(t, append(env, "KEYGATE_UPSTREAM_URL="+up.URL, "KEYGATE_TOKEN_ISSUERS=https://idp/",
		"KEYGATE_TOKEN_AUDIENCES=keygate", "KEYGATE_JWT_SECRET="+secret, "KEYGATE_UPSTREAM_AUTH=Bearer backend-key",
		"KEYGATE_REDIS_TIMEOUT=100ms")...)

	body := activation(backend.LicenseKey, "host-a")
	if r := post(t, kg.api, "/activate-key", token, body); r.status != 200 {
		t.Fatalf("store token: %d %s", r.status, r.raw)
	}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(fmt.Sprintf(
		`{"iss":"https://idp/","aud":"keygate","sub":"svc","exp":%d,"products":[%q]}`, time.Now().Add(time.Hour).Unix(), backend.ProductID)))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(input))
	jwt := input + "." + enc(m.Sum(nil))
	if r := post(t, kg.api, "/activate-key", jwt, body); r.status != 200 {
		t.Fatalf("JWT: %d %s", r.status, r.raw)
	}
	if r := post(t, kg.api, "/activate-key", jwt[:len(jwt)-2]+"AA", body); r.status != 401 {
		t.Fatalf("tampered JWT: %d %s", r.status, r.raw)
	}
	mu.Lock()
	for _, a := range upstreamAuth {
		if a != "Bearer backend-key" {
			t.Errorf("backend saw Authorization %q, want the fixed credential", a)
		}
	}
	mu.Unlock()

	out.Reset()
	if err := run(context.Background(), []string{"token", "list"}, &out, &errOut, env); err != nil || !strings.Contains(out.String(), "shop") {
		t.Fatalf("token list: %v\n%s", err, out.String())
	}
	t.Logf("keygate token list:\n%s", out.String())
	if err := run(context.Background(), []string{"token", "revoke", "shop"}, &out, &errOut, env); err != nil {
		t.Fatalf("token revoke: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"token", "revoke", "shop"}, &out, &errOut, env); err != nil || !strings.Contains(out.String(), "shop (sha256 ") || !strings.Contains(out.String(), "was already revoked on ") {
		t.Errorf("token revoke of a revoked token = %v, %q; want no error and \"was already revoked on\"", err, out.String())
	}
	revoked := time.Now()
	for post(t, kg.api, "/activate-key", token, body).status != 401 {
		if time.Since(revoked) > 2*time.Second {
			t.Fatal("revoked token still accepted 2s after revocation (TTL 300ms)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation took effect after %v", time.Since(revoked).Round(time.Millisecond))

	rs.Pause()
	defer rs.Resume()
	fresh := "kg_" + strings.Repeat("A", 48) // malformed: refused without Redis
	if r := post(t, kg.api, "/activate-key", fresh, body); r.status != 401 {
		t.Errorf("malformed store token with Redis hung: %d, want 401", r.status)
	}
	// A well-formed unknown token needs Redis: 500, the client should retry.
	unknown := strings.TrimSpace(func() string {
		rs.Resume()
		var o, e bytes.Buffer
		if err := run(context.Background(), []string{"token", "add", "-name", "later", "-products", "*"}, &o, &e, env); err != nil {
			t.Fatal(err)
		}
		rs.Pause()
		return o.String()
	}())
	if r := post(t, kg.api, "/activate-key", unknown, body); r.status != 500 || *r.code != 1 {
		t.Errorf("store token with Redis hung: %d %s, want 500 code 1", r.status, r.raw)
	}
	// the log line travels through a pipe: it may land a moment after the answer
	waitFor(t, `an "unavailable" rejection in the log`, func() bool { return strings.Contains(kg.logs(), `"reason":"unavailable"`) })
}

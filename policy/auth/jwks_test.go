package auth

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// newJWKSSource returns a JWT source backed by a JWKS at srv, both on c.
func newJWKSSource(t *testing.T, c *fakeClock, srv *jwksServer, cfg JWKSConfig) (*JWT, *JWKS) {
	t.Helper()
	cfg.URL = srv.URL
	ks, err := NewJWKS(cfg)
	if err != nil {
		t.Fatalf("NewJWKS: %v", err)
	}
	ks.now = c.Now
	return newTestJWT(t, c, JWTConfig{JWKS: ks}), ks
}

func wantAuth(t *testing.T, j Source, token, want string) {
	t.Helper()
	tok, reason, err := j.Authenticate(context.Background(), token)
	if reason != want || (want == "") != (tok != nil) || (want == ReasonUnavailable) != (err != nil) {
		t.Fatalf("Authenticate = %v, %q, %v; want reason %q", tok, reason, err, want)
	}
}

func wantRequests(t *testing.T, srv *jwksServer, want int64) {
	t.Helper()
	if got := srv.requests.Load(); got != want {
		t.Fatalf("JWKS requests = %d, want %d", got, want)
	}
}

func TestJWKSRotation(t *testing.T) {
	k1, k2, k3 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	srv := newJWKSServer(t, publicJWK(t, "k1", "ES256", k1))
	c := newClock()
	j, _ := newJWKSSource(t, c, srv, JWKSConfig{})
	tok := func(kid string, key any) string {
		return signJWT(t, "ES256", key, map[string]any{"kid": kid}, claimsAt(c, nil))
	}

	wantAuth(t, j, tok("k1", k1), "")
	wantAuth(t, j, tok("k1", k1), "")
	wantRequests(t, srv, 1) // fetched once, then cached

	srv.set(http.StatusOK, publicJWK(t, "k2", "ES256", k2)) // rotation: k1 out, k2 in
	// Within MinRefetch of the first fetch k2 cannot be looked for: it may
	// be a key published since, so the answer is unavailable (500), never
	// unknown (401, "drop this token").
	wantAuth(t, j, tok("k2", k2), ReasonUnavailable)
	wantRequests(t, srv, 1)

	c.Add(DefaultJWKSMinRefetch)
	wantAuth(t, j, tok("k2", k2), "") // unknown kid: refetched at once
	wantRequests(t, srv, 2)
	wantAuth(t, j, tok("k1", k1), ReasonUnknownKey) // the old kid is gone
	wantRequests(t, srv, 2)

	// A flood of made-up kids costs at most one fetch per MinRefetch: the
	// first is looked for and found missing; the others, which nobody has
	// looked for, cannot be checked until the next fetch is allowed.
	c.Add(DefaultJWKSMinRefetch)
	for i := range 50 {
		want := ReasonUnavailable
		if i == 0 {
			want = ReasonUnknownKey
		}
		wantAuth(t, j, tok(fmt.Sprintf("made-up-%d", i), k1), want)
	}
	wantRequests(t, srv, 3)
	// Kids a fetch found missing are refused as unknown without a fetch.
	wantAuth(t, j, tok("made-up-0", k1), ReasonUnknownKey)
	wantAuth(t, j, tok("k1", k1), ReasonUnknownKey)
	wantRequests(t, srv, 3)

	// Concurrent tokens with a new kid share one fetch and all pass.
	srv.set(http.StatusOK, publicJWK(t, "k2", "ES256", k2), publicJWK(t, "k3", "ES256", k3))
	c.Add(DefaultJWKSMinRefetch)
	token3 := tok("k3", k3)
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			if got, reason, err := j.Authenticate(context.Background(), token3); got == nil {
				errs <- fmt.Sprintf("%q %v", reason, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Authenticate(k3) = %s, want accepted", e)
	}
	wantRequests(t, srv, 4)
}

func TestJWKSKeepsLastGoodKeys(t *testing.T) {
	k1 := ecKey(t, elliptic.P256())
	s := newJWKSServer(t, publicJWK(t, "k1", "", k1))
	c := newClock()
	var logs syncBuffer
	j, ks := newJWKSSource(t, c, s, JWKSConfig{MaxBytes: 4096, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	token1 := signJWT(t, "ES256", k1, map[string]any{"kid": "k1"}, claimsAt(c, map[string]any{"exp": c.Now().Unix() + 36000}))
	wantAuth(t, j, token1, "")

	for i, broken := range []func(){
		func() { s.set(http.StatusInternalServerError) },
		func() { s.set(http.StatusOK) }, // no keys
		func() { s.mu.Lock(); s.body = []byte("<html>oops</html>"); s.mu.Unlock() },
		func() { s.mu.Lock(); s.body = bytes.Repeat([]byte(" "), 5000); s.mu.Unlock() }, // over MaxBytes
		func() { s.Close() }, // connection refused
	} {
		broken()
		c.Add(DefaultJWKSRefresh) // stale: a background refresh starts, and fails
		wantAuth(t, j, token1, "")
		waitFor(t, func() bool { ks.mu.Lock(); defer ks.mu.Unlock(); return ks.lastErr != nil })
		wantAuth(t, j, token1, "") // the last good keys still serve
		if ks.Len() != 1 {
			t.Fatalf("case %d: Len = %d, want the 1 last good key", i, ks.Len())
		}
		if i < 4 {
			wantRequests(t, s, int64(i+2)) // one refresh per case, none per request
		}
		ks.mu.Lock()
		ks.lastErr = nil
		ks.mu.Unlock()
		s.mu.Lock()
		s.body = nil
		s.mu.Unlock()
	}
	if !strings.Contains(logs.String(), "JWKS fetch failed; keeping the last good keys") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}

func TestJWKSUnavailable(t *testing.T) {
	k1 := ecKey(t, elliptic.P256())
	srv := newJWKSServer(t)
	srv.set(http.StatusServiceUnavailable)
	c := newClock()
	j, ks := newJWKSSource(t, c, srv, JWKSConfig{})
	token := signJWT(t, "ES256", k1, map[string]any{"kid": "k1"}, claimsAt(c, nil))
	wantAuth(t, j, token, ReasonUnavailable)
	wantAuth(t, j, token, ReasonUnavailable) // answered at once, without a request
	wantRequests(t, srv, 1)
	if err := ks.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Refresh = %v, want the last failure (status 503)", err)
	}

	srv.set(http.StatusOK, publicJWK(t, "k1", "ES256", k1))
	c.Add(DefaultJWKSMinRefetch)
	wantAuth(t, j, token, "")
	wantRequests(t, srv, 2)

	// HMAC tokens never touch a JWKS; with no secret they are refused.
	wantAuth(t, j, signJWT(t, "HS256", testSecret, map[string]any{"kid": "k1"}, claimsAt(c, nil)), ReasonBadAlg)
	// A kid of an EC key with alg RS256: the key type decides, not the header.
	rk, _ := rsaKeys(t)
	wantAuth(t, j, signJWT(t, "RS256", rk, map[string]any{"kid": "k1"}, claimsAt(c, nil)), ReasonBadAlg)
	wantRequests(t, srv, 2)
}

func TestJWKSTimeout(t *testing.T) {
	srv := newJWKSServer(t, publicJWK(t, "k1", "", ecKey(t, elliptic.P256())))
	srv.mu.Lock()
	srv.delay = 5 * time.Second
	srv.mu.Unlock()
	c := newClock()
	j, _ := newJWKSSource(t, c, srv, JWKSConfig{Timeout: 100 * time.Millisecond})
	start := time.Now()
	wantAuth(t, j, signJWT(t, "ES256", ecKey(t, elliptic.P256()), map[string]any{"kid": "k1"}, claimsAt(c, nil)), ReasonUnavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Authenticate took %v with a 100ms JWKS timeout", d)
	}
}

func TestJWKSEveryFamily(t *testing.T) {
	rk, _ := rsaKeys(t)
	p384, ed := ecKey(t, elliptic.P384()), edKey(t)
	srv := newJWKSServer(t, publicJWK(t, "r", "", rk), publicJWK(t, "e", "ES384", p384), publicJWK(t, "d", "EdDSA", ed))
	c := newClock()
	j, _ := newJWKSSource(t, c, srv, JWKSConfig{})
	for _, tc := range []struct {
		alg, kid string
		key      any
	}{{"RS256", "r", rk}, {"PS384", "r", rk}, {"ES384", "e", p384}, {"EdDSA", "d", ed}, {"Ed25519", "d", ed}, {"ES384", "", p384}} {
		wantAuth(t, j, signJWT(t, tc.alg, tc.key, map[string]any{"kid": tc.kid}, claimsAt(c, nil)), "")
	}
	wantRequests(t, srv, 1)
}

func TestNewJWKSErrors(t *testing.T) {
	for _, cfg := range []JWKSConfig{{}, {URL: "ftp://x/"}, {URL: "https://"}, {URL: "https://idp/", Timeout: -1}} {
		if _, err := NewJWKS(cfg); err == nil {
			t.Errorf("NewJWKS(%+v) = nil error", cfg)
		}
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

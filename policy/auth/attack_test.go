package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// malleate returns token with its ECDSA signature (R, S) replaced by
// (R, n-S): the same signature of the same claims, spelled differently.
func malleate(t *testing.T, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := b64.DecodeString(token[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	curve := map[int]elliptic.Curve{64: elliptic.P256(), 96: elliptic.P384(), 132: elliptic.P521()}[len(sig)]
	if curve == nil {
		t.Fatalf("malleate: %d-byte signature is not ECDSA", len(sig))
	}
	size := len(sig) / 2
	s := new(big.Int).SetBytes(sig[size:])
	s.Sub(curve.Params().N, s)
	out := append([]byte(nil), sig...)
	s.FillBytes(out[size:])
	return token[:i+1] + enc(out)
}

func TestJWTMalleatedECDSA(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		alg := map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[curve]
		t.Run(alg, func(t *testing.T) {
			key := ecKey(t, curve)
			c := newClock()
			token := signJWT(t, alg, key, nil, claimsAt(c, nil))
			twin := malleate(t, token)

			// By default both spellings verify, as one token: one identity.
			lax := newTestJWT(t, c, JWTConfig{PublicKeys: []*Key{publicKey(t, key)}})
			first, reason, err := lax.Authenticate(context.Background(), token)
			if first == nil {
				t.Fatalf("Authenticate(low-S token) = nil, %q, %v; want a token", reason, err)
			}
			second, reason, err := lax.Authenticate(context.Background(), twin)
			if second == nil {
				t.Fatalf("Authenticate(high-S twin) = nil, %q, %v; want a token (RequireLowS is off)", reason, err)
			}
			if first.Identity() == "" || first.Identity() != second.Identity() {
				t.Errorf("identities %q and %q, want one, shared by both spellings", first.Identity(), second.Identity())
			}

			// With RequireLowS the twin is refused.
			strict := newTestJWT(t, c, JWTConfig{PublicKeys: []*Key{publicKey(t, key)}, RequireLowS: true})
			if tok, reason, err := strict.Authenticate(context.Background(), token); tok == nil {
				t.Fatalf("Authenticate(low-S token, RequireLowS) = nil, %q, %v; want a token", reason, err)
			}
			if tok, reason, err := strict.Authenticate(context.Background(), twin); tok != nil || reason != ReasonMalformed || err != nil {
				t.Errorf("Authenticate(high-S twin, RequireLowS) = %v, %q, %v; want nil, %q, nil", tok, reason, err, ReasonMalformed)
			}
		})
	}
}

func TestEd25519KeysOfSmallOrderOrNotCanonical(t *testing.T) {
	good := edKey(t)
	for _, tc := range []struct {
		name, x string // hex, little endian
		ok      bool
	}{
		{"identity", "0100000000000000000000000000000000000000000000000000000000000000", false},
		{"identity, sign bit", "0100000000000000000000000000000000000000000000000000000000000080", false},
		{"order 2", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"order 4", "0000000000000000000000000000000000000000000000000000000000000000", false},
		{"order 4, sign bit", "0000000000000000000000000000000000000000000000000000000000000080", false},
		{"order 8 a", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", false},
		{"order 8 a, sign bit", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", false},
		{"order 8 b", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", false},
		{"order 8 b, sign bit", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", false},
		{"y = p", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"y = p+1 (the identity again)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"y = 2^255-1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
		{"a real key", hex.EncodeToString(good.Public().(ed25519.PublicKey)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := hex.DecodeString(tc.x)
			if err != nil {
				t.Fatal(err)
			}
			doc := `{"kty":"OKP","crv":"Ed25519","kid":"k","x":"` + enc(x) + `"}`
			if _, err := parseJWK([]byte(doc)); (err == nil) != tc.ok {
				t.Errorf("parseJWK(%s) error = %v, want ok %v", tc.name, err, tc.ok)
			}
		})
	}
}

// TestJWKSIdentityKeyForgesNothing serves the identity point as an Ed25519
// key: with it loaded, the trivial signature (R = identity, S = 0) would
// verify any claims. go-jose refuses such JWKs too; keygate's check is the
// second line.
func TestJWKSIdentityKeyForgesNothing(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	weak := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "weak", "x": enc(identity)}
	srv := newJWKSServer(t, weak, publicJWK(t, "good", "", edKey(t)))
	c := newClock()
	j, _ := newJWKSSource(t, c, srv, JWKSConfig{})
	hdr := enc(mustJSON(t, map[string]any{"alg": "EdDSA", "kid": "weak"}))
	forged := hdr + "." + enc(mustJSON(t, claimsAt(c, nil))) + "." + enc(append(identity, make([]byte, 32)...))
	if tok, reason, err := j.Authenticate(context.Background(), forged); tok != nil || err != nil {
		t.Errorf("Authenticate(forged under identity key) = %v, %q, %v; want a rejection", tok, reason, err)
	} else {
		t.Logf("reason %q", reason)
	}
}

// TestJWKSOutageIsUnavailableNotUnknown: with the JWKS failing, a token whose
// kid keygate has not seen may be signed by a key published since; keygate
// cannot check it, so it is unavailable (500), never unknown_key (401).
func TestJWKSOutageIsUnavailableNotUnknown(t *testing.T) {
	k1, k2 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	for _, tc := range []struct {
		name    string
		breakIt func(s *jwksServer)
	}{
		{"500", func(s *jwksServer) { s.set(http.StatusInternalServerError) }},
		{"oversized", func(s *jwksServer) { s.mu.Lock(); s.body = bytes.Repeat([]byte(" "), 5000); s.mu.Unlock() }},
		{"not JSON", func(s *jwksServer) { s.mu.Lock(); s.body = []byte("<html>"); s.mu.Unlock() }},
		{"slow", func(s *jwksServer) { s.mu.Lock(); s.delay = time.Hour; s.mu.Unlock() }},
		{"refused", func(s *jwksServer) { s.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, publicJWK(t, "k1", "ES256", k1))
			c := newClock()
			j, _ := newJWKSSource(t, c, srv, JWKSConfig{MaxBytes: 4096, Timeout: 200 * time.Millisecond})
			wantAuth(t, j, signJWT(t, "ES256", k1, map[string]any{"kid": "k1"}, claimsAt(c, nil)), "")
			tc.breakIt(srv)
			c.Add(DefaultJWKSMinRefetch)
			fresh := signJWT(t, "ES256", k2, map[string]any{"kid": "k2"}, claimsAt(c, nil))
			wantAuth(t, j, fresh, ReasonUnavailable)
			wantAuth(t, j, fresh, ReasonUnavailable) // within MinRefetch of the failed fetch: still not unknown
		})
	}
}

// TestJWKSRandomKidsCannotStarveNewKey plays an attacker sending one token
// with a made-up kid per second while the identity provider publishes a new
// key, and measures what a client holding a token of that key sees.
func TestJWKSRandomKidsCannotStarveNewKey(t *testing.T) {
	k1, k2 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
	srv := newJWKSServer(t, publicJWK(t, "k1", "ES256", k1))
	c := newClock()
	j, _ := newJWKSSource(t, c, srv, JWKSConfig{})
	wantAuth(t, j, signJWT(t, "ES256", k1, map[string]any{"kid": "k1"}, claimsAt(c, nil)), "")
	seen := map[string]int{}
	firstOK := -1
	for sec := range 60 {
		attack := signJWT(t, "ES256", k1, map[string]any{"kid": fmt.Sprintf("random-%d", sec)}, claimsAt(c, nil))
		if tok, reason, _ := j.Authenticate(context.Background(), attack); tok != nil {
			t.Fatalf("second %d: made-up kid accepted (%q)", sec, reason)
		}
		if sec == 5 {
			srv.set(http.StatusOK, publicJWK(t, "k1", "ES256", k1), publicJWK(t, "k2", "ES256", k2))
		}
		if sec >= 5 {
			tok, reason, _ := j.Authenticate(context.Background(), signJWT(t, "ES256", k2, map[string]any{"kid": "k2"}, claimsAt(c, nil)))
			if tok != nil {
				reason = "accepted"
				if firstOK < 0 {
					firstOK = sec
				}
			}
			seen[reason]++
		}
		c.Add(time.Second)
	}
	t.Logf("client with the new key, one request per second for 55 s: %v; first accepted %d s after publication; JWKS requests %d",
		seen, firstOK-5, srv.requests.Load())
	if seen[ReasonUnknownKey] != 0 || seen[ReasonBadSignature] != 0 {
		t.Errorf("client with a valid token of the new key got 401s: %v, want none", seen)
	}
	if firstOK < 0 || firstOK-5 > int(DefaultJWKSMinRefetch/time.Second) {
		t.Errorf("new key first accepted at second %d, want within MinRefetch of its publication (second 5)", firstOK)
	}
	if got, most := srv.requests.Load(), int64(60/int(DefaultJWKSMinRefetch/time.Second)+2); got > most {
		t.Errorf("JWKS requests = %d, want at most %d (one per MinRefetch)", got, most)
	}
}

// TestPEMKeysOfSmallOrderRefused: static keys go through x509, not go-jose,
// so keygate's own check is what refuses a small-order Ed25519 key there.
func TestPEMKeysOfSmallOrderRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(identity))
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if keys, err := ParsePEMKeys(data); err == nil {
		t.Errorf("ParsePEMKeys(identity point) = %d keys, nil; want an error", len(keys))
	}
}

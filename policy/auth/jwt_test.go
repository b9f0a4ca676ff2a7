package auth

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestJWT returns a JWT source on clock c with the given config
// defaults filled in (issuer, audience).
func newTestJWT(t *testing.T, c *fakeClock, cfg JWTConfig) *JWT {
	t.Helper()
	if cfg.Issuers == nil {
		cfg.Issuers = []string{testIssuer}
	}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{testAudience}
	}
	j, err := NewJWT(cfg)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	j.now = c.Now
	return j
}

func TestJWTAcceptsEveryAlgorithm(t *testing.T) {
	rk, _ := rsaKeys(t)
	p256, p384, p521, ed := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521()), edKey(t)
	c := newClock()
	j := newTestJWT(t, c, JWTConfig{
		Secret:     testSecret,
		PublicKeys: []*Key{publicKey(t, rk), publicKey(t, p256), publicKey(t, p384), publicKey(t, p521), publicKey(t, ed)},
	})
	for _, tc := range []struct {
		alg string
		key any
	}{
		{"HS256", testSecret}, {"HS384", testSecret}, {"HS512", testSecret},
		{"RS256", rk}, {"RS384", rk}, {"RS512", rk},
		{"PS256", rk}, {"PS384", rk}, {"PS512", rk},
		{"ES256", p256}, {"ES384", p384}, {"ES512", p521},
		{"EdDSA", ed}, {"Ed25519", ed},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			token := signJWT(t, tc.alg, tc.key, nil, claimsAt(c, nil))
			tok, reason, err := j.Authenticate(context.Background(), token)
			if tok == nil || reason != "" || err != nil {
				t.Fatalf("Authenticate(%s token) = %v, %q, %v; want accepted", tc.alg, tok, reason, err)
			}
			if tok.Name != "jwt:client-42" || !cmp.Equal(tok.Products, []string{testProductID}) || !cmp.Equal(tok.Operations, []string{"activate", "get"}) {
				t.Errorf("token = %+v", tok)
			}
			if want := time.Unix(c.Now().Unix()+600, 0).Add(DefaultLeeway); !tok.ExpiresAt().Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v (exp + leeway)", tok.ExpiresAt(), want)
			}
		})
	}
}

func TestJWTRejects(t *testing.T) {
	rk, rkOther := rsaKeys(t)
	p256, p384 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384())
	c := newClock()
	now := c.Now().Unix()
	j := newTestJWT(t, c, JWTConfig{PublicKeys: []*Key{publicKey(t, rk), publicKey(t, p256)}})
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rk.PublicKey))})
	good := signJWT(t, "RS256", rk, nil, claimsAt(c, nil))
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"exp": now - 31})), ReasonExpired},
		{"not yet valid", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"nbf": now + 31})), ReasonNotYetValid},
		{"issued in the future", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"iat": now + 3600})), ReasonNotYetValid},
		{"wrong issuer", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"iss": "https://evil.example.com/"})), ReasonBadIssuer},
		{"no issuer", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"iss": nil})), ReasonBadIssuer},
		{"issuer not a string", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"iss": []string{testIssuer}})), ReasonBadIssuer},
		{"wrong audience", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"aud": "billing"})), ReasonBadAudience},
		{"wrong audiences", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"aud": []string{"billing", "crm"}})), ReasonBadAudience},
		{"no audience", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"aud": nil})), ReasonBadAudience},
		{"audience a number", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"aud": 7})), ReasonMalformed},
		{"no exp", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"exp": nil})), ReasonMalformed},
		{"exp a string", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"exp": "tomorrow"})), ReasonMalformed},
		{"no products", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"products": nil})), ReasonProduct},
		{"empty operations", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"operations": []string{}})), "operation"},
		{"products not strings", signJWT(t, "RS256", rk, nil, claimsAt(c, map[string]any{"products": []int{1}})), ReasonMalformed},
		{"claims not an object", signJWT(t, "RS256", rk, nil, `[1]`), ReasonMalformed},
		{"duplicate exp claim", signJWT(t, "RS256", rk, nil, `{"exp":1,"exp":99999999999}`), ReasonMalformed},
		{"alg none", enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".AA", ReasonBadAlg},
		{"alg none, no signature", enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", ReasonMalformed},
		// Algorithm confusion: HMAC keyed with the RSA public key's PEM,
		// the classic attack on verifiers that pick the method from alg.
		{"HS256 keyed with the RSA public key", signJWT(t, "HS256", rsaPEM, nil, claimsAt(c, nil)), ReasonBadAlg},
		{"HS256 keyed with the RSA modulus", signJWT(t, "HS256", rk.N.Bytes(), nil, claimsAt(c, nil)), ReasonBadAlg},
		{"ES384 with only a P-256 key", signJWT(t, "ES384", p384, nil, claimsAt(c, nil)), ReasonBadAlg},
		{"ES256 signed on P-384", signJWT(t, "ES256", p384, nil, claimsAt(c, nil)), ReasonBadSignature},
		{"RS256 by another key", signJWT(t, "RS256", rkOther, nil, claimsAt(c, nil)), ReasonBadSignature},
		{"PS256 signature labelled RS256", parts[0] + "." + parts[1] + "." + enc(rawSign(t, "PS256", rk, parts[0]+"."+parts[1])), ReasonBadSignature},
		{"tampered payload", parts[0] + "." + enc(mustJSON(t, claimsAt(c, map[string]any{"products": []string{"*"}}))) + "." + parts[2], ReasonBadSignature},
		{"truncated signature", parts[0] + "." + parts[1] + "." + enc(must(b64.DecodeString(parts[2]))[:255]), ReasonBadSignature},
		{"signature spelled with trailing bits", parts[0] + "." + parts[1] + "." + nonCanonical(parts[2]), ReasonMalformed},
		{"no signature", parts[0] + "." + parts[1] + ".", ReasonMalformed},
		{"payload removed", parts[0] + ".." + parts[2], ReasonBadSignature},
		{"empty payload signed", signJWT(t, "RS256", rk, nil, ``), ReasonMalformed},
		{"unknown crit", signJWT(t, "RS256", rk, map[string]any{"crit": []string{"x-policy"}, "x-policy": 1}, claimsAt(c, nil)), ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, reason, err := j.Authenticate(context.Background(), tc.token)
			if tok != nil || reason != tc.want || err != nil {
				t.Errorf("Authenticate = %v, %q, %v; want nil, %q, nil", tok, reason, err, tc.want)
			}
		})
	}
	t.Run("leeway", func(t *testing.T) {
		for _, d := range []map[string]any{{"exp": now - 29}, {"nbf": now + 29}, {"iat": now + 29}} {
			if tok, reason, _ := j.Authenticate(context.Background(), signJWT(t, "RS256", rk, nil, claimsAt(c, d))); tok == nil {
				t.Errorf("Authenticate(%v) = %q, want accepted within the 30s leeway", d, reason)
			}
		}
	})
	t.Run("not a JWT", func(t *testing.T) {
		for _, tok := range []string{"kg_abc", "opaque-token", "a.b", "a.b.c.d", ".b.c", "a.b+c.d", "a.b.c="} {
			if got, reason, err := j.Authenticate(context.Background(), tok); got != nil || reason != "" || err != nil {
				t.Errorf("Authenticate(%q) = %v, %q, %v; want not recognized", tok, got, reason, err)
			}
		}
	})
}

// nonCanonical respells a base64url segment whose length leaves spare bits
// (a 256-byte signature: 4 of them) with those bits set: lax decoders read
// the same bytes, a strict one refuses it.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJWTOptions(t *testing.T) {
	c := newClock()
	now := c.Now().Unix()
	ctx := context.Background()
	check := func(t *testing.T, j *JWT, token, want string) {
		t.Helper()
		tok, reason, err := j.Authenticate(ctx, token)
		if err != nil || reason != want || (want == "") != (tok != nil) {
			t.Errorf("Authenticate = %v, %q, %v; want reason %q", tok, reason, err, want)
		}
	}
	t.Run("types", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret, Types: []string{"at+jwt"}})
		check(t, j, signJWT(t, "HS256", testSecret, map[string]any{"typ": "at+JWT"}, claimsAt(c, nil)), "")
		check(t, j, signJWT(t, "HS256", testSecret, map[string]any{"typ": "application/at+jwt"}, claimsAt(c, nil)), "")
		check(t, j, signJWT(t, "HS256", testSecret, nil, claimsAt(c, nil)), ReasonMalformed)                        // typ JWT: an ID token, say
		check(t, j, signJWT(t, "HS256", testSecret, map[string]any{"typ": nil}, claimsAt(c, nil)), ReasonMalformed) // no typ
	})
	t.Run("algorithms", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret, Algorithms: []string{"HS512"}})
		check(t, j, signJWT(t, "HS512", testSecret, nil, claimsAt(c, nil)), "")
		check(t, j, signJWT(t, "HS256", testSecret, nil, claimsAt(c, nil)), ReasonBadAlg)
	})
	t.Run("short secret serves HS256 only", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret[:32]})
		check(t, j, signJWT(t, "HS256", testSecret[:32], nil, claimsAt(c, nil)), "")
		check(t, j, signJWT(t, "HS384", testSecret[:32], nil, claimsAt(c, nil)), ReasonBadAlg)
	})
	t.Run("max age", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret, MaxAge: time.Hour})
		check(t, j, signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"iat": now - 7200})), ReasonExpired)
		check(t, j, signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"iat": nil})), ReasonMalformed)
		check(t, j, signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"iat": now - 60})), "")
	})
	t.Run("no exp allowed", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret, AllowNoExp: true})
		tok, _, _ := j.Authenticate(ctx, signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"exp": nil})))
		if tok == nil || !tok.ExpiresAt().IsZero() {
			t.Errorf("Authenticate(no exp) = %+v, want a token that never expires", tok)
		}
	})
	t.Run("scope with prefixes", func(t *testing.T) {
		j := newTestJWT(t, c, JWTConfig{Secret: testSecret, Claims: ClaimMapping{
			Products: "scope", ProductPrefix: "product:", Operations: "scope", OperationPrefix: "op:", Name: "client_id",
		}})
		claims := claimsAt(c, map[string]any{"products": nil, "operations": nil, "client_id": "shop\x00\n",
			"scope": "openid product:" + testProductID + " op:activate op:get product:" + testProductID})
		tok, reason, _ := j.Authenticate(ctx, signJWT(t, "HS256", testSecret, nil, claims))
		if tok == nil {
			t.Fatalf("Authenticate = %q, want accepted", reason)
		}
		if tok.Name != "jwt:shop??" || !cmp.Equal(tok.Products, []string{testProductID}) || !cmp.Equal(tok.Operations, []string{"activate", "get"}) {
			t.Errorf("token = %+v", tok)
		}
		claims["scope"] = "product:* op:*"
		tok, _, _ = j.Authenticate(ctx, signJWT(t, "HS256", testSecret, nil, claims))
		if tok == nil || !cmp.Equal(tok.Products, []string{"*"}) || tok.Operations != nil {
			t.Errorf("token(* scope) = %+v, want global with every operation", tok)
		}
		claims["scope"] = "product:" + testProductID
		check(t, j, signJWT(t, "HS256", testSecret, nil, claims), "operation")
		claims["scope"] = "openid op:get"
		check(t, j, signJWT(t, "HS256", testSecret, nil, claims), ReasonProduct)
	})
}

func TestNewJWTConfigErrors(t *testing.T) {
	rk, _ := rsaKeys(t)
	_, err := NewJWT(JWTConfig{Secret: []byte("short"), Algorithms: []string{"none", "RS256"}, Leeway: time.Hour, MaxAge: -1})
	if err == nil {
		t.Fatal("NewJWT(bad config) = nil error")
	}
	for _, want := range []string{"Issuers:", "Audiences:", "Secret:", `Algorithms: "none"`, "Algorithms: no configured key can verify RS256", "Leeway:", "MaxAge:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewJWT error lacks %q:\n%v", want, err)
		}
	}
	if _, err := NewJWT(JWTConfig{Issuers: []string{"a"}, Audiences: []string{"b"}}); err == nil || !strings.Contains(err.Error(), "set at least one") {
		t.Errorf("NewJWT(no key) error = %v", err)
	}
	if _, err := NewJWT(JWTConfig{Issuers: []string{"a"}, Audiences: []string{"b"}, PublicKeys: []*Key{publicKey(t, rk)}}); err != nil {
		t.Errorf("NewJWT(RSA key) = %v", err)
	}
}

func TestParsePEMKeys(t *testing.T) {
	rk, _ := rsaKeys(t)
	ec := ecKey(t, elliptic.P384())
	pkix := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&ec.PublicKey))})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)})
	keys, err := ParsePEMKeys(append(pkix, pkcs1...))
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParsePEMKeys = %d keys, %v; want 2", len(keys), err)
	}
	if !keys[0].fits(algorithms["ES384"]) || keys[0].fits(algorithms["ES256"]) || !keys[1].fits(algorithms["PS512"]) || keys[1].fits(algorithms["HS256"]) {
		t.Error("keys fit the wrong algorithms")
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(ec))})
	for name, data := range map[string][]byte{"private key": priv, "empty": nil, "garbage": []byte("not pem")} {
		if _, err := ParsePEMKeys(data); err == nil {
			t.Errorf("ParsePEMKeys(%s) = nil error", name)
		}
	}
}

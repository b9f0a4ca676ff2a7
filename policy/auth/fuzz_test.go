package auth

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzVerifier is a JWT source with one key of each kind but RSA (slow to
// verify, and covered by the unit tests), and the inputs it has seen
// signed.
type fuzzVerifier struct {
	j      *JWT
	signed map[string]bool // signing inputs signed with a configured key
	seeds  []string
}

func newFuzzVerifier(f *testing.F) *fuzzVerifier {
	c := newClock()
	p256, ed := ecKey(f, elliptic.P256()), edKey(f)
	j, err := NewJWT(JWTConfig{
		Issuers: []string{testIssuer}, Audiences: []string{testAudience},
		Secret: testSecret, PublicKeys: []*Key{publicKey(f, p256), publicKey(f, ed)},
	})
	if err != nil {
		f.Fatal(err)
	}
	j.now = c.Now
	v := &fuzzVerifier{j: j, signed: map[string]bool{}}
	for _, s := range []struct {
		alg string
		key any
	}{{"HS256", testSecret}, {"HS512", testSecret}, {"ES256", p256}, {"EdDSA", ed}} {
		for _, claims := range []any{claimsAt(c, nil), claimsAt(c, map[string]any{"products": "*", "aud": []string{"x", testAudience}}), `{}`} {
			tok := signJWT(f, s.alg, s.key, map[string]any{"kid": "k"}, claims)
			v.signed[tok[:strings.LastIndexByte(tok, '.')]] = true
			v.seeds = append(v.seeds, tok)
		}
	}
	return v
}

// FuzzJWT: Authenticate never panics, always gives a known reason, and
// never accepts a token whose header and payload were not signed by one of
// its keys: whatever the fuzzer does to a signed token, only the exact
// signed bytes can pass.
func FuzzJWT(f *testing.F) {
	v := newFuzzVerifier(f)
	for _, s := range v.seeds {
		f.Add(s)
		f.Add(s[:len(s)-2])
	}
	f.Add(rfc7515HS256)
	f.Add(rfc8037JWS)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("e30.e30.e30")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		tok, reason, err := v.j.Authenticate(context.Background(), token)
		if err != nil {
			t.Fatalf("Authenticate(%q) error %v: no JWKS, so nothing can be unavailable", token, err)
		}
		if tok == nil {
			if reason != "" && !slices.Contains(Reasons, reason) {
				t.Fatalf("Authenticate(%q) reason %q is not one of Reasons", token, reason)
			}
			return
		}
		if input := token[:strings.LastIndexByte(token, '.')]; !v.signed[input] {
			t.Fatalf("Authenticate accepted %q, whose header and payload no key signed", token)
		}
	})
}

// FuzzJWTClaims: any header and claims, correctly signed with the HMAC
// secret, never make Authenticate panic, and what it accepts meets every
// rule when read back with plain encoding/json.
func FuzzJWTClaims(f *testing.F) {
	v := newFuzzVerifier(f)
	c := newClock()
	f.Add([]byte(`{"alg":"HS256"}`), mustJSON(f, claimsAt(c, nil)))
	f.Add([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"x"}`), mustJSON(f, claimsAt(c, map[string]any{"scope": "a b", "products": "p q"})))
	f.Add([]byte(`{"alg":"HS256","crit":["exp"]}`), []byte(`{"exp":1e400}`))
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"iss":"https://idp.example.com/","aud":["keygate"],"exp":2e9,"products":["*","*"],"operations":"*"}`))
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"iss":"https://idp.example.com/","aud":"keygate","exp":-1,"products":[null]}`))
	now := c.Now()
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		if len(header)+len(claims) > 4096 {
			return
		}
		input := enc(header) + "." + enc(claims)
		token := input + "." + enc(rawSign(t, "HS256", testSecret, input))
		tok, reason, err := v.j.Authenticate(context.Background(), token)
		if err != nil || tok == nil && reason == "" && looksLikeJWT(token) {
			t.Fatalf("Authenticate(%s . %s) = nil, %q, %v", header, claims, reason, err)
		}
		if tok == nil {
			return
		}
		var h map[string]any
		var m map[string]any
		if json.Unmarshal(header, &h) != nil || json.Unmarshal(claims, &m) != nil {
			t.Fatalf("accepted a token whose header or claims are not JSON objects: %s . %s", header, claims)
		}
		if h["alg"] != "HS256" || h["crit"] != nil {
			t.Fatalf("accepted header %s", header)
		}
		exp, _ := m["exp"].(float64)
		auds, _ := m["aud"].([]any)
		if m["aud"] == testAudience {
			auds = []any{testAudience}
		}
		switch {
		case m["iss"] != testIssuer:
			t.Fatalf("accepted iss %v", m["iss"])
		case !slices.Contains(auds, any(testAudience)):
			t.Fatalf("accepted aud %v", m["aud"])
		case time.Unix(int64(exp), 0).Add(DefaultLeeway).Before(now):
			t.Fatalf("accepted exp %v at %v", m["exp"], now.Unix())
		case len(tok.Products) == 0:
			t.Fatalf("accepted a token with no products: %s", claims)
		case tok.Expired(now):
			t.Fatalf("accepted an expired token: %s", claims)
		}
	})
}

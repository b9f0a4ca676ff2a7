package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/policy/auth"
)

// introspectionEndpoint is a real RFC 7662 endpoint that counts its calls
// and answers every token with status and body.
func introspectionEndpoint(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

func withIntrospection(t *testing.T, url string) fixtureOpt {
	t.Helper()
	in, err := auth.NewIntrospector(auth.IntrospectionConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := auth.NewChain(in)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) { o.Auth = chain }
}

// TestFailureBudgetShieldsRemoteSources: once a client has spent its
// failure budget (token-guessing: 20), its further requests are answered
// 429 without an introspection call, whether its tokens were refused (401)
// or could not be checked (500, charged to the same budget).
func TestFailureBudgetShieldsRemoteSources(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int // the endpoint's
		first      int // keygate's answer within the budget
	}{
		{"refused tokens", `{"active":false}`, http.StatusOK, 401},
		{"tokens the provider errs on", `{"error":"invalid_request"}`, http.StatusBadRequest, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp, calls := introspectionEndpoint(t, tc.status, tc.body)
			g := newGateway(t, withIntrospection(t, idp.URL))
			for i := 1; i <= 20; i++ {
				if a := g.do(t, call{path: "/get-key", token: fmt.Sprintf("opaque-%d", i), body: getBody(testKey)}); a.status != tc.first {
					t.Fatalf("request %d = %d %s, want %d", i, a.status, a.raw, tc.first)
				}
			}
			for i := 21; i <= 30; i++ {
				if a := g.do(t, call{path: "/get-key", token: fmt.Sprintf("opaque-%d", i), body: getBody(testKey)}); a.status != 429 {
					t.Fatalf("request %d = %d %s, want 429", i, a.status, a.raw)
				}
			}
			if got := calls.Load(); got != 20 {
				t.Errorf("introspection calls = %d, want 20 (none once the budget is spent)", got)
			}
		})
	}
}

// hs256 signs claims (JSON) under header (JSON) with secret.
func hs256(header, claims string, secret []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + enc(m.Sum(nil))
}

// jwtChain returns a chain verifying HS256 tokens of secret, and two
// spellings of one token (same claims, headers that differ).
func jwtChain(t *testing.T) (*auth.Chain, []string) {
	t.Helper()
	secret := []byte(strings.Repeat("s", 32))
	j, err := auth.NewJWT(auth.JWTConfig{Issuers: []string{"https://idp.test/"}, Audiences: []string{"keygate"}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := auth.NewChain(j)
	if err != nil {
		t.Fatal(err)
	}
	claims := fmt.Sprintf(`{"iss":"https://idp.test/","aud":"keygate","exp":%d,"jti":"one","products":["*"]}`, time.Now().Add(time.Hour).Unix())
	return chain, []string{hs256(`{"alg":"HS256"}`, claims, secret), hs256(`{"alg":"HS256","typ":"JWT"}`, claims, secret)}
}

// TestIdempotencyUsesTokenIdentity: a retry of one request with another
// spelling of the same token is a replay, not a second call upstream.
func TestIdempotencyUsesTokenIdentity(t *testing.T) {
	chain, copies := jwtChain(t)
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false), func(o *Options) { o.Auth = chain })
	for i, tok := range copies {
		c := call{path: "/activate-key", token: tok, body: activateBody(testKey), header: map[string]string{"Idempotency-Key": "retry-1"}}
		if a := g.do(t, c); a.status != 200 {
			t.Fatalf("request %d = %d %s, want 200", i+1, a.status, a.raw)
		}
	}
	if got := g.up.calls.Load(); got != 1 {
		t.Errorf("upstream calls = %d, want 1: the second spelling is a retry of the first", got)
	}
}

// TestTokenLimitsUseTokenIdentity: two spellings of one JWT (same claims,
// headers that differ) share one create-per-token bucket (60 a minute).
func TestTokenLimitsUseTokenIdentity(t *testing.T) {
	chain, copies := jwtChain(t)
	g := newGateway(t, func(o *Options) { o.Auth = chain })
	body := fmt.Sprintf(`{"productId":%q}`, testProduct)
	for i := range 60 {
		if a := g.do(t, call{path: "/create-key", token: copies[i%2], body: body}); a.status != 200 {
			t.Fatalf("create %d = %d %s, want 200", i+1, a.status, a.raw)
		}
	}
	for _, tok := range copies {
		if a := g.do(t, call{path: "/create-key", token: tok, body: body}); a.status != 429 {
			t.Errorf("create 61 with a second spelling = %d %s, want 429: one token, one bucket", a.status, a.raw)
		}
	}
}

package auth

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/policy"
)

// hostileIDP is a real RFC 7662 endpoint that counts its calls and answers
// per token: "good-*" tokens are active, "poison-400-*" get a 400,
// "poison-html-*" a non-JSON 200, "poison-noactive-*" a JSON object
// without active; others are inactive.
func hostileIDP(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		tok := r.PostFormValue("token")
		switch {
		case strings.HasPrefix(tok, "good-"):
			fmt.Fprint(w, `{"active":true,"products":["*"],"sub":"`+tok+`"}`)
		case strings.HasPrefix(tok, "poison-400-"):
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request"}`)
		case strings.HasPrefix(tok, "poison-html-"):
			fmt.Fprint(w, `<html>`)
		case strings.HasPrefix(tok, "poison-noactive-"):
			fmt.Fprint(w, `{"products":["*"]}`)
		default:
			fmt.Fprint(w, `{"active":false}`)
		}
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

// TestIntrospectionFailureOfOneTokenIsScoped has one client send a token
// the endpoint answers with an error before each of 99 other clients sends
// a fresh, valid token, and counts the other clients' failures.
func TestIntrospectionFailureOfOneTokenIsScoped(t *testing.T) {
	for _, kind := range []string{"400", "html", "noactive"} {
		t.Run(kind, func(t *testing.T) {
			srv, calls := hostileIDP(t)
			c := newClock()
			in, err := NewIntrospector(IntrospectionConfig{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			in.now = c.Now
			failed := 0
			for i := range 99 {
				poison := fmt.Sprintf("poison-%s-%d", kind, i)
				if tok, reason, err := in.Authenticate(context.Background(), poison); tok != nil || reason != ReasonUnavailable || err == nil {
					t.Fatalf("Authenticate(%s) = %v, %q, %v; want unavailable", poison, tok, reason, err)
				}
				if tok, _, _ := in.Authenticate(context.Background(), fmt.Sprintf("good-%d", i)); tok == nil {
					failed++
				}
			}
			t.Logf("%s answers for the attacker's tokens: %d of 99 other clients' fresh tokens failed", kind, failed)
			if failed != 0 {
				t.Errorf("other clients' fresh tokens failed: %d of 99, want 0", failed)
			}
			// The failing answer is remembered for that token only, for
			// Backoff: repeating it costs no call.
			before := calls.Load()
			if _, reason, _ := in.Authenticate(context.Background(), "poison-"+kind+"-0"); reason != ReasonUnavailable || calls.Load() != before {
				t.Errorf("repeat of a failing token = %q with %d calls, want unavailable with none", reason, calls.Load()-before)
			}
		})
	}
}

// TestIntrospectionTransportFailureOpensBreaker: with the endpoint
// unreachable, tokens not cached are unavailable without a call each, and
// cached answers keep working.
func TestIntrospectionTransportFailureOpensBreaker(t *testing.T) {
	srv, calls := hostileIDP(t)
	c := newClock()
	in, err := NewIntrospector(IntrospectionConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	in.now = c.Now
	wantAuth(t, in, "good-cached", "")
	srv.Close()
	wantAuth(t, in, "good-1", ReasonUnavailable)
	n := calls.Load()
	wantAuth(t, in, "good-2", ReasonUnavailable)
	wantAuth(t, in, "good-cached", "")
	if calls.Load() != n {
		t.Errorf("calls within Backoff = %d, want 0", calls.Load()-n)
	}
}

func TestIntrospectionAcceptsAccessTokensOnly(t *testing.T) {
	for _, tc := range []struct {
		tokenType any // nil: absent
		want      string
	}{
		{nil, ""},
		{"access_token", ""},
		{"Bearer", ""},
		{"bearer", ""},
		{"urn:ietf:params:oauth:token-type:access_token", ""},
		{"refresh_token", ReasonTokenType},
		{"urn:ietf:params:oauth:token-type:refresh_token", ReasonTokenType},
		{"id_token", ReasonTokenType},
		{"DPoP", ReasonTokenType},
		{"", ReasonTokenType},
		{5, ReasonTokenType},
	} {
		t.Run(fmt.Sprint(tc.tokenType), func(t *testing.T) {
			idp := newIDP(t)
			c := newClock()
			in := newTestIntrospector(t, idp, c, IntrospectionConfig{})
			answer := map[string]any{"active": true, "products": []string{"*"}}
			if tc.tokenType != nil {
				answer["token_type"] = tc.tokenType
			}
			idp.set("tok", answer)
			wantAuth(t, in, "tok", tc.want)
		})
	}
}

func TestScopesSplitOnASCIISpaceOnly(t *testing.T) {
	c := newClock()
	j := newTestJWT(t, c, JWTConfig{Secret: testSecret, Claims: ClaimMapping{Products: "scope", ProductPrefix: "product:"}})
	for _, tc := range []struct {
		scope string
		want  []string
	}{
		{"product:P1 product:P2", []string{"P1", "P2"}},
		{"  product:P1   openid ", []string{"P1"}},
		{"product:P1\u00a0product:P2", []string{"P1\u00a0product:P2"}},
		{"product:P1\u2003product:P2", []string{"P1\u2003product:P2"}},
		{"product:P1\u3000product:P2", []string{"P1\u3000product:P2"}},
	} {
		token := signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"products": nil, "scope": tc.scope}))
		tok, reason, err := j.Authenticate(context.Background(), token)
		if tok == nil {
			t.Errorf("Authenticate(scope %q) = nil, %q, %v", tc.scope, reason, err)
			continue
		}
		if strings.Join(tok.Products, "|") != strings.Join(tc.want, "|") {
			t.Errorf("products of scope %q = %q, want %q", tc.scope, tok.Products, tc.want)
		}
	}
}

// fileLookuper is a tokens "file" a test edits.
type fileLookuper struct {
	mu     sync.Mutex
	tokens map[string]*policy.Token
}

func (f *fileLookuper) Lookup(token string) *policy.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[token]
}

// TestNearMissesNeverReachTheProvider sends near-misses of keygate's own
// tokens through a chain ending in a real introspection endpoint that
// counts its calls.
func TestNearMissesNeverReachTheProvider(t *testing.T) {
	ctx := context.Background()
	global, err := policy.NewToken("filed", []string{"*"}, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	files := &fileLookuper{tokens: map[string]*policy.Token{"file-token-to-remove": global}}
	file, err := NewFileSource(files)
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(StoreConfig{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), TokenPrefix: "acme_"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	jwt := newTestJWT(t, c, JWTConfig{Secret: testSecret})
	srv, calls := hostileIDP(t)
	in, err := NewIntrospector(IntrospectionConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := NewChain(file, store, jwt, in)
	if err != nil {
		t.Fatal(err)
	}
	chain.now = c.Now

	if tok, reason, err := chain.Authenticate(ctx, "file-token-to-remove"); tok == nil {
		t.Fatalf("file token = nil, %q, %v", reason, err)
	}
	files.mu.Lock()
	files.tokens = nil // removed from the file
	files.mu.Unlock()

	signed := signJWT(t, "HS256", testSecret, nil, claimsAt(c, nil))
	h, rest, _ := strings.Cut(signed, ".")
	p, _, _ := strings.Cut(rest, ".")
	kg := newStoreToken("kg_")
	for name, token := range map[string]string{
		"removed file token":     "file-token-to-remove",
		"kg_ in upper case":      "KG_" + kg[3:],
		"kg_ in mixed case":      "Kg_" + kg[3:],
		"kg_ without the store":  kg,
		"store prefix, any case": "ACME_" + kg[3:],
		"JWT with = appended":    signed + "=",
		"JWT cut to two":         h + "." + p,
		"JWT with four segments": signed + ".x",
		"JWT header padded":      h + "==." + p + ".x",
		"JWT in base64":          strings.ReplaceAll(signed, "_", "/"),
	} {
		if tok, reason, err := chain.Authenticate(ctx, token); tok != nil || err != nil || reason == "" {
			t.Errorf("%s: Authenticate = %v, %q, %v; want refused", name, tok, reason, err)
		}
	}
	if got := calls.Load(); got != 0 {
		t.Errorf("introspection endpoint called %d times for near-misses of keygate tokens, want 0", got)
	}
	if tok, reason, err := chain.Authenticate(ctx, "good-opaque.token"); tok == nil || calls.Load() != 1 {
		t.Errorf("opaque token = %v, %q, %v after %d calls; want accepted by the endpoint", tok, reason, err, calls.Load())
	}
}

// TestTokenIdentity: one identity per token, whatever its spelling, and
// different tokens have different ones.
func TestTokenIdentity(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	ec := ecKey(t, elliptic.P256())
	j := newTestJWT(t, c, JWTConfig{Secret: testSecret, PublicKeys: []*Key{publicKey(t, ec)}})
	id := func(token string) string {
		t.Helper()
		tok, reason, err := j.Authenticate(ctx, token)
		if tok == nil {
			t.Fatalf("Authenticate = nil, %q, %v", reason, err)
		}
		return tok.Identity()
	}
	claims := claimsAt(c, map[string]any{"jti": "abc"})
	a1 := id(signJWT(t, "ES256", ec, nil, claims))
	a2 := id(signJWT(t, "ES256", ec, nil, claims)) // ECDSA: another signature, same token
	a3 := id(signJWT(t, "HS256", testSecret, map[string]any{"kid": "x"}, claims))
	if a1 != a2 || a1 != a3 || !strings.HasPrefix(a1, "jwt:") {
		t.Errorf("identities of one token (iss, jti) = %q, %q, %q; want one", a1, a2, a3)
	}
	if b := id(signJWT(t, "ES256", ec, nil, claimsAt(c, map[string]any{"jti": "abd"}))); b == a1 {
		t.Errorf("two jtis share identity %q", b)
	}
	noJTI := claimsAt(c, nil)
	if x, y := id(signJWT(t, "ES256", ec, nil, noJTI)), id(signJWT(t, "ES256", ec, nil, noJTI)); x != y {
		t.Errorf("identities of one token (iss, sub, iat) = %q, %q; want one", x, y)
	}
	if x, y := id(signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"sub": "a"}))),
		id(signJWT(t, "HS256", testSecret, nil, claimsAt(c, map[string]any{"sub": "b"}))); x == y {
		t.Errorf("two subjects share identity %q", x)
	}
	// Neither jti nor iat: the signed header and payload.
	bare := claimsAt(c, map[string]any{"iat": nil})
	if x, y := id(signJWT(t, "ES256", ec, nil, bare)), id(signJWT(t, "ES256", ec, nil, bare)); x != y {
		t.Errorf("identities of one token (signed input) = %q, %q; want one", x, y)
	}
	file, _ := policy.ParseTokens("t.yaml", []byte("tokens:\n  - name: a\n    sha256: "+strings.ToUpper(hashOf("s"))+"\n    products: [\"*\"]\n"), nil)
	if got, want := file.Lookup("s").Identity(), "sha256:"+hashOf("s"); got != want {
		t.Errorf("file token Identity() = %q, want %q", got, want)
	}
}

func TestChainRemote(t *testing.T) {
	c := newClock()
	file, _ := NewFileSource(&fileLookuper{})
	local := newTestJWT(t, c, JWTConfig{Secret: testSecret})
	srv := newJWKSServer(t, publicJWK(t, "k", "", edKey(t)))
	withJWKS, _ := newJWKSSource(t, c, srv, JWKSConfig{})
	idp, _ := hostileIDP(t)
	in, _ := NewIntrospector(IntrospectionConfig{URL: idp.URL})
	store, _ := NewStore(StoreConfig{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})})
	for _, tc := range []struct {
		name    string
		sources []Source
		want    bool
	}{
		{"file and static JWT keys", []Source{file, local}, false},
		{"JWKS", []Source{file, withJWKS}, true},
		{"store", []Source{file, store}, true},
		{"introspection", []Source{file, in}, true},
	} {
		chain, err := NewChain(tc.sources...)
		if err != nil {
			t.Fatal(err)
		}
		if got := chain.Remote(); got != tc.want {
			t.Errorf("%s: Remote() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/policy"
)

// recorder is a Source that answers from a function and records what it
// was shown.
type recorder struct {
	mu     sync.Mutex
	seen   []string
	answer func(token string) (*policy.Token, string, error)
}

func (r *recorder) Authenticate(_ context.Context, token string) (*policy.Token, string, error) {
	r.mu.Lock()
	r.seen = append(r.seen, token)
	r.mu.Unlock()
	return r.answer(token)
}

func globalToken(t *testing.T, name string, expires time.Time) *policy.Token {
	t.Helper()
	tok, err := policy.NewToken(name, []string{"*"}, nil, expires)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestChainOrderAndDecisions(t *testing.T) {
	ok := globalToken(t, "ok", time.Time{})
	old := globalToken(t, "old", time.Now().Add(-time.Hour))
	boom := errors.New("redis: connection refused")
	first := &recorder{answer: func(token string) (*policy.Token, string, error) {
		switch token {
		case "first-ok":
			return ok, "", nil
		case "first-revoked":
			return nil, ReasonRevoked, nil
		case "first-down":
			return nil, ReasonUnavailable, boom
		case "first-stale":
			return old, "", nil
		}
		return nil, "", nil
	}}
	last := &recorder{answer: func(token string) (*policy.Token, string, error) {
		if token == "last-ok" {
			return ok, "", nil
		}
		return nil, "", nil
	}}
	chain, err := NewChain(first, last)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, want string
		err         error
		lastSees    bool
	}{
		{"", ReasonMissing, nil, false},
		{"has space", ReasonMalformed, nil, false},
		{"quote\"", ReasonMalformed, nil, false},
		{"=abc", ReasonMalformed, nil, false},
		{strings.Repeat("a", MaxTokenBytes+1), ReasonMalformed, nil, false},
		{"first-ok", "", nil, false},
		{"first-revoked", ReasonRevoked, nil, false},
		{"first-down", ReasonUnavailable, boom, false},
		{"first-stale", ReasonExpired, nil, false},
		{"last-ok", "", nil, true},
		{"nobody==", ReasonUnknown, nil, true},
	} {
		last.seen = nil
		tok, reason, err := chain.Authenticate(context.Background(), tc.token)
		if reason != tc.want || !errors.Is(err, tc.err) || (tc.want == "") != (tok != nil) {
			t.Errorf("Authenticate(%.20q) = %v, %q, %v; want reason %q, err %v", tc.token, tok, reason, err, tc.want, tc.err)
		}
		if (len(last.seen) > 0) != tc.lastSees {
			t.Errorf("Authenticate(%.20q): the last source saw it: %v, want %v", tc.token, len(last.seen) > 0, tc.lastSees)
		}
	}
	if _, err := NewChain(first, nil); err == nil {
		t.Error("NewChain(nil source) = nil error")
	}
	var nilChain *Chain
	if _, reason, _ := nilChain.Authenticate(context.Background(), "x"); reason != ReasonUnknown {
		t.Errorf("nil Chain: reason %q, want unknown", reason)
	}
}

// TestChainRealSources puts the four real sources in the documented order
// and checks that each token is decided by its own source, and that the
// introspection endpoint never sees a token another source recognized.
func TestChainRealSources(t *testing.T) {
	ctx := context.Background()
	pol := policy.Default()
	doc := "tokens:\n  - name: filed\n    sha256: " + hashOf("file-secret-token") + "\n    products: [\"*\"]\n"
	tokens, err := policy.ParseTokens("t.yaml", []byte(doc), pol)
	if err != nil {
		t.Fatal(err)
	}
	file, err := NewFileSource(tokens)
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStore(t, redistest.Start(t), StoreConfig{})
	kg, err := store.Add(ctx, "stored", []string{testProductID}, []string{"activate"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	c.t = time.Now()
	jwt := newTestJWT(t, c, JWTConfig{Secret: testSecret})
	idp := newIDP(t)
	idp.set("opaque-idp-token", map[string]any{"active": true, "products": []string{testProductID}, "operations": []string{"get"}})
	in := newTestIntrospector(t, idp, c, IntrospectionConfig{})
	chain, err := NewChain(file, store, jwt, in)
	if err != nil {
		t.Fatal(err)
	}

	signed := signJWT(t, "HS256", testSecret, nil, claimsAt(c, nil))
	forged := signJWT(t, "HS256", []byte(strings.Repeat("k", 64)), nil, claimsAt(c, nil))
	for _, tc := range []struct {
		token, name, reason string
	}{
		{"file-secret-token", "filed", ""},
		{kg, "stored", ""},
		{signed, "jwt:client-42", ""},
		{"opaque-idp-token", "introspect", ""},
		{forged, "", ReasonBadSignature},
		{newStoreToken("kg_"), "", ReasonUnknown},
		{"kg_typo", "", ReasonMalformed},
		{"opaque-unknown", "", ReasonInactive},
	} {
		tok, reason, err := chain.Authenticate(ctx, tc.token)
		if err != nil || reason != tc.reason || (tok == nil) != (tc.name == "") || tok != nil && tok.Name != tc.name {
			t.Errorf("Authenticate(%.24s…) = %+v, %q, %v; want %q, reason %q", tc.token, tok, reason, err, tc.name, tc.reason)
		}
	}
	if got := idp.calls.Load(); got != 2 {
		t.Errorf("introspection endpoint called %d times, want 2 (the two opaque tokens only)", got)
	}

	// The records from every source answer Allows as the tokens file does.
	activate, get := pol.Match("POST", "/activate-key"), pol.Match("POST", "/get-key")
	if activate == nil || get == nil {
		t.Fatal("built-in policy lacks activate or get")
	}
	stored, _, _ := chain.Authenticate(ctx, kg)
	idpTok, _, _ := chain.Authenticate(ctx, "opaque-idp-token")
	for _, tc := range []struct {
		tok     *policy.Token
		route   *policy.Route
		product string
		reason  string
	}{
		{stored, activate, testProductID, ""},
		{stored, activate, "prod_other", policy.ReasonProduct},
		{stored, get, testProductID, policy.ReasonOperation},
		{idpTok, get, testProductID, ""},
		{idpTok, activate, testProductID, policy.ReasonOperation},
	} {
		if ok, reason := tc.tok.Allows(tc.route, tc.product); ok != (tc.reason == "") || reason != tc.reason {
			t.Errorf("%s.Allows(%s, %s) = %v, %q; want reason %q", tc.tok.Name, tc.route.Name, tc.product, ok, reason, tc.reason)
		}
	}
}

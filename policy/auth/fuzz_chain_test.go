package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// FuzzChainRecognition: whatever the token, the chain never panics, gives a
// known reason, and never shows the introspection endpoint a token keygate
// could claim: keygate's prefix in any case, or anything the JWT source
// would decide or sees as JWT-like.
func FuzzChainRecognition(f *testing.F) {
	var mu sync.Mutex
	var seen []string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.PostFormValue("token"))
		mu.Unlock()
		fmt.Fprint(w, `{"active":false}`)
	}))
	f.Cleanup(idp.Close)
	c := newClock()
	jwt, err := NewJWT(JWTConfig{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Secret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	jwt.now = c.Now
	in, err := NewIntrospector(IntrospectionConfig{URL: idp.URL})
	if err != nil {
		f.Fatal(err)
	}
	chain, err := NewChain(jwt, in)
	if err != nil {
		f.Fatal(err)
	}
	signed := signJWT(f, "HS256", testSecret, nil, claimsAt(c, nil))
	for _, s := range []string{signed, signed + "=", signed[:strings.LastIndexByte(signed, '.')], "kg_abc", "KG_abc", "opaque", "a.b", "eyJ.x", "ewo.x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		mu.Lock()
		seen = seen[:0]
		mu.Unlock()
		tok, reason, err := chain.Authenticate(context.Background(), token)
		if tok == nil && !contains(Reasons, reason) {
			t.Fatalf("Authenticate(%q) = nil, %q, %v: unknown reason", token, reason, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if keygateShaped(s) || looksLikeJWT(s) || jwt.claimsShape(s) {
				t.Errorf("introspection endpoint saw %q, which keygate claims", s)
			}
		}
	})
}

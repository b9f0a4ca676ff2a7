package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/policy/auth"
)

// A chain of a tokens file and a JWT source: each token is decided by the
// source that recognizes it, and every rejection has a reason for the logs.
func ExampleNewChain() {
	sum := sha256.Sum256([]byte("file-token"))
	doc := fmt.Sprintf("tokens:\n  - name: ci\n    sha256: %x\n    products: [\"*\"]\n", sum)
	tokens, err := policy.ParseTokens("tokens.yaml", []byte(doc), nil)
	if err != nil {
		panic(err)
	}
	file, _ := auth.NewFileSource(tokens)

	secret := []byte("an HMAC secret of at least 32 bytes, from a Secret")
	jwt, err := auth.NewJWT(auth.JWTConfig{
		Issuers:   []string{"https://idp.example.com/"},
		Audiences: []string{"keygate"},
		Secret:    secret,
	})
	if err != nil {
		panic(err)
	}
	chain, _ := auth.NewChain(file, jwt)

	sign := func(claims string) string {
		enc := base64.RawURLEncoding.EncodeToString
		input := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + enc(m.Sum(nil))
	}
	exp := time.Now().Add(time.Hour).Unix()
	for _, token := range []string{
		"file-token",
		sign(fmt.Sprintf(`{"iss":"https://idp.example.com/","aud":"keygate","sub":"shop","exp":%d,"products":["prod_1"]}`, exp)),
		sign(fmt.Sprintf(`{"iss":"https://idp.example.com/","aud":"billing","exp":%d,"products":["prod_1"]}`, exp)),
		sign(`{"iss":"https://idp.example.com/","aud":"keygate","exp":1000000000,"products":["prod_1"]}`),
		"eyJhbGciOiJub25lIn0.e30.",
		"who-knows",
		"",
	} {
		tok, reason, err := chain.Authenticate(context.Background(), token)
		switch {
		case err != nil:
			fmt.Println("unavailable:", err)
		case tok != nil:
			fmt.Println("accepted:", tok.Name, tok.Products)
		default:
			fmt.Println("rejected:", reason)
		}
	}
	// Output:
	// accepted: ci [*]
	// accepted: jwt:shop [prod_1]
	// rejected: bad_audience
	// rejected: expired
	// rejected: malformed
	// rejected: unknown
	// rejected: missing
}

// The upstream credential replaces the client's token with the backend's
// key once keygate has checked the client.
func ExampleUpstreamAuth() {
	up, err := auth.NewUpstreamAuth("Bearer backend-key", "") // KEYGATE_UPSTREAM_AUTH
	if err != nil {
		panic(err)
	}
	out := http.Header{"Authorization": {"Bearer kg_client-token"}}
	up.Apply(out)
	fmt.Println(up, "->", out.Get("Authorization"))
	// Output: fixed (Bearer, 18 bytes) -> Bearer backend-key
}

// The store behind "keygate token add|list|revoke". Not run: it needs a
// Redis.
func ExampleStore() {
	ctx := context.Background()
	client, err := redisconn.New(redisconn.Config{URL: "redis://127.0.0.1:6379"})
	if err != nil {
		panic(err)
	}
	store, err := auth.NewStore(auth.StoreConfig{Client: client, CacheTTL: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	token, err := store.Add(ctx, "shop", []string{"prod_1"}, []string{"activate", "get"}, time.Time{})
	if err != nil {
		panic(err)
	}
	fmt.Println("token (shown once):", token)
	fmt.Println("token_hash:", policy.HashToken(token))
	records, _ := store.List(ctx)
	for _, r := range records {
		fmt.Println(r.Name, r.Hash[:12], r.Status(time.Now()))
	}
	if _, err := store.Revoke(ctx, "shop"); err != nil { // every replica refuses it within CacheTTL
		panic(err)
	}
}

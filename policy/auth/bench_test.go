package auth

import (
	"context"
	"crypto/elliptic"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// BenchmarkJWT measures one verification per algorithm family: the cost a
// JWT adds to each request (JWTs are not cached; verification is the
// check).
func BenchmarkJWT(b *testing.B) {
	rk, _ := rsaKeys(b)
	p256, ed := ecKey(b, elliptic.P256()), edKey(b)
	c := newClock()
	j, err := NewJWT(JWTConfig{
		Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Secret: testSecret,
		PublicKeys: []*Key{publicKey(b, rk), publicKey(b, p256), publicKey(b, ed)},
	})
	if err != nil {
		b.Fatal(err)
	}
	j.now = c.Now
	for _, tc := range []struct {
		alg string
		key any
	}{{"HS256", testSecret}, {"RS256", rk}, {"PS256", rk}, {"ES256", p256}, {"EdDSA", ed}} {
		token := signJWT(b, tc.alg, tc.key, nil, claimsAt(c, nil))
		b.Run(tc.alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if tok, reason, _ := j.Authenticate(context.Background(), token); tok == nil {
					b.Fatal(reason)
				}
			}
		})
	}
}

// BenchmarkCachedLookup measures a store or introspection answer served
// from the local cache, the common case between two TTLs.
func BenchmarkCachedLookup(b *testing.B) {
	tok := globalTokenB(b)
	c := newCache(DefaultStoreCacheSize)
	key := tokenKey{1}
	now := time.Now()
	c.put(key, answer{tok: tok}, time.Hour, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.get(key, now); !ok {
			b.Fatal("miss")
		}
	}
}

func globalTokenB(b *testing.B) *policy.Token {
	b.Helper()
	t, err := policy.NewToken("bench", []string{"*"}, nil, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

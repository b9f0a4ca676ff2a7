package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Test keys. RSA keys are slow to make, so each is made once per run.
var (
	rsaOnce       sync.Once
	rsaKey, rsa2  *rsa.PrivateKey
	testSecret    = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") // 64 bytes
	testIssuer    = "https://idp.example.com/"
	testAudience  = "keygate"
	testProductID = "prod_0123456789abcdefghij"
)

func rsaKeys(tb testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	tb.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey, rsa2
}

func ecKey(tb testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func edKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_900_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// signJWT signs claims (a map or a raw JSON string) with key under alg. The
// header is {"alg": alg, "typ": "JWT"} plus extra (a nil value deletes a
// member). The key decides the ECDSA curve, so that a mismatch can be made
// on purpose.
func signJWT(tb testing.TB, alg string, key any, extra map[string]any, claims any) string {
	tb.Helper()
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range extra {
		if v == nil {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
	}
	input := enc(mustJSON(tb, hdr)) + "." + enc(mustJSON(tb, claims))
	return input + "." + enc(rawSign(tb, alg, key, input))
}

// rawSign returns the JWS signature of input.
func rawSign(tb testing.TB, alg string, key any, input string) []byte {
	tb.Helper()
	a := algorithms[alg]
	h := crypto.SHA256
	if a != nil {
		h = a.hash
	}
	digest := func() []byte {
		d := h.New()
		d.Write([]byte(input))
		return d.Sum(nil)
	}
	var sig []byte
	var err error
	switch k := key.(type) {
	case []byte:
		m := hmac.New(h.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case *rsa.PrivateKey:
		if a != nil && a.family == famPSS {
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, h, digest())
		}
	case *ecdsa.PrivateKey:
		r, s, err2 := ecdsa.Sign(rand.Reader, k, digest())
		err = err2
		if n := k.Curve.Params().N; s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
			s.Sub(n, s) // keygate takes low-S signatures only
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	default:
		tb.Fatalf("rawSign: key type %T", key)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// publicJWK returns the public JWK of a private key.
func publicJWK(tb testing.TB, kid, alg string, key any) map[string]any {
	tb.Helper()
	m := map[string]any{"kid": kid}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(k.N.Bytes()), enc([]byte{1, 0, 1})
	case *ecdsa.PrivateKey:
		b, err := k.PublicKey.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		size := (len(b) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, enc(b[1:1+size]), enc(b[1+size:])
	case ed25519.PrivateKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(k.Public().(ed25519.PublicKey))
	default:
		tb.Fatalf("publicJWK: key type %T", key)
	}
	return m
}

// publicKey wraps a private key's public half as a static Key.
func publicKey(tb testing.TB, key crypto.Signer) *Key {
	tb.Helper()
	pub := key.Public()
	if err := checkPublicKey(pub); err != nil {
		tb.Fatal(err)
	}
	return &Key{pub: pub}
}

// jwksServer is a real HTTP JWKS endpoint whose document, status and delay
// a test changes, and which counts the requests it gets.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	keys     []map[string]any
	status   int
	body     []byte        // when set, served instead of the keys
	delay    time.Duration // before answering
}

func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		status, body, delay := s.status, s.body, s.delay
		if body == nil {
			body, _ = json.Marshal(map[string]any{"keys": s.keys})
		}
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

// claims returns valid claims at clock c, with changes (nil deletes).
func claimsAt(c *fakeClock, changes map[string]any) map[string]any {
	now := c.Now().Unix()
	m := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "client-42",
		"iat": now - 10, "nbf": now - 10, "exp": now + 600,
		"products": []string{testProductID}, "operations": []string{"activate", "get"},
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

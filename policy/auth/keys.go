package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Key bounds. RSA keys under 2048 bits are breakable or close to it; keys
// over 8192 bits only make verification slow, which a token sender could
// then exploit. HMAC secrets must be at least as long as the hash (RFC 7518
// 3.2), so a 32-byte secret serves HS256 only.
const (
	minRSABits     = 2048
	maxRSABits     = 8192
	minSecretBytes = 32
)

// Key is a key that verifies JWT signatures: an HMAC secret, or an RSA
// (2048 to 8192 bits), ECDSA (P-256, P-384, P-521) or Ed25519 public key,
// with the JWK metadata that restricts it. A key verifies only the
// algorithms of its own type: an RSA key never checks an HS256 token, and a
// P-384 key never checks ES256. Build keys with NewHMACKey or ParsePEMKeys,
// or let a JWKS fetch them. The zero Key verifies nothing.
type Key struct {
	// ID is the JWK "kid". Keys from configuration have none and serve
	// tokens with any kid.
	ID string
	// Alg, when set (JWK "alg"), is the only algorithm the key verifies.
	Alg string

	pub    crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	secret []byte           // HMAC
}

// NewHMACKey returns a key for HS256, HS384 and HS512 (each needs a secret
// at least as long as its hash: 32, 48 and 64 bytes). A secret shorter than
// 32 bytes is an error.
func NewHMACKey(secret []byte) (*Key, error) {
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("HMAC secret has %d bytes; it needs at least %d (e.g. openssl rand -base64 48)", len(secret), minSecretBytes)
	}
	return &Key{secret: slices.Clone(secret)}, nil
}

// ParsePEMKeys reads the public keys of PEM data: PUBLIC KEY (PKIX), RSA
// PUBLIC KEY (PKCS #1) and CERTIFICATE blocks. Private keys are refused: a
// verifier has no business holding one.
func ParsePEMKeys(data []byte) ([]*Key, error) {
	var keys []*Key
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch {
		case b.Type == "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case b.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case b.Type == "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = c.PublicKey
			}
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("PEM block %d is a private key (%s); give the public key", n, b.Type)
		default:
			return nil, fmt.Errorf("PEM block %d: type %q is not a public key or certificate", n, b.Type)
		}
		if err == nil {
			err = checkPublicKey(pub)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, b.Type, err)
		}
		keys = append(keys, &Key{pub: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// checkPublicKey refuses keys keygate does not verify with.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("RSA key of %d bits; keygate takes %d to %d", bits, minRSABits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return fmt.Errorf("RSA public exponent %d is not an odd number >= 3", k.E)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("ECDSA key on a curve other than P-256, P-384 or P-521")
		}
		if _, err := k.ECDH(); err != nil { // not a point of the curve
			return errors.New("ECDSA key is not a valid point of its curve")
		}
	case ed25519.PublicKey:
		return checkEd25519(k)
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// fits reports whether k may verify alg: same family, the right curve, a
// long enough secret, and alg equal to k.Alg when that is set.
func (k *Key) fits(a *algorithm) bool {
	if k.Alg != "" && k.Alg != a.name && !(algorithms[k.Alg] != nil && algorithms[k.Alg].family == famEdDSA && a.family == famEdDSA) {
		return false
	}
	switch a.family {
	case famHMAC:
		return len(k.secret) >= a.hash.Size()
	case famRSA, famPSS:
		_, ok := k.pub.(*rsa.PublicKey)
		return ok
	case famECDSA:
		pub, ok := k.pub.(*ecdsa.PublicKey)
		return ok && pub.Curve == a.curve
	case famEdDSA:
		_, ok := k.pub.(ed25519.PublicKey)
		return ok
	}
	return false
}

// jwk holds the members of a JSON Web Key (RFC 7517) that keygate checks
// before go-jose reads the key material.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	D      string   `json:"d"` // must be absent: a published private key
	K      string   `json:"k"` // must be absent: secrets are never fetched
}

// parseJWK turns one JWK into a Key, or says why it cannot be used.
// go-jose decodes the key material; keygate refuses what it does not
// verify with (use other than sig, private or symmetric keys, curves and
// sizes outside checkPublicKey, an alg of another key type).
func parseJWK(raw json.RawMessage) (*Key, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("not a JWK: %w", err)
	}
	switch {
	case j.Use != "" && j.Use != "sig":
		return nil, fmt.Errorf("kid %q: use %q is not sig", j.Kid, j.Use)
	case j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify"):
		return nil, fmt.Errorf("kid %q: key_ops do not include verify", j.Kid)
	case j.D != "":
		return nil, fmt.Errorf("kid %q: holds private key material; refusing it", j.Kid)
	case j.Kty == "oct" || j.K != "":
		return nil, fmt.Errorf("kid %q: symmetric keys are never taken from a JWKS", j.Kid)
	}
	var fam family
	switch j.Kty {
	case "RSA":
		fam = famRSA
	case "EC":
		fam = famECDSA
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("kid %q: only Ed25519 OKP keys are supported", j.Kid)
		}
		fam = famEdDSA
	default:
		return nil, fmt.Errorf("kid %q: unsupported kty %q", j.Kid, j.Kty)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
	}
	if !k.IsPublic() {
		return nil, fmt.Errorf("kid %q: not a public key", j.Kid)
	}
	if err := checkPublicKey(k.Key); err != nil {
		return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
	}
	if j.Alg != "" {
		a := algorithms[j.Alg]
		if a == nil || a.family != fam && !(fam == famRSA && a.family == famPSS) {
			return nil, fmt.Errorf("kid %q: alg %q does not match kty %s", j.Kid, j.Alg, j.Kty)
		}
	}
	return &Key{ID: j.Kid, Alg: j.Alg, pub: k.Key}, nil
}

// ed25519SmallOrderY are the y coordinates (little endian, sign bit clear)
// of the eight points of order dividing 8: y = 0 (order 4), 1 (the
// identity), two values of order 8 (each with both signs of x), and p-1
// (order 2). With such a public key, signatures anyone can compute verify
// for some messages, or for all of them (the identity).
var ed25519SmallOrderY = [][ed25519.PublicKeySize]byte{
	{},
	{0x01},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

// checkEd25519 refuses Ed25519 public keys that are the wrong size, not
// canonical (y not reduced mod p = 2^255-19, so that one key has two
// spellings) or of small order.
func checkEd25519(k ed25519.PublicKey) error {
	if len(k) != ed25519.PublicKeySize {
		return errors.New("Ed25519 key of the wrong size")
	}
	var y [ed25519.PublicKeySize]byte
	copy(y[:], k)
	y[31] &= 0x7f
	if y[31] == 0x7f && y[0] >= 0xed && strings.Count(string(y[1:31]), "\xff") == 30 {
		return errors.New("Ed25519 key is not canonically encoded")
	}
	for _, small := range ed25519SmallOrderY {
		if y == small {
			return errors.New("Ed25519 key is a point of small order")
		}
	}
	return nil
}

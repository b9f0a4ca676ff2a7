package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
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
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("Ed25519 key of the wrong size")
		}
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

// jwk is a JSON Web Key (RFC 7517), public members only.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"` // must be absent: a published private key
	K      string   `json:"k"` // must be absent: secrets are never fetched
}

// parseJWK turns one JWK into a Key, or says why it cannot be used.
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
	var pub crypto.PublicKey
	var fam family
	switch j.Kty {
	case "RSA":
		n, err1 := b64field(j.N)
		e, err2 := b64field(j.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("kid %q: bad RSA n or e", j.Kid)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		fam = famRSA
	case "EC":
		curve, size := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv], 0
		if curve == nil {
			return nil, fmt.Errorf("kid %q: unsupported curve %q", j.Kid, j.Crv)
		}
		size = (curve.Params().BitSize + 7) / 8
		x, err1 := b64field(j.X)
		y, err2 := b64field(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size { // RFC 7518 6.2.1.2: full size
			return nil, fmt.Errorf("kid %q: bad EC x or y", j.Kid)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
		}
		pub, fam = k, famECDSA
	case "OKP":
		x, err := b64field(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("kid %q: only Ed25519 OKP keys are supported", j.Kid)
		}
		pub, fam = ed25519.PublicKey(x), famEdDSA
	default:
		return nil, fmt.Errorf("kid %q: unsupported kty %q", j.Kid, j.Kty)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("kid %q: %w", j.Kid, err)
	}
	if j.Alg != "" {
		a := algorithms[j.Alg]
		if a == nil || a.family != fam && !(fam == famRSA && a.family == famPSS) {
			return nil, fmt.Errorf("kid %q: alg %q does not match kty %s", j.Kid, j.Alg, j.Kty)
		}
	}
	return &Key{ID: j.Kid, Alg: j.Alg, pub: pub}, nil
}

// b64field decodes a base64url JWK member, tolerating the padding some
// publishers add.
func b64field(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

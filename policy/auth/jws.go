package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
)

// family is a kind of signature, which fixes the kind of key that verifies
// it. A key verifies only algorithms of its own family: this is what stops
// algorithm confusion (an HS256 token "signed" with an RSA public key).
type family int

const (
	famHMAC family = iota + 1
	famRSA         // RSASSA-PKCS1-v1_5
	famPSS         // RSASSA-PSS
	famECDSA
	famEdDSA
)

// algorithm is one JWS "alg" value keygate verifies (RFC 7518, RFC 8037).
type algorithm struct {
	name   string
	family family
	hash   crypto.Hash    // unused for EdDSA
	curve  elliptic.Curve // ECDSA only: the one curve allowed
}

// algorithms are the algorithms keygate verifies. "none" is not one of them,
// in any spelling.
var algorithms = map[string]*algorithm{
	"HS256": {"HS256", famHMAC, crypto.SHA256, nil},
	"HS384": {"HS384", famHMAC, crypto.SHA384, nil},
	"HS512": {"HS512", famHMAC, crypto.SHA512, nil},
	"RS256": {"RS256", famRSA, crypto.SHA256, nil},
	"RS384": {"RS384", famRSA, crypto.SHA384, nil},
	"RS512": {"RS512", famRSA, crypto.SHA512, nil},
	"PS256": {"PS256", famPSS, crypto.SHA256, nil},
	"PS384": {"PS384", famPSS, crypto.SHA384, nil},
	"PS512": {"PS512", famPSS, crypto.SHA512, nil},
	"ES256": {"ES256", famECDSA, crypto.SHA256, elliptic.P256()},
	"ES384": {"ES384", famECDSA, crypto.SHA384, elliptic.P384()},
	"ES512": {"ES512", famECDSA, crypto.SHA512, elliptic.P521()},
	"EdDSA": {"EdDSA", famEdDSA, 0, nil},
	// "Ed25519" is the fully specified name of RFC 9864 for the same thing.
	"Ed25519": {"Ed25519", famEdDSA, 0, nil},
}

// b64 decodes unpadded base64url strictly: no padding, no line breaks, no
// non-zero trailing bits, so that one token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// jws is a parsed JWS in compact serialization whose signature is not
// checked yet.
type jws struct {
	alg     *algorithm
	kid     string
	typ     string
	payload []byte // decoded
	input   string // the signing input: header "." payload, as received
	sig     []byte
}

// looksLikeJWT reports whether token has the shape of a JWS in compact
// serialization: three base64url segments, the header not empty. Only such
// tokens are the JWT source's to decide; an empty payload or signature is
// then the source's to reject (an unsigned "alg":"none" token ends in a
// dot).
func looksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 || token[0] == '.' {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parseJWS splits and decodes a compact JWS; on failure it returns the
// rejection reason (ReasonMalformed or ReasonBadAlg).
func parseJWS(token string) (*jws, string) {
	if !looksLikeJWT(token) {
		return nil, ReasonMalformed
	}
	h, rest, _ := strings.Cut(token, ".")
	p, s, _ := strings.Cut(rest, ".")
	hdrJSON, err1 := b64.DecodeString(h)
	payload, err2 := b64.DecodeString(p)
	sig, err3 := b64.DecodeString(s)
	if err1 != nil || err2 != nil || err3 != nil || len(hdrJSON) == 0 || len(sig) == 0 {
		return nil, ReasonMalformed
	}
	// Header members that point at keys (jku, jwk, x5u, x5c) are ignored on
	// purpose: keys come from configuration, never from the token.
	hdr, err := members(hdrJSON)
	if err != nil {
		return nil, ReasonMalformed
	}
	// RFC 7515 4.1.11: a crit extension we do not understand makes the
	// token invalid, and we understand none. b64 (RFC 7797) changes what is
	// signed, so it is refused with or without crit.
	if _, ok := hdr["crit"]; ok {
		return nil, ReasonMalformed
	}
	if _, ok := hdr["b64"]; ok {
		return nil, ReasonMalformed
	}
	name, ok1 := stringMember(hdr, "alg")
	kid, ok2 := stringMember(hdr, "kid")
	typ, ok3 := stringMember(hdr, "typ")
	if !ok1 || !ok2 || !ok3 || name == "" {
		return nil, ReasonMalformed
	}
	alg, ok := algorithms[name]
	if !ok {
		return nil, ReasonBadAlg // "none", "None", "HS1", ...
	}
	return &jws{alg: alg, kid: kid, typ: typ, payload: payload, input: token[:len(h)+1+len(p)], sig: sig}, ""
}

// stringMember returns the string member name of m; ok is false when it is
// present but not a string. Absent is "", true.
func stringMember(m map[string]json.RawMessage, name string) (s string, ok bool) {
	raw, present := m[name]
	if !present {
		return "", true
	}
	return s, isJSONString(raw) && json.Unmarshal(raw, &s) == nil
}

func isJSONString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"'
}

var errNotObject = errors.New("not a JSON object with unique member names")

// members decodes a JSON object into its members, matched by exact name
// (encoding/json alone would match "ALG" to alg). It refuses anything but
// one object, and duplicate member names, which parsers resolve
// differently.
func members(data []byte) (map[string]json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	m := map[string]json.RawMessage{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, errNotObject
		}
		name, _ := t.(string)
		if _, dup := m[name]; dup {
			return nil, errNotObject
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, errNotObject
		}
		m[name] = raw
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return nil, errNotObject
	}
	if _, err := d.Token(); err != io.EOF { // nothing after it
		return nil, errNotObject
	}
	return m, nil
}

// verifySignature reports whether sig is alg's signature of input under
// key. A key of another family never verifies, whatever its bytes.
func verifySignature(alg *algorithm, key *Key, input string, sig []byte) bool {
	if !key.fits(alg) {
		return false
	}
	if alg.family == famEdDSA {
		pub := key.pub.(ed25519.PublicKey)
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, []byte(input), sig)
	}
	h := alg.hash.New()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	switch alg.family {
	case famHMAC:
		m := hmac.New(alg.hash.New, key.secret)
		m.Write([]byte(input))
		return hmac.Equal(m.Sum(nil), sig)
	case famRSA:
		return rsa.VerifyPKCS1v15(key.pub.(*rsa.PublicKey), alg.hash, digest, sig) == nil
	case famPSS:
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: alg.hash}
		return rsa.VerifyPSS(key.pub.(*rsa.PublicKey), alg.hash, digest, sig, opts) == nil
	case famECDSA:
		// RFC 7518 3.4: R and S as fixed-size big-endian octets, not ASN.1.
		size := (alg.curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(key.pub.(*ecdsa.PublicKey), digest, r, s)
	}
	return false
}

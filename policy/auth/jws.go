package auth

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Parsing and signature checks are go-jose's. This file holds keygate's
// stricter rules around the library: one spelling per token, no duplicate
// or case-folded header members, no crit or b64, alg pinned to the key's
// type, and low-S ECDSA signatures only.

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

// jws is a compact JWS parsed by go-jose whose header passed keygate's
// rules and whose signature is not checked yet.
type jws struct {
	alg *algorithm
	kid string
	typ string
	obj *jose.JSONWebSignature
	sig []byte // the signature, decoded
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

// canonicalSegment reports whether seg (base64url alphabet only, as
// looksLikeJWT checked) is the one spelling of its bytes: a length that is
// not 1 mod 4, and zero bits after the last full byte. go-jose decodes
// leniently; without this check "…Q" and "…R" would be two strings for one
// signature.
func canonicalSegment(seg string) bool {
	if len(seg)%4 == 1 {
		return false
	}
	if len(seg)%4 == 0 {
		return true
	}
	last := strings.IndexByte(b64alphabet, seg[len(seg)-1])
	if len(seg)%4 == 2 {
		return last&0x0f == 0
	}
	return last&0x03 == 0
}

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// parseJWS checks a compact JWS against keygate's rules and has go-jose
// parse it; on failure it returns the rejection reason (ReasonMalformed or
// ReasonBadAlg). lowS refuses high-S ECDSA signatures (JWTConfig.RequireLowS).
func parseJWS(token string, lowS bool) (*jws, string) {
	if !looksLikeJWT(token) {
		return nil, ReasonMalformed
	}
	h, rest, _ := strings.Cut(token, ".")
	p, s, _ := strings.Cut(rest, ".")
	if s == "" || !canonicalSegment(h) || !canonicalSegment(p) || !canonicalSegment(s) {
		return nil, ReasonMalformed
	}
	hdrJSON, err := b64.DecodeString(h)
	if err != nil || len(hdrJSON) == 0 {
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
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(name)})
	if err != nil || len(obj.Signatures) != 1 || len(obj.Signatures[0].Signature) == 0 {
		return nil, ReasonMalformed
	}
	sig := obj.Signatures[0].Signature
	if lowS && alg.family == famECDSA && highS(alg.curve, sig) {
		return nil, ReasonMalformed
	}
	return &jws{alg: alg, kid: kid, typ: typ, obj: obj, sig: sig}, ""
}

// highS reports whether sig is an RFC 7518 3.4 ECDSA signature (R and S as
// fixed-size big-endian octets) on curve with S above n/2. For every valid
// (R, S) the pair (R, n-S) verifies too; taking only the low one leaves
// each signature one spelling, so that nobody can copy a token into a
// second string without the key. A signature of the wrong size is left to
// fail verification.
func highS(curve elliptic.Curve, sig []byte) bool {
	size := (curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	s := new(big.Int).SetBytes(sig[size:])
	return s.Cmp(new(big.Int).Rsh(curve.Params().N, 1)) > 0
}

// payload returns the token's payload; it is trusted only after verify.
func (t *jws) payload() []byte { return t.obj.UnsafePayloadWithoutVerification() }

// verify reports whether key verifies t's signature. A key of another
// family never verifies, whatever its bytes.
func (t *jws) verify(key *Key) bool {
	if !key.fits(t.alg) {
		return false
	}
	var vk any
	switch {
	case t.alg.family == famHMAC:
		vk = key.secret
	case t.alg.name == "Ed25519":
		// go-jose knows this algorithm only by its older name, EdDSA.
		vk = ed25519Verifier(key.pub.(ed25519.PublicKey))
	default:
		vk = key.pub
	}
	_, err := t.obj.Verify(vk)
	return err == nil
}

// ed25519Verifier verifies the RFC 9864 "Ed25519" algorithm, which is
// EdDSA under a fully specified name.
type ed25519Verifier ed25519.PublicKey

var errBadSignature = errors.New("signature does not verify")

// VerifyPayload implements jose.OpaqueVerifier.
func (v ed25519Verifier) VerifyPayload(payload, sig []byte, alg jose.SignatureAlgorithm) error {
	if alg != "Ed25519" || !ed25519.Verify(ed25519.PublicKey(v), payload, sig) {
		return errBadSignature
	}
	return nil
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

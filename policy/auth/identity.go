package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
)

// identity returns a token identity "kind:<32 hex digits>" derived from
// parts, each length-prefixed so that no two lists of parts collide.
func identity(kind string, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// jwtIdentity is a verified JWT's identity for limits, caches and
// idempotency, taken from its claims, never from the token string: the
// issuer's id for it (iss and jti), else iss, sub and iat, else (neither
// jti nor iat) the signed header and payload, which nobody without the key
// can respell.
func jwtIdentity(claims map[string]json.RawMessage, signed string) string {
	iss, _ := stringMember(claims, "iss")
	if jti, ok := stringMember(claims, "jti"); ok && jti != "" {
		return identity("jwt", iss, "jti", jti)
	}
	if iat, has, err := numericDate(claims, "iat"); has && err == nil {
		sub, _ := stringMember(claims, "sub")
		return identity("jwt", iss, "sub", sub, "iat", strconv.FormatInt(iat.UnixNano(), 10))
	}
	return identity("jwt", "signed", signed)
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/policy"
)

// JWT defaults and bounds.
const (
	DefaultLeeway = 30 * time.Second
	maxLeeway     = 5 * time.Minute
	// maxCandidates bounds the keys tried on a token without a kid, so that
	// a large key set does not turn each bad token into many verifications.
	maxCandidates = 8
)

// JWTConfig says which JWTs are accepted. Issuers, Audiences and at least
// one key (Secret, PublicKeys or JWKS) are required.
type JWTConfig struct {
	// Issuers are the accepted "iss" values; the claim is required.
	Issuers []string
	// Audiences are keygate's names; "aud" (a string or an array) is
	// required and must hold at least one of them.
	Audiences []string
	// Secret, when set, verifies HS256 (and HS384, HS512 when at least 48
	// and 64 bytes long). At least 32 bytes.
	Secret []byte
	// PublicKeys are static verification keys (see ParsePEMKeys). They
	// serve tokens whatever their kid.
	PublicKeys []*Key
	// JWKS, when set, provides keys by kid. It never provides HMAC keys.
	JWKS *JWKS
	// Algorithms are the accepted "alg" values; empty means every
	// algorithm some configured key can verify. "none" is never accepted.
	Algorithms []string
	// Types, when set, are the accepted "typ" header values (such as
	// "at+jwt", RFC 9068), compared without case and without an
	// "application/" prefix; a token without typ is then refused. Empty
	// means any typ, or none.
	Types []string
	// Leeway absorbs clock skew in exp, nbf and iat; 0 means DefaultLeeway
	// (30s). At most 5m.
	Leeway time.Duration
	// MaxAge, when set, refuses tokens issued longer ago than this; "iat"
	// is then required.
	MaxAge time.Duration
	// RequireLowS refuses ECDSA signatures (ES256/384/512) whose S is above
	// n/2. Each valid signature (R, S) has a twin (R, n-S) that verifies
	// too, so anyone holding a token can respell it; accepting both is
	// harmless for limits and idempotency, which key a token by its
	// canonical identity (see policy.Token.Identity), but a deployment whose
	// identity provider emits only low-S signatures can refuse the twins
	// outright. Off by default: Go, OpenSSL and Java signers do not
	// normalize S, and about half of their tokens would be refused.
	RequireLowS bool
	// AllowNoExp accepts tokens without "exp", which then never expire.
	// By default exp is required.
	AllowNoExp bool
	// Claims says where products, operations and the name are.
	Claims ClaimMapping
}

// JWT is a Source that verifies signed JWTs (JWS compact serialization).
// It recognizes any token of three dot-separated base64url segments, and
// decides it. Make one with NewJWT; the zero value is not usable. It is safe
// for concurrent use.
type JWT struct {
	cfg    JWTConfig
	static []*Key
	algs   map[string]bool
	claims ClaimMapping
	now    func() time.Time
}

// NewJWT checks cfg and returns a JWT source; the error lists every
// problem, each naming its field.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(cfg.Issuers) == 0 || slices.Contains(cfg.Issuers, "") {
		bad("Issuers: required, and none may be empty")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		bad("Audiences: required, and none may be empty")
	}
	j := &JWT{cfg: cfg, algs: map[string]bool{}, claims: cfg.Claims.withDefaults(), now: time.Now}
	if cfg.Secret != nil {
		k, err := NewHMACKey(cfg.Secret)
		if err != nil {
			bad("Secret: %v", err)
		} else {
			j.static = append(j.static, k)
		}
	}
	for i, k := range cfg.PublicKeys {
		if k == nil || k.pub == nil {
			bad("PublicKeys[%d]: not a public key", i)
			continue
		}
		j.static = append(j.static, k)
	}
	if len(j.static) == 0 && cfg.JWKS == nil && cfg.Secret == nil {
		bad("Secret, PublicKeys, JWKS: set at least one")
	}
	// usable reports whether some configured key could verify a.
	usable := func(a *algorithm) bool {
		if cfg.JWKS != nil && a.family != famHMAC {
			return true
		}
		for _, k := range j.static {
			if k.fits(a) {
				return true
			}
		}
		return false
	}
	if len(cfg.Algorithms) == 0 {
		for name, a := range algorithms {
			if usable(a) {
				j.algs[name] = true
			}
		}
	}
	for _, name := range cfg.Algorithms {
		switch a := algorithms[name]; {
		case a == nil:
			bad("Algorithms: %q is not one of HS256..512, RS256..512, PS256..512, ES256..512, EdDSA", name)
		case !usable(a):
			bad("Algorithms: no configured key can verify %s", name)
		default:
			j.algs[name] = true
		}
	}
	if cfg.Leeway < 0 || cfg.Leeway > maxLeeway {
		bad("Leeway: %s must be between 0 and %s", cfg.Leeway, maxLeeway)
	}
	if cfg.MaxAge < 0 {
		bad("MaxAge: %s must not be negative", cfg.MaxAge)
	}
	j.cfg.Leeway = orDefault(cfg.Leeway, DefaultLeeway)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: JWT: %w", err)
	}
	return j, nil
}

// Authenticate implements Source. Tokens that do not look like a JWT are
// not its own; the others are verified in this order: header (alg, crit,
// typ), key, signature, then the claims iss, aud, exp, nbf, iat. Claims are
// only looked at once the signature holds.
func (j *JWT) Authenticate(ctx context.Context, token string) (*policy.Token, string, error) {
	if !looksLikeJWT(token) {
		return nil, "", nil
	}
	if len(token) > MaxTokenBytes {
		return nil, ReasonMalformed, nil
	}
	t, reason := parseJWS(token, j.cfg.RequireLowS)
	if reason != "" {
		return nil, reason, nil
	}
	if !j.algs[t.alg.name] {
		return nil, ReasonBadAlg, nil
	}
	if len(j.cfg.Types) > 0 && !j.typeOK(t.typ) {
		return nil, ReasonMalformed, nil
	}
	keys, reason, jwksErr := j.candidates(ctx, t)
	switch reason {
	case "":
	case ReasonUnavailable:
		return nil, reason, jwksErr
	default:
		return nil, reason, nil
	}
	verified := false
	for _, k := range keys {
		if t.verify(k) {
			verified = true
			break
		}
	}
	switch {
	case !verified && jwksErr != nil:
		return nil, ReasonUnavailable, jwksErr
	case !verified:
		return nil, ReasonBadSignature, nil
	}
	return j.check(t.payload(), token[:strings.LastIndexByte(token, '.')])
}

// candidates returns the keys that may verify t: the static keys of its
// algorithm, and the JWKS keys of its kid (all of them when it has none).
// jwksErr is set when the JWKS could not be had but static keys could.
func (j *JWT) candidates(ctx context.Context, t *jws) (keys []*Key, reason string, jwksErr error) {
	for _, k := range j.static {
		if k.fits(t.alg) {
			keys = append(keys, k)
		}
	}
	kidKnown := false
	if j.cfg.JWKS != nil && t.alg.family != famHMAC {
		set, err := j.cfg.JWKS.keys(ctx, t.kid)
		if err != nil {
			if len(keys) == 0 {
				return nil, ReasonUnavailable, err
			}
			jwksErr = err
		}
		for _, k := range set {
			if t.kid != "" && k.ID != t.kid {
				continue
			}
			kidKnown = true
			if k.fits(t.alg) {
				keys = append(keys, k)
			}
		}
		if err == nil && t.kid != "" && !kidKnown && len(keys) == 0 {
			return nil, ReasonUnknownKey, nil
		}
	}
	switch {
	case len(keys) == 0:
		return nil, ReasonBadAlg, nil // e.g. kid of an RSA key with alg ES256 or HS256
	case len(keys) > maxCandidates && t.kid == "":
		return nil, ReasonUnknownKey, nil
	}
	return keys, "", jwksErr
}

// typeOK compares typ with the accepted types as RFC 7515 4.1.9 says:
// without case, and with "application/" implied.
func (j *JWT) typeOK(typ string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		return strings.TrimPrefix(s, "application/")
	}
	for _, want := range j.cfg.Types {
		if typ != "" && norm(typ) == norm(want) {
			return true
		}
	}
	return false
}

// check validates verified claims and builds the token's record; signed is
// the token's header and payload, as signed.
func (j *JWT) check(payload []byte, signed string) (*policy.Token, string, error) {
	claims, err := members(payload)
	if err != nil {
		return nil, ReasonMalformed, nil
	}
	now, leeway := j.now(), j.cfg.Leeway
	if iss, ok := stringMember(claims, "iss"); !ok || !contains(j.cfg.Issuers, iss) {
		return nil, ReasonBadIssuer, nil
	}
	auds, _, ok := audiences(claims)
	if !ok {
		return nil, ReasonMalformed, nil
	}
	if !anyOf(auds, j.cfg.Audiences) {
		return nil, ReasonBadAudience, nil
	}
	exp, hasExp, err1 := numericDate(claims, "exp")
	nbf, hasNbf, err2 := numericDate(claims, "nbf")
	iat, hasIat, err3 := numericDate(claims, "iat")
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return nil, ReasonMalformed, nil
	case !hasExp && !j.cfg.AllowNoExp:
		return nil, ReasonMalformed, nil
	case hasExp && !now.Before(exp.Add(leeway)):
		return nil, ReasonExpired, nil
	case hasNbf && now.Add(leeway).Before(nbf):
		return nil, ReasonNotYetValid, nil
	case hasIat && now.Add(leeway).Before(iat):
		return nil, ReasonNotYetValid, nil // issued in the future: a clock or a forgery problem
	case j.cfg.MaxAge > 0 && !hasIat:
		return nil, ReasonMalformed, nil
	case j.cfg.MaxAge > 0 && now.Sub(iat) > j.cfg.MaxAge+leeway:
		return nil, ReasonExpired, nil
	}
	var until time.Time
	if hasExp {
		until = exp.Add(leeway)
	}
	tok, reason := j.claims.token("jwt", claims, until)
	if tok != nil {
		tok.SetIdentity(jwtIdentity(claims, signed))
	}
	return tok, reason, nil
}

// Package auth decides whether a Bearer token is valid and what it may do.
//
// A token is checked by a Chain of sources, asked in a fixed order: the
// tokens file, the Redis token store, JWT verification, then OAuth 2.0 token
// introspection (RFC 7662). Each source recognizes its own tokens cheaply
// and passes the others on: the file knows the hashes it lists, the store
// knows the "kg_" tokens it issued, the JWT source takes any three
// dot-separated base64url segments, and introspection takes whatever opaque
// token is left. The first source that recognizes a token decides: it
// accepts it, rejects it with a reason, or reports that it could not check
// it. A token is never shown to a source that comes after the one that
// recognized it, and a remote source (introspection) is shown only tokens
// whose shape no other source could claim: keygate's "kg_" prefix in any
// case, anything JWT-like when JWTs are verified, a token the tokens file
// listed. A keygate token, or a near-miss of one, never reaches a
// third-party introspection endpoint.
//
// Every rejection carries one of a small fixed set of reasons (Reasons), for
// logs and metrics; no reason or error ever carries the token itself.
package auth

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/policy"
)

// Rejection reasons, for logs and metrics. Each maps to one 401 in the
// proxy except ReasonUnavailable, which comes with an error.
const (
	ReasonMissing      = policy.ReasonMissing   // no Bearer token
	ReasonUnknown      = policy.ReasonUnknown   // no source knows it
	ReasonExpired      = policy.ReasonExpired   // past exp (or MaxAge)
	ReasonProduct      = policy.ReasonProduct   // valid, but grants no product
	ReasonOperation    = policy.ReasonOperation // valid, but its operations claim lists none
	ReasonNotYetValid  = "not_yet_valid"        // before nbf, or iat in the future
	ReasonBadSignature = "bad_signature"        // signature does not verify
	ReasonBadIssuer    = "bad_issuer"           // iss not accepted
	ReasonBadAudience  = "bad_audience"         // aud names none of ours
	ReasonBadAlg       = "bad_alg"              // alg none, unknown, not allowed, or no key of its type
	ReasonUnknownKey   = "unknown_key"          // kid not in the key set, even after a refetch
	ReasonMalformed    = "malformed"            // not a well-formed token of its kind
	ReasonRevoked      = "revoked"              // revoked in the token store
	ReasonInactive     = "inactive"             // the introspection endpoint says active: false
	ReasonTokenType    = "token_type"           // introspection: active, but not an access token (refresh, DPoP, ...)
	ReasonUnavailable  = "unavailable"          // the source could not check it (Redis, JWKS or introspection down)
)

// Reasons lists every reason a Chain can give, for pre-registering metric
// labels.
var Reasons = []string{
	ReasonMissing, ReasonUnknown, ReasonExpired, ReasonProduct, ReasonOperation, ReasonNotYetValid,
	ReasonBadSignature, ReasonBadIssuer, ReasonBadAudience, ReasonBadAlg, ReasonUnknownKey,
	ReasonMalformed, ReasonRevoked, ReasonInactive, ReasonTokenType, ReasonUnavailable,
}

// MaxTokenBytes bounds the tokens a Chain looks at; longer ones are
// malformed without any source seeing them.
const MaxTokenBytes = 8192

// Source checks tokens of one kind. Its answer is one of:
//
//   - tok != nil: accepted (reason "", err nil);
//   - nil, "", nil: not this source's kind of token; the Chain asks the next;
//   - nil, reason, nil: recognized and rejected, for reason; final;
//   - nil, ReasonUnavailable, err: recognized but could not be checked
//     (infrastructure failure); final.
//
// Implementations must be safe for concurrent use, honour ctx, and never put
// the token in reason or err.
type Source interface {
	Authenticate(ctx context.Context, token string) (tok *policy.Token, reason string, err error)
}

// Chain asks its sources in order; the first that recognizes a token
// decides. It is safe for concurrent use.
type Chain struct {
	sources []Source
	now     func() time.Time
}

// NewChain returns a chain of sources, asked in the order given. The
// documented order is file, store, JWT, introspection: cheap local checks
// first, the network last. A nil source is an error.
func NewChain(sources ...Source) (*Chain, error) {
	for _, s := range sources {
		if s == nil {
			return nil, errors.New("auth: nil source in chain")
		}
	}
	return &Chain{sources: sources, now: time.Now}, nil
}

// Authenticate checks token against the sources. A token no source
// recognizes is ReasonUnknown. A token a source accepted that is past its
// expiry is ReasonExpired, whatever the source said. A nil Chain knows no
// token.
func (c *Chain) Authenticate(ctx context.Context, token string) (*policy.Token, string, error) {
	if token == "" {
		return nil, ReasonMissing, nil
	}
	if len(token) > MaxTokenBytes || !bearerSyntax(token) {
		return nil, ReasonMalformed, nil
	}
	if c == nil {
		return nil, ReasonUnknown, nil
	}
	for _, s := range c.sources {
		if _, ok := s.(remoteSource); ok && c.claimedLocally(token) {
			return nil, ReasonUnknown, nil
		}
		tok, reason, err := s.Authenticate(ctx, token)
		switch {
		case err != nil:
			return nil, ReasonUnavailable, err
		case tok != nil:
			if tok.Expired(c.now()) {
				return nil, ReasonExpired, nil
			}
			return tok, "", nil
		case reason != "":
			return nil, reason, nil
		}
	}
	return nil, ReasonUnknown, nil
}

// bearerSyntax reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". Anything
// else (spaces, quotes, control bytes) cannot be a token we issued or
// verify, and is never sent to an introspection endpoint.
func bearerSyntax(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// Lookuper finds a token's record by the token; nil means unknown.
// *TokenFile and *policy.Tokens are Lookupers.
type Lookuper interface {
	Lookup(token string) *policy.Token
}

// FileSource is a Source over a tokens file (or any Lookuper). It recognizes
// the tokens the file lists, by hash, and passes the others on.
type FileSource struct {
	tokens Lookuper
	now    func() time.Time
	memory fileMemory
}

// NewFileSource returns a source over tokens, which must not be nil.
func NewFileSource(tokens Lookuper) (*FileSource, error) {
	if tokens == nil {
		return nil, errors.New("auth: NewFileSource: nil tokens")
	}
	return &FileSource{tokens: tokens, now: time.Now}, nil
}

// Authenticate implements Source: a listed token is accepted, or rejected
// as expired; an unlisted one is not the file's.
func (f *FileSource) Authenticate(_ context.Context, token string) (*policy.Token, string, error) {
	tok := f.tokens.Lookup(token)
	switch {
	case tok == nil:
		return nil, "", nil
	case tok.Expired(f.now()):
		return nil, ReasonExpired, nil
	}
	f.memory.add(token)
	return tok, "", nil
}

// Func adapts a function to a Source, for tests and small custom sources.
type Func func(ctx context.Context, token string) (*policy.Token, string, error)

// Authenticate implements Source.
func (f Func) Authenticate(ctx context.Context, token string) (*policy.Token, string, error) {
	return f(ctx, token)
}

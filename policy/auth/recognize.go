package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
)

// A token goes to a remote source (an introspection endpoint) only when no
// other source could claim its shape: the Chain asks every shapeClaimer
// first, and refuses a claimed token locally as unknown. Near-misses of
// keygate's own tokens (a store token in another case, a JWT cut short or
// padded, a token removed from the tokens file) thus never leave keygate.

// remoteSource is implemented by sources that send tokens off the machine.
type remoteSource interface {
	Source
	remote()
}

// shapeClaimer is implemented by sources that can tell tokens of their own
// kind, or near-misses of it, even when they do not accept them.
type shapeClaimer interface {
	claimsShape(token string) bool
}

func (*Introspector) remote() {}

// keygateShaped reports whether token starts with keygate's own token
// prefix in any case ("kg_", "KG_", "Kg_"), whether or not the store is on.
func keygateShaped(token string) bool {
	return hasPrefixFold(token, DefaultTokenPrefix)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// claimsShape implements shapeClaimer: the store's prefix in any case.
func (s *Store) claimsShape(token string) bool { return hasPrefixFold(token, s.cfg.TokenPrefix) }

// claimsShape implements shapeClaimer: anything with a dot whose first
// segment, padded or not, in base64url or base64, decodes to a JSON object's
// start. That covers JWTs with a segment missing or added, padding, or
// characters outside base64url, and JWEs.
func (j *JWT) claimsShape(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	head = strings.TrimRight(head, "=")
	for _, e := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		n := min(len(head), 8) &^ 3 // enough for "{" and white space before a quote
		if b, err := e.DecodeString(head[:n]); err == nil && len(strings.TrimLeft(string(b), " \t\r\n")) > 0 &&
			strings.TrimLeft(string(b), " \t\r\n")[0] == '{' {
			return true
		}
	}
	return false
}

// maxRemembered bounds the file tokens a FileSource remembers.
const maxRemembered = 100_000

// fileMemory remembers the hashes of the tokens a FileSource has accepted,
// so that one removed from the file is still recognized as the file's (and
// refused as unknown) rather than sent to an introspection endpoint.
type fileMemory struct {
	mu   sync.Mutex
	seen map[tokenKey]struct{}
}

func (m *fileMemory) add(token string) {
	key := sha256.Sum256([]byte(token))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = make(map[tokenKey]struct{})
	}
	if len(m.seen) < maxRemembered {
		m.seen[key] = struct{}{}
	}
}

func (m *fileMemory) has(token string) bool {
	key := sha256.Sum256([]byte(token))
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.seen[key]
	return ok
}

// claimsShape implements shapeClaimer: a token the file lists, or listed
// when this FileSource last accepted it.
func (f *FileSource) claimsShape(token string) bool {
	return f.tokens.Lookup(token) != nil || f.memory.has(token)
}

// claimedLocally reports whether a token must not be shown to a remote
// source: keygate's prefix, or some source of the chain claims its shape.
func (c *Chain) claimedLocally(token string) bool {
	if keygateShaped(token) {
		return true
	}
	for _, s := range c.sources {
		if sc, ok := s.(shapeClaimer); ok && sc.claimsShape(token) {
			return true
		}
	}
	return false
}

// Remote reports whether checking a token may cost a call off the machine:
// the chain has a token store (Redis), a JWKS or an introspection endpoint.
// The proxy then consults its failure-counting limits before the chain, so
// that a client over its budget costs no remote call.
func (c *Chain) Remote() bool {
	if c == nil {
		return false
	}
	for _, s := range c.sources {
		switch s := s.(type) {
		case *Store, remoteSource:
			return true
		case *JWT:
			if s.cfg.JWKS != nil {
				return true
			}
		}
	}
	return false
}

package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Tokens is a validated set of access tokens, looked up by the SHA-256 of the
// token; the tokens themselves are never stored. The zero value and nil hold
// no tokens.
type Tokens struct {
	List []*Token `yaml:"tokens" what:"token"`

	byHash map[[sha256.Size]byte]*Token
}

// Token is one access token's record.
type Token struct {
	Name       string   `yaml:"name"`       // label for logs and metrics
	SHA256     string   `yaml:"sha256"`     // hex SHA-256 of the token
	Products   []string `yaml:"products"`   // products it may act on; ["*"]: all
	Operations []string `yaml:"operations"` // route names it may call; empty: all
	Expires    string   `yaml:"expires"`    // RFC 3339 time from which it is refused; empty: never

	located
	identity string
	expires  time.Time
	global   bool
	products map[string]struct{}
	ops      map[string]struct{}
}

// Rejection reasons, for logs and metrics.
const (
	ReasonMissing   = "missing"   // no Bearer token
	ReasonUnknown   = "unknown"   // not in any source
	ReasonExpired   = "expired"   // past its expiry
	ReasonOperation = "operation" // not allowed to call this route
	ReasonProduct   = "product"   // not allowed to act on this product
)

// LoadTokens reads and validates a tokens file. When p is not nil, operations
// must name routes of p.
func LoadTokens(path string, p *Policy) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTokens(path, data, p)
}

// ParseTokens validates a tokens document; the error is a *FileError listing
// every problem. When p is not nil, operations must name routes of p.
func ParseTokens(file string, data []byte, p *Policy) (*Tokens, error) {
	t := &Tokens{}
	ps := decodeYAML(data, t)
	if len(ps) == 0 || len(t.List) > 0 {
		t.validate(&ps, p)
	}
	if err := ps.Err(file); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) validate(ps *problems, p *Policy) {
	t.byHash = make(map[[sha256.Size]byte]*Token, len(t.List))
	names := map[string]int{}
	for _, tok := range t.List {
		if tok == nil {
			ps.Add(0, "empty token entry")
			continue
		}
		if !nameRE.MatchString(tok.Name) {
			ps.At(tok.pos("name"), "token name %q must be lower case letters, digits, - or _ (1-64, starting with a letter)", tok.Name)
		} else if l, dup := names[tok.Name]; dup {
			ps.At(tok.pos("name"), "token name %q is already used at line %d", tok.Name, l)
		}
		names[tok.Name] = tok.line
		var sum [sha256.Size]byte
		if b, err := hex.DecodeString(tok.SHA256); err != nil || len(b) != sha256.Size {
			ps.At(tok.pos("sha256"), "token %s: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)", tok.Name)
		} else {
			copy(sum[:], b)
			if other, dup := t.byHash[sum]; dup {
				ps.At(tok.pos("sha256"), "token %s: same sha256 as token %s", tok.Name, other.Name)
			}
			t.byHash[sum] = tok
		}
		if len(tok.Products) == 0 {
			ps.At(tok.pos("products"), "token %s: products must list product ids, or \"*\" for all", tok.Name)
		}
		tok.products = make(map[string]struct{}, len(tok.Products))
		for _, pr := range tok.Products {
			if pr == "*" {
				tok.global = true
			} else if pr == "" || strings.ContainsAny(pr, " \t\r\n") {
				ps.At(tok.pos("products"), "token %s: product %q is not a product id", tok.Name, pr)
			}
			tok.products[pr] = struct{}{}
		}
		if tok.global && len(tok.Products) > 1 {
			ps.At(tok.pos("products"), "token %s: \"*\" must stand alone in products", tok.Name)
		}
		if len(tok.Operations) > 0 {
			tok.ops = make(map[string]struct{}, len(tok.Operations))
		}
		for _, op := range tok.Operations {
			if p != nil && !p.hasRoute(op) {
				ps.At(tok.pos("operations"), "token %s: operation %q is not a route of the policy", tok.Name, op)
			}
			tok.ops[op] = struct{}{}
		}
		if tok.Expires != "" {
			exp, err := time.Parse(time.RFC3339, tok.Expires)
			if err != nil {
				ps.At(tok.pos("expires"), "token %s: expires %q must be an RFC 3339 time such as 2027-01-01T00:00:00Z", tok.Name, tok.Expires)
			}
			tok.expires = exp
		}
	}
}

func (p *Policy) hasRoute(name string) bool {
	for _, r := range p.Routes {
		if r.Name == name {
			return true
		}
	}
	return false
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.List)
}

// Lookup returns the record of a token, or nil when it is unknown.
func (t *Tokens) Lookup(token string) *Token {
	if t == nil || token == "" {
		return nil
	}
	return t.byHash[sha256.Sum256([]byte(token))]
}

// NewToken returns a validated record for a token found by code rather than
// in a tokens file: a token store, a JWT's claims, an introspection answer.
// name labels it in logs and may come from elsewhere (a JWT subject), so it
// need not follow the file's naming rule: 1 to 200 printable characters.
// products and operations follow the file's rules: products lists product ids
// or is exactly ["*"]; operations names routes, and nil or empty means all. A
// zero expires means never. SHA256 is left empty for the caller to fill in when
// it knows the hash. The error lists every problem.
func NewToken(name string, products, operations []string, expires time.Time) (*Token, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if name == "" || len(name) > 200 || !utf8.ValidString(name) || strings.IndexFunc(name, notPrintable) >= 0 {
		bad("token name %q must be 1 to 200 printable characters", name)
	}
	t := &Token{Name: name, Products: products, Operations: operations, expires: expires}
	if len(products) == 0 {
		bad("products must list product ids, or \"*\" for all")
	}
	t.products = make(map[string]struct{}, len(products))
	for _, pr := range products {
		if pr == "*" {
			t.global = true
		} else if pr == "" || strings.ContainsAny(pr, " \t\r\n") {
			bad("product %q is not a product id", pr)
		}
		t.products[pr] = struct{}{}
	}
	if t.global && len(products) > 1 {
		bad("\"*\" must stand alone in products")
	}
	if len(operations) > 0 {
		t.ops = make(map[string]struct{}, len(operations))
	}
	for _, op := range operations {
		if !nameRE.MatchString(op) {
			bad("operation %q is not a route name", op)
		}
		t.ops[op] = struct{}{}
	}
	if !expires.IsZero() {
		t.Expires = expires.UTC().Format(time.RFC3339)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// Identity returns the token's canonical identity, for limits, caches and
// idempotency: one string per token, however the client spells it. A token
// source sets it (SetIdentity) from what it verified, such as a JWT's issuer
// and id; a token from the tokens file or the token store is its SHA-256,
// "sha256:<hex>". "" means none is known (a record built by NewToken whose
// source set neither).
func (t *Token) Identity() string {
	switch {
	case t.identity != "":
		return t.identity
	case t.SHA256 != "":
		return "sha256:" + strings.ToLower(t.SHA256)
	}
	return ""
}

// SetIdentity sets the identity Identity returns. Token sources call it on
// the records they build, before sharing them.
func (t *Token) SetIdentity(id string) { t.identity = id }

// ExpiresAt returns the time from which the token is refused; zero means
// never.
func (t *Token) ExpiresAt() time.Time { return t.expires }

// Expired reports whether the token is past its expiry at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.expires.IsZero() && !now.Before(t.expires)
}

// Allows reports whether the token may call route for product; when it may
// not, reason says why (ReasonOperation or ReasonProduct).
// A route without a product is open to global tokens only, so a token scoped
// to some products cannot reach data that spans all of them.
func (t *Token) Allows(r *Route, product string) (ok bool, reason string) {
	if t.ops != nil {
		if _, ok := t.ops[r.Name]; !ok {
			return false, ReasonOperation
		}
	}
	if t.global {
		return true, ""
	}
	if !r.HasProduct() {
		return false, ReasonProduct
	}
	if _, ok := t.products[product]; !ok {
		return false, ReasonProduct
	}
	return true, ""
}

// HashToken returns a short, stable, non-reversible label of a secret (a
// token or a license key) for logs: the first 12 hex digits of its SHA-256.
func HashToken(secret string) string {
	var b [12]byte
	return string(AppendHashToken(b[:0], secret))
}

package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sha(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

const otherProduct = "prd_zyxwvutsrqponmlkji"

// tokensDoc is a valid tokens file: a global token, a product-scoped one, one
// limited to some operations, and one that expires.
var tokensDoc = fmt.Sprintf(`tokens:
  - name: admin
    sha256: %s
    products: ["*"]
  - name: shop
    sha256: %s
    products: [%s]
  - name: activator
    sha256: %s
    products: ["*"]
    operations: [activate, deactivate]
  - name: trial
    sha256: %s
    products: [%s, %s]
    expires: 2027-01-01T00:00:00Z
`, sha("admin-secret"), strings.ToUpper(sha("shop-secret")), okProduct, sha("activator-secret"), sha("trial-secret"), okProduct, otherProduct)

var hashX = sha("x") // the hash of some token

// tokenProblemCases are broken tokens files and their whole report.
// FuzzParseTokens starts from them too.
var tokenProblemCases = []struct {
	name string
	doc  string
	want []string
}{
	{"empty file", "", []string{"t.yaml: file is empty"}},
	{"two documents", "tokens: []\n---\ntokens: []\n", []string{"t.yaml:2: only one YAML document is allowed"}},
	// the parser names the line where the broken block starts; keygate names the line out of step.
	{"syntax error", "tokens:\n  - name: a\n   sha256: x\n", []string{
		`t.yaml:2:5: token a: products must list product ids, or "*" for all`,
		"t.yaml:3:4: indentation: this line lines up with no enclosing block (expected column 5)",
		"t.yaml:3:13: token a: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)",
	}},
	{"unclosed flow", "tokens: [\n", []string{"t.yaml:1: did not find expected node content"}},
	{"unknown fields", "tokns: []\ntokens:\n  - name: a\n    sha256: " + hashX + "\n    products: [\"*\"]\n    scope: all\n",
		[]string{
			`t.yaml:1:1: unknown field "tokns" in the file (did you mean tokens?)`,
			`t.yaml:6:5: unknown field "scope" in token`,
		}},
	{"products not a list", "tokens:\n  - name: a\n    sha256: " + hashX + "\n    products: \"*\"\n",
		[]string{`t.yaml:4:15: products in token must be a list such as [a, b], not "*"`}},
	{"empty entry", "tokens: [~]\n", []string{"t.yaml: empty token entry"}},
	{"mapping as a key", "tokens:\n  - &t {name: a}\n  - {<<, *t}\n", []string{"t.yaml:3: a key must be a plain value, not a list or a mapping"}},
	{"bad name", "tokens:\n  - name: Admin Token\n    sha256: " + hashX + "\n    products: [\"*\"]\n",
		[]string{`t.yaml:2:11: token name "Admin Token" must be lower case letters, digits, - or _ (1-64, starting with a letter)`}},
	{"duplicate name", "tokens:\n  - {name: a, sha256: " + hashX + ", products: [\"*\"]}\n  - {name: a, sha256: " + sha("y") + ", products: [\"*\"]}\n",
		[]string{`t.yaml:3:12: token name "a" is already used at line 2`}},
	{"bad hashes", "tokens:\n  - {name: a, sha256: " + hashX[:63] + ", products: [\"*\"]}\n  - {name: b, sha256: " + hashX[:62] + "zz, products: [\"*\"]}\n  - {name: c, products: [\"*\"]}\n",
		[]string{
			"t.yaml:2:23: token a: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)",
			"t.yaml:3:23: token b: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)",
			"t.yaml:4:5: token c: sha256 must be 64 hex digits (echo -n TOKEN | sha256sum)",
		}},
	{"duplicate hash", "tokens:\n  - {name: a, sha256: " + hashX + ", products: [\"*\"]}\n  - {name: b, sha256: " + strings.ToUpper(hashX) + ", products: [\"*\"]}\n",
		[]string{"t.yaml:3:23: token b: same sha256 as token a"}},
	{"no products", "tokens:\n  - {name: a, sha256: " + hashX + "}\n",
		[]string{`t.yaml:2:5: token a: products must list product ids, or "*" for all`}},
	{"bad products", "tokens:\n  - {name: a, sha256: " + hashX + ", products: [\"\", \"a b\", \"*\"]}\n",
		[]string{
			`t.yaml:2:99: token a: product "" is not a product id`,
			`t.yaml:2:99: token a: product "a b" is not a product id`,
			`t.yaml:2:99: token a: "*" must stand alone in products`,
		}},
	{"unknown operation", "tokens:\n  - {name: a, sha256: " + hashX + ", products: [\"*\"], operations: [get, fetch]}\n",
		[]string{`t.yaml:2:118: token a: operation "fetch" is not a route of the policy`}},
	{"bad expiry", "tokens:\n  - {name: a, sha256: " + hashX + ", products: [\"*\"], expires: \"2027-01-01\"}\n",
		[]string{`t.yaml:2:115: token a: expires "2027-01-01" must be an RFC 3339 time such as 2027-01-01T00:00:00Z`}},
}

func TestParseTokensProblems(t *testing.T) {
	for _, tt := range tokenProblemCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokens("t.yaml", []byte(tt.doc), Default())
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseTokens(%q) = %v, want a *FileError", tt.doc, err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("ParseTokens(%q) problems mismatch (-want +got):\n%s", tt.doc, diff)
			}
		})
	}
}

func TestParseTokensWithoutPolicy(t *testing.T) {
	doc := "tokens:\n  - {name: a, sha256: " + sha("x") + ", products: [\"*\"], operations: [anything]}\n"
	if _, err := ParseTokens("t.yaml", []byte(doc), nil); err != nil {
		t.Errorf("ParseTokens(nil policy) = %v, want operations unchecked", err)
	}
	if toks, err := ParseTokens("t.yaml", []byte("tokens: []\n"), nil); err != nil || toks.Len() != 0 {
		t.Errorf("ParseTokens(no tokens) = %v, %v; want an empty set", toks.Len(), err)
	}
}

func TestTokensLookup(t *testing.T) {
	toks, err := ParseTokens("t.yaml", []byte(tokensDoc), Default())
	if err != nil {
		t.Fatalf("ParseTokens(tokensDoc) = %v", err)
	}
	if got := toks.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
	tests := []struct{ token, want string }{
		{"admin-secret", "admin"},
		{"shop-secret", "shop"}, // listed with an upper-case hash
		{"activator-secret", "activator"},
		{"trial-secret", "trial"},
		{"admin-secret ", ""},
		{"Admin-secret", ""},
		{sha("admin-secret"), ""}, // the hash is not the token
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if tok := toks.Lookup(tt.token); tok != nil {
			got = tok.Name
		}
		if got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.token, got, tt.want)
		}
	}
	var none *Tokens
	if tok := none.Lookup("admin-secret"); tok != nil || none.Len() != 0 {
		t.Errorf("nil Tokens: Lookup = %v, Len = %d; want nil, 0", tok, none.Len())
	}
}

func TestTokenExpired(t *testing.T) {
	toks, err := ParseTokens("t.yaml", []byte(tokensDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		token string
		now   time.Time
		want  bool
	}{
		{"trial-secret", expiry.Add(-time.Nanosecond), false},
		{"trial-secret", expiry, true},
		{"trial-secret", expiry.Add(time.Hour), true},
		{"trial-secret", expiry.In(time.FixedZone("UTC+14", 14*3600)).Add(-time.Second), false},
		{"admin-secret", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := toks.Lookup(tt.token).Expired(tt.now); got != tt.want {
			t.Errorf("Lookup(%q).Expired(%v) = %v, want %v", tt.token, tt.now, got, tt.want)
		}
	}
}

func TestTokenAllows(t *testing.T) {
	p := Default()
	v2 := loadV2(t)
	toks, err := ParseTokens("t.yaml", []byte(tokensDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	route := func(p *Policy, method, path string) *Route {
		r := p.Match(method, path)
		if r == nil {
			t.Fatalf("no route %s %s", method, path)
		}
		return r
	}
	get := route(p, "POST", "/get-key")
	activate := route(p, "POST", "/activate-key")
	customers := route(v2, "GET", "/customer")
	tests := []struct {
		token   string
		route   *Route
		product string
		ok      bool
		reason  string
	}{
		{"admin-secret", get, okProduct, true, ""},
		{"admin-secret", get, otherProduct, true, ""},
		{"admin-secret", customers, "", true, ""}, // global tokens reach routes without a product
		{"shop-secret", get, okProduct, true, ""},
		{"shop-secret", activate, okProduct, true, ""},
		{"shop-secret", get, otherProduct, false, ReasonProduct},
		{"shop-secret", get, "", false, ReasonProduct},
		{"shop-secret", get, strings.ToUpper(okProduct), false, ReasonProduct},
		{"shop-secret", customers, "", false, ReasonProduct}, // scoped tokens do not
		{"trial-secret", get, otherProduct, true, ""},
		{"activator-secret", activate, otherProduct, true, ""},
		{"activator-secret", get, okProduct, false, ReasonOperation},
		{"activator-secret", customers, "", false, ReasonOperation},
	}
	for _, tt := range tests {
		ok, reason := toks.Lookup(tt.token).Allows(tt.route, tt.product)
		if ok != tt.ok || reason != tt.reason {
			t.Errorf("Lookup(%q).Allows(%s, %q) = %v, %q; want %v, %q", tt.token, tt.route.Name, tt.product, ok, reason, tt.ok, tt.reason)
		}
	}
}

func TestHashToken(t *testing.T) {
	tests := []struct{ secret, want string }{
		{"abc", "ba7816bf8f01"},
		{"", "e3b0c44298fc"},
	}
	for _, tt := range tests {
		if got := HashToken(tt.secret); got != tt.want {
			t.Errorf("HashToken(%q) = %q, want %q", tt.secret, got, tt.want)
		}
	}
}

func BenchmarkTokensLookup(b *testing.B) {
	toks, err := ParseTokens("t.yaml", []byte(tokensDoc), nil)
	if err != nil {
		b.Fatal(err)
	}
	r := Default().Match("POST", "/get-key")
	b.ReportAllocs()
	for b.Loop() {
		tok := toks.Lookup("shop-secret")
		if ok, _ := tok.Allows(r, okProduct); !ok || tok.Expired(time.Time{}) {
			b.Fatal("shop-secret refused")
		}
	}
}

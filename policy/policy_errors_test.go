package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// parseProblemCases are broken policies and their whole report, one
// "file:line: message" per problem, sorted by line. FuzzParsePolicy starts
// from them too.
var parseProblemCases = []struct {
	name string
	doc  string
	want []string
}{
	{"empty file", "", []string{"p.yaml: file is empty"}},
	{"comments only", "# nothing here\n", []string{"p.yaml: file is empty"}},
	{"no routes", "routes: []\n", []string{"p.yaml: no routes: a policy needs at least one route"}},
	{"null document", "---\n", []string{"p.yaml: no routes: a policy needs at least one route"}},
	{"two documents", "routes:\n  - {name: a, method: POST, path: /a}\n---\nroutes: []\n",
		[]string{"p.yaml:3: only one YAML document is allowed"}},
	{"syntax error", "routes:\n  - name: a\n    method: POST\n   path: /a\n",
		[]string{"p.yaml:4:4: indentation: this line lines up with no enclosing block (expected column 5)"}},
	{"tab indentation", "routes:\n\t- name: a\n",
		[]string{"p.yaml:2: found character that cannot start any token"}},
	{"not a mapping", "- a\n- b\n", []string{"p.yaml:1:1: the file must be a mapping of field: value lines, not a list"}},
	// yaml.v3 panics merging into a mapping that has a mapping as a key.
	{"mapping as a key", "routes:\n  - &r {name: a, method: POST, path: /a}\n  - {<<, *r}\n",
		[]string{"p.yaml:3: a key must be a plain value, not a list or a mapping"}},
	{"list as a key", "? [a, b]\n: 1\n", []string{"p.yaml:1: a key must be a plain value, not a list or a mapping"}},
	{"type mismatch", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: fast, per: 1m, burst: 1}\n",
		[]string{`p.yaml:6:36: rate in limit must be a whole number, not "fast"`}},
	{"bad duration", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 1, per: 1 minute, burst: 1}\n",
		[]string{`p.yaml:6:44: per in limit must be a duration such as 30s, 1m or 1h, not "1 minute"`}},

	{"unknown top-level field", "rotes: []\nroutes:\n  - {name: a, method: POST, path: /a}\n",
		[]string{`p.yaml:1:1: unknown field "rotes" in the file (did you mean routes?)`}},
	{"unknown route field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    paths: /b\n",
		[]string{`p.yaml:5:5: unknown field "paths" in route (did you mean path?)`}},
	{"unknown param field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      x: {requird: true}\n",
		[]string{`p.yaml:6:11: unknown field "requird" in param (did you mean required?)`}},
	{"unknown nested field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      x:\n        type: object\n        fields:\n          y: {maximum: 3}\n",
		[]string{`p.yaml:9:15: unknown field "maximum" in param`}},
	{"unknown limit field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 1, per: 1m, brust: 1}\n",
		[]string{
			"p.yaml:6:9: route a: limit l: burst must be > 0 (it is how many requests may come at once)",
			`p.yaml:6:48: unknown field "brust" in limit (did you mean burst?)`,
		}},
	{"unknown error rule field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    errors:\n      - {status: 404, code: 2, mesage: gone}\n",
		[]string{`p.yaml:6:32: unknown field "mesage" in error rule (did you mean message?)`}},
	{"unknown fields everywhere", "x: 1\nroutes:\n  - name: a\n    y: 2\n    method: POST\n    path: /a\n    params:\n      p: {z: 3}\n",
		[]string{
			`p.yaml:1:1: unknown field "x" in the file`,
			`p.yaml:4:5: unknown field "y" in route`,
			`p.yaml:8:11: unknown field "z" in param`,
		}},

	// Two parsers disagree on which of two equal keys wins: both are refused.
	{"duplicate field", "routes:\n  - name: a\n    method: POST\n    path: /a\n    path: /b\n",
		[]string{"p.yaml:5:5: field path of route is already set at line 4"}},
	{"duplicate param", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      x: {}\n      x: {required: true}\n",
		[]string{`p.yaml:7:7: "x" is already defined at line 6`}},
	{"merge of a list", "routes:\n  - name: a\n    method: POST\n    path: /a\n    <<: [1]\n",
		[]string{`p.yaml:5:10: << merges mappings; "1" is not one`}},
	{"bad method", "routes:\n  - name: a\n    method: FETCH\n    path: /a\n",
		[]string{`p.yaml:3:13: route a: method "FETCH" must be one of GET, POST, PUT, PATCH, DELETE`}},
	{"bad name", "routes:\n  - name: Get Key\n    method: POST\n    path: /a\n",
		[]string{`p.yaml:2:11: route name "Get Key" must be lower case letters, digits, - or _ (1-64, starting with a letter)`}},
	{"bad path", "routes:\n  - {name: a, method: POST, path: a}\n  - {name: b, method: POST, path: /a/../b}\n  - {name: c, method: POST, path: \"/a?x=1\"}\n",
		[]string{
			`p.yaml:2:35: route a: path "a" must be an absolute path of plain segments (no query, no dot segments)`,
			`p.yaml:3:35: route b: path "/a/../b" must be an absolute path of plain segments (no query, no dot segments)`,
			`p.yaml:4:35: route c: path "/a?x=1" must be an absolute path of plain segments (no query, no dot segments)`,
		}},
	{"bad auth and in", "routes:\n  - {name: a, method: POST, path: /a, auth: basic, in: header}\n",
		[]string{
			`p.yaml:2:45: route a: auth "basic" must be token or none`,
			`p.yaml:2:56: route a: in "header" must be body or query`,
		}},
	{"duplicate route name", "routes:\n  - {name: a, method: POST, path: /a}\n  - {name: a, method: POST, path: /b}\n",
		[]string{`p.yaml:3:12: route name "a" is already used at line 2`}},
	{"duplicate method and path", "routes:\n  - {name: a, method: POST, path: /a}\n  - {name: b, method: post, path: /a}\n",
		[]string{"p.yaml:3:35: POST /a is already routed at line 2"}},

	{"product names no param", "routes:\n  - {name: a, method: POST, path: /a, product: body.productId}\n",
		[]string{`p.yaml:2:48: route a: product "body.productId" names no parameter listed in params`}},
	{"product from the wrong place", "routes:\n  - name: a\n    method: POST\n    path: /a\n    product: query.productId\n    params: {productId: {}}\n",
		[]string{`p.yaml:5:14: route a: product "query.productId" is read from query but the route's params are in the body`}},
	{"product not a source", "routes:\n  - {name: a, method: POST, path: /a, product: productId}\n",
		[]string{`p.yaml:2:48: route a: product "productId" must be body.<param> or query.<param>`}},
	{"product not a string", "routes:\n  - name: a\n    method: POST\n    path: /a\n    product: body.n\n    params: {n: {type: numeric}}\n",
		[]string{`p.yaml:5:14: route a: product parameter "n" must be of type string`}},

	{"bad param rules", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      a-b: {}\n      c: {type: int}\n      d: {min: 5, max: 2}\n      e: {type: boolean, max: 2}\n      f: {type: object}\n      g: {fields: {h: {}}}\n",
		[]string{
			`p.yaml:6:12: route a: param name "a-b" must be letters, digits or _`,
			`p.yaml:7:17: route a: param c: type "int" must be one of string, numeric, datetime, email, boolean, object`,
			"p.yaml:8:16: route a: param d: min 5 and max 2 must be >= 0 with min <= max",
			"p.yaml:9:31: route a: param e: min and max apply to string values only",
			"p.yaml:10:17: route a: param f: an object needs fields",
			"p.yaml:11:19: route a: param g: fields apply to type object only",
		}},
	{"nested object", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      o:\n        type: object\n        fields:\n          p: {type: object, fields: {q: {}}}\n",
		[]string{"p.yaml:9:21: route a: param p: objects may not nest"}},
	{"object param in a query route", "routes:\n  - name: a\n    method: GET\n    path: /a\n    params:\n      o: {type: object, fields: {x: {}}}\n",
		[]string{"p.yaml:6:17: route a: param o: objects cannot be read from a query string"}},
	{"bad exclusive groups", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params: {x: {}}\n    exclusive: [[x], [x, y]]\n",
		[]string{
			"p.yaml:6:16: route a: an exclusive group needs at least two params",
			`p.yaml:6:16: route a: exclusive names "y", which is not in params`,
		}},

	{"limit rate 0", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 0, per: 1m, burst: 1}\n",
		[]string{"p.yaml:6:36: route a: limit l: rate must be > 0"}},
	{"limit without burst", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - name: l\n        key: [ip]\n        rate: 5\n        per: 1m\n",
		[]string{"p.yaml:6:9: route a: limit l: burst must be > 0 (it is how many requests may come at once)"}},
	{"limit without key", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, rate: 1, per: 1m, burst: 1}\n",
		[]string{"p.yaml:6:9: route a: limit l: key needs at least one dimension (ip, token, product, route, header:<Name> or a param)"}},
	{"limit unknown dimension", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip, licenseKey, header:X_Y], rate: 1, per: 1m, burst: 1}\n",
		[]string{
			`p.yaml:6:24: route a: limit l: key "licenseKey" is not ip, token, product, route, header:<Name> or a param of the route`,
			`p.yaml:6:24: route a: limit l: key "header:X_Y": bad header name`,
		}},
	{"limit dimensions the route lacks", "routes:\n  - name: a\n    method: POST\n    path: /a\n    auth: none\n    limits:\n      - {name: l, key: [token, product], rate: 1, per: 1m, burst: 1}\n",
		[]string{
			"p.yaml:7:24: route a: limit l: key token on a route with auth none",
			"p.yaml:7:24: route a: limit l: key product on a route with no product",
		}},
	{"limit too fast", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 1000001, per: 1s, burst: 1}\n",
		[]string{"p.yaml:6:36: route a: limit l: rate 1000001 per 1s is faster than one request a microsecond"}},
	{"limit odd values", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: L, key: [ip], rate: 1, per: -1m, burst: 1, on: [42], message: \"a\\nb\"}\n",
		[]string{
			`p.yaml:6:16: route a: limit name "L" must be lower case letters, digits, - or _`,
			"p.yaml:6:44: route a: limit L: per must be a positive duration such as 1m",
			"p.yaml:6:63: route a: limit L: on lists 42, which is not an HTTP status",
			"p.yaml:6:78: route a: limit L: message must be one line of at most 200 bytes",
		}},
	{"limit name used twice in a route", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n      - {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n",
		[]string{`p.yaml:7:16: route a: limit name "l" is used twice`}},
	{"shared limit with another rate", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n  - name: b\n    method: POST\n    path: /b\n    limits:\n      - {name: l, key: [ip], rate: 2, per: 1m, burst: 1}\n",
		[]string{"p.yaml:11:9: limit l: limits with one name share a bucket, so key, rate, per, burst, on and shadow must match the one at line 6"}},
	{"shared limit with other statuses", "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - &l {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n  - name: b\n    method: POST\n    path: /b\n    limits:\n      - {name: l, key: [ip], rate: 1, per: 1m, burst: 1, on: [404]}\n",
		[]string{"p.yaml:11:9: limit l: limits with one name share a bucket, so key, rate, per, burst, on and shadow must match the one at line 6"}},

	{"bad error rules", "routes:\n  - name: a\n    method: POST\n    path: /a\n    errors:\n      - {status: 200, code: 1}\n      - {status: 404, code: 0}\n      - {status: 404, code: 4}\n      - {status: 500, code: 1, message: \"two\\nlines\"}\n",
		[]string{
			"p.yaml:6:18: route a: error rule status 200 must be an upstream error status (300-599)",
			"p.yaml:7:29: route a: error rule code 0 must be 1, 2 or 3",
			"p.yaml:8:29: route a: error rule code 4 must be 1, 2 or 3",
			"p.yaml:9:41: route a: error rule message must be one line of at most 200 bytes",
		}},
	{"forwarding fields", "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      productId: {bucket: loose}\n    allow_query: [trace, product_id, \"a b\", _method]\n    headers: [X-Version, Authorization, X-Forwarded-Host, X-Original-URL, \"bad header\"]\n  - name: b\n    method: GET\n    path: /b\n    allow_query: [trace]\n",
		[]string{
			`p.yaml:6:27: route a: param productId: bucket "loose" must be fold or exact`,
			`p.yaml:7:18: route a: allow_query name "product_id" is read as param productId by some backends`,
			`p.yaml:7:18: route a: allow_query name "a b" must be 1-64 letters, digits, _, . or -`,
			`p.yaml:7:18: route a: allow_query name "_method" overrides the method on some backends`,
			"p.yaml:8:14: route a: header Authorization is keygate's own and cannot be forwarded from the client",
			"p.yaml:8:14: route a: header X-Forwarded-Host is keygate's own and cannot be forwarded from the client",
			"p.yaml:8:14: route a: header X-Original-Url is keygate's own and cannot be forwarded from the client",
			`p.yaml:8:14: route a: header "bad header": bad header name`,
			"p.yaml:12:18: route b: allow_query applies to body routes; a query route forwards its checked query",
		}},
	{"empty entries", "routes:\n  - \n  - name: a\n    method: POST\n    path: /a\n    params: {p: }\n    limits: [~]\n    errors: [~]\n",
		[]string{
			"p.yaml: empty route",
			"p.yaml:7:13: route a: empty limit",
			"p.yaml:8:13: route a: empty error rule",
		}},
}

func TestParseProblems(t *testing.T) {
	for _, tt := range parseProblemCases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse(%q) = %d routes, nil; want an error", tt.doc, len(p.Routes))
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error = %T %v, want a *FileError", tt.doc, err, err)
			}
			if fe.File != "p.yaml" {
				t.Errorf("Parse(%q) error File = %q, want p.yaml", tt.doc, fe.File)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("Parse(%q) problems mismatch (-want +got):\n%s", tt.doc, diff)
			}
		})
	}
}

// TestParseAnchors covers what YAML anchors, aliases and merge keys do to the
// report: an anchored limit is checked once, however many routes share it,
// and a self-referencing or exploding document is refused rather than walked
// forever.
func TestParseAnchors(t *testing.T) {
	t.Run("merge key", func(t *testing.T) {
		doc := "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - &l {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n  - name: b\n    method: POST\n    path: /b\n    limits:\n      - <<: *l\n        name: m\n        on: [404]\n"
		p, err := Parse("p.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("Parse(merge key) = %v, want no error", err)
		}
		l := p.Routes[1].Limits[0]
		if l.Name != "m" || l.Rate != 1 || time.Duration(l.Per) != time.Minute || !cmp.Equal(l.On, []int{404}) {
			t.Errorf("merged limit = %+v, want name m, rate 1 per 1m, on [404]", l)
		}
	})
	t.Run("first merged mapping wins", func(t *testing.T) {
		doc := "routes:\n  - name: a\n    method: POST\n    path: /a\n    limits:\n      - &l {name: l, key: [ip], rate: 1, per: 1m, burst: 1}\n      - &m {name: m, key: [ip], rate: 2, per: 1m, burst: 2}\n      - <<: [*l, *m]\n        name: n\n"
		p, err := Parse("p.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("Parse(merge list) = %v, want no error", err)
		}
		if l := p.Routes[0].Limits[2]; l.Name != "n" || l.Rate != 1 || l.Burst != 1 {
			t.Errorf("merged limit = name %s rate %d burst %d, want n, 1, 1 (the first mapping's)", l.Name, l.Rate, l.Burst)
		}
	})
	t.Run("unknown field in merged mapping", func(t *testing.T) {
		doc := "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      x: &x {min: 1, mx: 2}\n      y: {<<: *x, required: true}\n"
		_, err := Parse("p.yaml", []byte(doc))
		want := `p.yaml:6:22: unknown field "mx" in param (did you mean max?)`
		if err == nil || err.Error() != want {
			t.Errorf("Parse(merged unknown field) = %v, want %s", err, want)
		}
	})
	t.Run("unknown field in a shared limit is reported once", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("routes:\n  - name: r0\n    method: POST\n    path: /r0\n    limits:\n      - &l {name: l, key: [ip], rate: 1, per: 1m, burst: 1, shadw: true}\n")
		for i := 1; i < 6; i++ {
			fmt.Fprintf(&b, "  - name: r%d\n    method: POST\n    path: /r%d\n    limits: [*l]\n", i, i)
		}
		_, err := Parse("p.yaml", []byte(b.String()))
		want := `p.yaml:6:61: unknown field "shadw" in limit (did you mean shadow?)`
		if err == nil || err.Error() != want {
			t.Errorf("Parse(shared unknown field) = %v, want %s", err, want)
		}
	})
	t.Run("self-referencing anchor", func(t *testing.T) {
		doc := "routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      p: &x {type: object, fields: {q: *x}}\n"
		_, err := Parse("p.yaml", []byte(doc))
		want := "p.yaml:6: alias *x is used inside the node it names"
		if err == nil || err.Error() != want {
			t.Errorf("Parse(self-referencing anchor) = %v, want %s", err, want)
		}
	})
	t.Run("alias bomb", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      l0: &l0 {type: object, fields: {a: {}, b: {}}}\n")
		for i := 1; i < 12; i++ {
			fmt.Fprintf(&b, "      l%d: &l%d {type: object, fields: {a: *l%[3]d, b: *l%[3]d, c: *l%[3]d, d: *l%[3]d}}\n", i, i, i-1)
		}
		start := time.Now()
		_, err := Parse("p.yaml", []byte(b.String()))
		want := "p.yaml: the file expands to more than 100000 YAML nodes through its aliases"
		if err == nil || err.Error() != want {
			t.Errorf("Parse(alias bomb) = %.200v, want %s", err, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Parse(alias bomb) took %v, want well under 5s", d)
		}
	})
}

// TestParseProblemsStable: problems on one line come in column order, not in
// the order of a map's iteration.
func TestParseProblemsStable(t *testing.T) {
	doc := "routes:\n  - {name: a, method: POST, path: /a, params: {zz: {type: x}, mm: {min: -1}, aa: {type: y}, o: {type: object, fields: {f2: {type: z}, f1: {min: 2, max: 1}}}}}\n"
	want := []string{
		`p.yaml:2:59: route a: param zz: type "x" must be one of string, numeric, datetime, email, boolean, object`,
		"p.yaml:2:73: route a: param mm: min -1 and max 0 must be >= 0 with min <= max",
		`p.yaml:2:89: route a: param aa: type "y" must be one of string, numeric, datetime, email, boolean, object`,
		`p.yaml:2:131: route a: param f2: type "z" must be one of string, numeric, datetime, email, boolean, object`,
		"p.yaml:2:145: route a: param f1: min 2 and max 1 must be >= 0 with min <= max",
	}
	for range 20 {
		_, err := Parse("p.yaml", []byte(doc))
		if err == nil {
			t.Fatal("Parse = nil error, want problems")
		}
		if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
			t.Fatalf("Parse problems mismatch (-want +got):\n%s", diff)
		}
	}
}

package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzNormalize: whatever an upstream answers with a status of 300 or more,
// the client gets a contract status and a body that is exactly
// {"message":string,"code":int} with a code valid for that status on that
// route, and a message safe to show.
func FuzzNormalize(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{404, `{"message":"License key not found","code":1}`},
		{404, `{"message":"Customer not found","code":1}`},
		{404, `{"message":"Customer not found","code":2}`},
		{403, `{"error":{"message":"Key blocked"}}`},
		{401, `{"detail":"Not authenticated"}`},
		{429, `{"message":"Slow down","code":3}`},
		{500, `{"message":"dial tcp 10.0.0.1:5432: refused","code":1}`},
		{502, "<html><body>Bad Gateway</body></html>"},
		{409, `{"message":"x","code":2,"extra":1}`},
		{400, `{"message":"x","code":"1"}`},
		{400, `{"message":"<b>","code":1,"message":"ok"}`},
		{404, `{"message":"Not here","code":1}}`},
		{301, ""},
		{418, `{"message":"I'm a teapot","code":1}`},
	} {
		for route := range uint8(3) {
			f.Add(s.status, []byte(s.body), false, true, route)
		}
	}
	f.Add(404, []byte(`{"message":"Not here","code":1}`), true, true, uint8(0))
	f.Add(404, []byte(`{"message":"Not here","code":1}`), false, false, uint8(0))
	p := Default()
	routes := []*Route{nil, p.Match("POST", "/get-key"), p.Match("POST", "/create-key")}
	f.Fuzz(func(t *testing.T, status int, body []byte, truncated, isJSON bool, pick uint8) {
		if status < 300 || status > 999 {
			status = 300 + int(uint(status)%700)
		}
		r := routes[int(pick)%len(routes)]
		name := "<nil>"
		if r != nil {
			name = r.Name
		}
		pass, e, kind := r.Normalize(status, body, truncated, isJSON)
		want := ContractStatus(status)
		if !IsContractStatus(want) || want == 200 {
			t.Fatalf("ContractStatus(%d) = %d, want a contract error status", status, want)
		}
		out, outStatus := body, status
		if pass {
			if kind != RewriteNone || e != nil || status != want || truncated || !isJSON {
				t.Fatalf("%s: Normalize(%d, %q, %v, %v) = pass, %v, %q; want pass only for a whole JSON contract answer",
					name, status, body, truncated, isJSON, e, kind)
			}
		} else {
			if e == nil || !slices.Contains([]string{RewriteStatus, RewriteBody, RewriteCode, RewriteLeak}, kind) {
				t.Fatalf("%s: Normalize(%d, %q) = rewrite, %v, %q; want an error and a rewrite kind", name, status, body, e, kind)
			}
			if e.Status != want || e.Err != nil || e.RetryAfter != 0 {
				t.Fatalf("%s: Normalize(%d, %q) = %+v, want status %d and no cause", name, status, body, e, want)
			}
			out, outStatus = e.Body(), e.Status
		}
		msg, code, err := strictContract(out)
		if err != nil {
			t.Fatalf("%s: Normalize(%d, %q) sends %q: %v", name, status, body, out, err)
		}
		if !validCode(r, status, outStatus, code) {
			t.Fatalf("%s: Normalize(%d, %q) sends %d with code %d, not a code for that status", name, status, body, outStatus, code)
		}
		if !safeMessage(msg, nil) {
			t.Fatalf("%s: Normalize(%d, %q) sends message %q, which is not safe", name, status, body, msg)
		}
		if !pass && msg != e.Message {
			t.Fatalf("%s: Normalize(%d, %q): Body() says %q, Message is %q", name, status, body, msg, e.Message)
		}
	})
}

// validCode reports whether code may go out with status for an upstream
// answer of upstream: the status's own code, or one an error rule of the
// route gives that upstream status.
func validCode(r *Route, upstream, status, code int) bool {
	if code == DefaultCode(status) {
		return true
	}
	for _, e := range r.errorRules() {
		if e.Status == upstream && e.Code == code {
			return true
		}
	}
	return false
}

func (r *Route) errorRules() []*ErrorRule {
	if r == nil {
		return nil
	}
	return r.Errors
}

// compactPolicy uses every feature of a policy in a few lines.
const compactPolicy = `routes:
  - name: create
    method: POST
    path: /create-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      expiryDate: {type: datetime}
      customerId: {min: 1}
      newCustomer: {type: object, fields: {name: {required: true}, email: {type: email}}}
    exclusive: [[customerId, newCustomer]]
    errors: [{status: 404, match: customer not found, code: 2, message: No such customer}]
    limits:
      - &l {name: l, key: [ip, token, product, route, header:X-Tenant, customerId], on: [401], rate: 20, per: 1m, burst: 20, shadow: true}
  - name: get
    method: GET
    path: /key
    auth: none
    in: query
    params: {licenseKey: {required: true}, all: {type: boolean}}
    limits: [{<<: *l, name: m, key: [ip, licenseKey]}]
`

// FuzzParsePolicy: Parse never panics or hangs, and either reports problems
// with lines or returns a policy whose routes all work.
func FuzzParsePolicy(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input, which takes long
	// for a document the size of the built-in policy (unit tests cover it).
	f.Add([]byte(compactPolicy))
	for _, tc := range parseProblemCases {
		f.Add([]byte(tc.doc))
	}
	f.Add([]byte("routes:\n  - name: a\n    method: POST\n    path: /a\n    params:\n      p: &x {type: object, fields: {q: *x}}\n"))
	f.Add([]byte("routes:\n  - &r {name: a, method: GET, path: /a, params: {p: {type: boolean}}, limits: [{name: l, key: [p], rate: 1, per: 1s, burst: 1}]}\n  - {<<: *r, name: b, path: /b}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse("f.yaml", doc)
		if err != nil {
			checkFileError(t, doc, err)
			if again, err2 := Parse("f.yaml", doc); again != nil || err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Parse(%q) twice: %v, then %v", doc, err, err2)
			}
			return
		}
		if len(p.Routes) == 0 {
			t.Fatalf("Parse(%q) = a policy without routes", doc)
		}
		for _, r := range p.Routes {
			if got := p.Match(r.Method, r.Path); got != r || !r.NeedsToken() && r.Auth != "none" {
				t.Fatalf("Parse(%q): route %s: Match(%s, %s) = %v, auth %q", doc, r.Name, r.Method, r.Path, got, r.Auth)
			}
			for _, l := range r.Limits {
				if l == nil || l.Rate <= 0 || l.Burst <= 0 || l.Per <= 0 || len(l.Dims) != len(l.Key) || len(l.Dims) == 0 {
					t.Fatalf("Parse(%q): route %s: accepted limit %+v", doc, r.Name, l)
				}
			}
			// The parsed route serves requests without panicking.
			if v, e := r.ParseBody([]byte(`{"a":"b","p":{"q":1}}`)); e == nil {
				v.Validate()
				v.Product()
			}
			if v, e := r.ParseQuery("a=b&p=true"); e == nil {
				v.Validate()
			}
			r.Normalize(404, []byte(`{"message":"not found","code":2}`), false, true)
		}
	})
}

// FuzzParseTokens: ParseTokens never panics, and either reports problems with
// lines or returns tokens that can be looked up and checked.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(tokensDoc))
	for _, tc := range tokenProblemCases {
		f.Add([]byte(tc.doc))
	}
	p := Default()
	get := p.Match("POST", "/get-key")
	f.Fuzz(func(t *testing.T, doc []byte) {
		toks, err := ParseTokens("f.yaml", doc, p)
		if err != nil {
			checkFileError(t, doc, err)
			return
		}
		if len(toks.byHash) != toks.Len() {
			t.Fatalf("ParseTokens(%q): %d hashes for %d tokens", doc, len(toks.byHash), toks.Len())
		}
		for _, tok := range toks.List {
			if tok == nil || !nameRE.MatchString(tok.Name) || len(tok.Products) == 0 {
				t.Fatalf("ParseTokens(%q) accepted token %+v", doc, tok)
			}
			for _, op := range tok.Operations {
				if !p.hasRoute(op) {
					t.Fatalf("ParseTokens(%q) accepted operation %q", doc, op)
				}
			}
			tok.Allows(get, okProduct)
			tok.Expired(tok.expires)
		}
	})
}

func checkFileError(t *testing.T, doc []byte, err error) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != "f.yaml" || len(fe.Problems) == 0 {
		t.Fatalf("Parse(%q) = %v, want a *FileError with problems", doc, err)
	}
	for _, pr := range fe.Problems {
		if pr.Line < 0 || strings.TrimSpace(pr.Msg) == "" {
			t.Fatalf("Parse(%q): problem %+v, want a line >= 0 and a message", doc, pr)
		}
	}
}

package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// paramRule is what a test compares of a Param: its rule, without the
// bookkeeping that validation fills in.
type paramRule struct {
	Required bool
	Type     string
	Min, Max int
	Fields   map[string]paramRule
}

func rulesOf(ps map[string]*Param) map[string]paramRule {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]paramRule, len(ps))
	for name, p := range ps {
		out[name] = paramRule{p.Required, p.Type, p.Min, p.Max, rulesOf(p.Fields)}
	}
	return out
}

// routeShape is what a test compares of a Route.
type routeShape struct {
	Method, Path, In, Product, Auth string
	Query, NeedsToken, HasProduct   bool
	Params                          map[string]paramRule
	Exclusive                       [][]string
	Errors                          []ErrorRule
	Limits                          []string
}

func shapeOf(r *Route) routeShape {
	s := routeShape{
		Method: r.Method, Path: r.Path, In: r.In, Product: r.Product, Auth: r.Auth,
		Query: r.ParamsInQuery(), NeedsToken: r.NeedsToken(), HasProduct: r.HasProduct(),
		Params: rulesOf(r.Params), Exclusive: r.Exclusive,
	}
	for _, e := range r.Errors {
		s.Errors = append(s.Errors, ErrorRule{Status: e.Status, Match: e.Match, Pattern: e.Pattern, Code: e.Code, Message: e.Message})
	}
	for _, l := range r.Limits {
		s.Limits = append(s.Limits, l.Name)
	}
	return s
}

var (
	ruleProduct    = paramRule{Required: true, Type: "string", Min: 22, Max: 256}
	ruleLicenseKey = paramRule{Required: true, Type: "string", Min: 23, Max: 256}
	ruleHostID     = paramRule{Type: "string", Min: 1, Max: 64}
)

// customerNotFound is the built-in create route's pattern for 404s that name a customer.
const customerNotFound = `\bcustomers?\b.*\b(not found|does not exist|doesn.t exist|unknown|missing)\b|\b(no|unknown) (such )?customer\b`

func TestBuiltinRoutes(t *testing.T) {
	p, err := Parse("built-in policy", Builtin)
	if err != nil {
		t.Fatalf("Parse(Builtin) = %v, want no error", err)
	}
	keyRoute := func(path string, limits ...string) routeShape {
		return routeShape{
			Method: "POST", Path: path, In: "body", Product: "body.productId", Auth: "token",
			NeedsToken: true, HasProduct: true,
			Params: map[string]paramRule{"productId": ruleProduct, "licenseKey": ruleLicenseKey},
			Limits: append([]string{"token-guessing", "key-guessing"}, limits...),
		}
	}
	activate := keyRoute("/activate-key", "activate-per-license")
	activate.Params["hostId"] = paramRule{Required: true, Type: "string", Min: 1, Max: 64}
	activate.Params["deviceTag"] = paramRule{Type: "string", Min: 1, Max: 64}
	deactivate := keyRoute("/deactivate-key", "deactivate-per-license")
	deactivate.Params["hostId"] = ruleHostID
	want := map[string]routeShape{
		"get":        keyRoute("/get-key"),
		"activate":   activate,
		"deactivate": deactivate,
		"create": {
			Method: "POST", Path: "/create-key", In: "body", Product: "body.productId", Auth: "token",
			NeedsToken: true, HasProduct: true,
			Params: map[string]paramRule{
				"productId":      ruleProduct,
				"maxActivations": {Type: "numeric", Min: 1, Max: 10},
				"usesPerKey":     {Type: "numeric", Min: 1, Max: 10},
				"expiryDate":     {Type: "datetime"},
				"customerId":     {Type: "string", Min: 1, Max: 256},
				"newCustomer": {Type: "object", Fields: map[string]paramRule{
					"name":  {Required: true, Type: "string", Min: 1, Max: 256},
					"email": {Type: "email", Max: 256},
				}},
			},
			Exclusive: [][]string{{"customerId", "newCustomer"}},
			Errors:    []ErrorRule{{Status: 404, Pattern: customerNotFound, Code: 2}, {Status: 409, Code: 2}},
			Limits:    []string{"token-guessing", "create-per-token"},
		},
		"block":   keyRoute("/block-key"),
		"unblock": keyRoute("/unblock-key"),
	}
	got := map[string]routeShape{}
	for _, r := range p.Routes {
		got[r.Name] = shapeOf(r)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(ErrorRule{}, located{})); diff != "" {
		t.Errorf("built-in routes mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(p, Default(), cmp.AllowUnexported(Policy{}, Route{}, Param{}, Limit{}, ErrorRule{}, Response{}, Field{}, located{}, pos{}),
		cmp.Comparer(func(a, b *regexp.Regexp) bool {
			return (a == nil) == (b == nil) && (a == nil || a.String() == b.String())
		})); diff != "" {
		t.Errorf("Default() differs from Parse(Builtin) (-parse +default):\n%s", diff)
	}
}

func TestBuiltinLimits(t *testing.T) {
	p := Default()
	type limitShape struct {
		Key         []string
		Dims        []Dim
		Rate, Burst int
		Per         time.Duration
		On          []int
		Message     string
		Routes      int // how many routes share the bucket
	}
	got := map[string]limitShape{}
	for _, r := range p.Routes {
		for _, l := range r.Limits {
			s := got[l.Name]
			s.Key, s.Dims, s.Rate, s.Burst, s.Per, s.On, s.Message = l.Key, l.Dims, l.Rate, l.Burst, time.Duration(l.Per), l.On, l.Message
			s.Routes++
			got[l.Name] = s
		}
	}
	failed := "Too many failed attempts. Please try again later."
	want := map[string]limitShape{
		"token-guessing": {Key: []string{"ip"}, Dims: []Dim{{Kind: DimIP}}, Rate: 20, Burst: 20, Per: time.Minute, On: []int{401}, Message: failed, Routes: 6},
		"key-guessing":   {Key: []string{"ip"}, Dims: []Dim{{Kind: DimIP}}, Rate: 30, Burst: 30, Per: 10 * time.Minute, On: []int{404}, Message: failed, Routes: 5},
		"activate-per-license": {Key: []string{"product", "licenseKey"}, Dims: []Dim{{Kind: DimProduct}, {Kind: DimParam, Name: "licenseKey"}},
			Rate: 10, Burst: 10, Per: time.Minute, Message: "Too many activation attempts. Please try again later.", Routes: 1},
		"deactivate-per-license": {Key: []string{"product", "licenseKey"}, Dims: []Dim{{Kind: DimProduct}, {Kind: DimParam, Name: "licenseKey"}},
			Rate: 10, Burst: 10, Per: time.Minute, Message: "Too many deactivation attempts. Please try again later.", Routes: 1},
		"create-per-token": {Key: []string{"token", "product"}, Dims: []Dim{{Kind: DimToken}, {Kind: DimProduct}},
			Rate: 60, Burst: 60, Per: time.Minute, Message: "Too many license keys created. Please try again later.", Routes: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("built-in limits mismatch (-want +got):\n%s", diff)
	}
}

func TestMatch(t *testing.T) {
	p := Default()
	tests := []struct {
		method, path string
		want         string // route name, "" for none
		known        bool
	}{
		{"POST", "/get-key", "get", true},
		{"POST", "/activate-key", "activate", true},
		{"POST", "/deactivate-key", "deactivate", true},
		{"POST", "/create-key", "create", true},
		{"POST", "/block-key", "block", true},
		{"POST", "/unblock-key", "unblock", true},
		{"GET", "/get-key", "", true},
		{"post", "/get-key", "", true}, // methods are matched as sent; net/http keeps case
		{"POST", "/get-key/", "", false},
		{"POST", "/GET-KEY", "", false},
		{"POST", "/", "", false},
		{"POST", "", "", false},
	}
	for _, tt := range tests {
		got := ""
		if r := p.Match(tt.method, tt.path); r != nil {
			got = r.Name
		}
		if got != tt.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
		if known := p.PathKnown(tt.path); known != tt.known {
			t.Errorf("PathKnown(%q) = %v, want %v", tt.path, known, tt.known)
		}
	}
	var zero Policy
	if r := zero.Match("POST", "/get-key"); r != nil {
		t.Errorf("zero Policy.Match(POST, /get-key) = %q, want nil", r.Name)
	}
}

// TestKeymintV2 checks the example policy for the newer API shape, which is
// shipped to users as a starting point.
func TestKeymintV2(t *testing.T) {
	p, err := Load(filepath.Join("testdata", "keymint-v2.yaml"))
	if err != nil {
		t.Fatalf("Load(keymint-v2.yaml) = %v, want no error", err)
	}
	type where struct {
		Name               string
		Query, HasProduct  bool
		Required, Optional []string
	}
	tests := []struct {
		method, path string
		want         where
	}{
		{"POST", "/key", where{"create-key", false, true, []string{"productId"},
			[]string{"customerId", "expiryDate", "maxActivations", "newCustomer", "usesPerKey", "versionId"}}},
		{"GET", "/key", where{"get-key", true, true, []string{"licenseKey", "productId"}, nil}},
		{"POST", "/key/activate", where{"activate-key", false, true, []string{"licenseKey", "productId"}, []string{"deviceTag", "hostId"}}},
		{"POST", "/key/deactivate", where{"deactivate-key", false, true, []string{"licenseKey", "productId"}, []string{"hostId"}}},
		{"POST", "/key/block", where{"block-key", false, true, []string{"licenseKey", "productId"}, nil}},
		{"POST", "/key/unblock", where{"unblock-key", false, true, []string{"licenseKey", "productId"}, nil}},
		{"POST", "/customer", where{"create-customer", false, false, []string{"email", "name"}, nil}},
		{"GET", "/customer", where{"get-customer", true, false, nil, []string{"customerId", "email", "limit", "page"}}},
		{"GET", "/customer/by-id", where{"get-customer-by-id", true, false, []string{"customerId"}, nil}},
		{"GET", "/customer/keys", where{"get-customer-keys", true, false, []string{"customerId"}, nil}},
		{"PUT", "/customer/by-id", where{"update-customer", false, false, []string{"customerId"}, []string{"active", "email", "name"}}},
		{"DELETE", "/customer/by-id", where{"delete-customer", true, false, []string{"customerId"}, nil}},
		{"POST", "/customer/disable", where{"toggle-customer", false, false, []string{"customerId"}, nil}},
	}
	if len(p.Routes) != len(tests) {
		t.Errorf("keymint-v2.yaml has %d routes, want %d", len(p.Routes), len(tests))
	}
	for _, tt := range tests {
		r := p.Match(tt.method, tt.path)
		if r == nil {
			t.Errorf("Match(%s, %s) = nil, want route %s", tt.method, tt.path, tt.want.Name)
			continue
		}
		got := where{Name: r.Name, Query: r.ParamsInQuery(), HasProduct: r.HasProduct()}
		for _, prm := range r.params { // sorted by name
			if prm.Required {
				got.Required = append(got.Required, prm.Name)
			} else {
				got.Optional = append(got.Optional, prm.Name)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Match(%s, %s) mismatch (-want +got):\n%s", tt.method, tt.path, diff)
		}
	}
	// The key routes keep the legacy constraints.
	for _, name := range []string{"get-key", "activate-key", "deactivate-key", "block-key", "unblock-key"} {
		for _, r := range p.Routes {
			if r.Name != name {
				continue
			}
			got := rulesOf(r.Params)
			want := map[string]paramRule{"productId": ruleProduct, "licenseKey": ruleLicenseKey}
			if diff := cmp.Diff(want, map[string]paramRule{"productId": got["productId"], "licenseKey": got["licenseKey"]}); diff != "" {
				t.Errorf("route %s: key params mismatch (-want +got):\n%s", name, diff)
			}
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing file) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func BenchmarkParseBuiltin(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("built-in policy", Builtin); err != nil {
			b.Fatal(err)
		}
	}
}

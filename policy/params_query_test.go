package policy

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func loadV2(t testing.TB) *Policy {
	t.Helper()
	p, err := Load(filepath.Join("testdata", "keymint-v2.yaml"))
	if err != nil {
		t.Fatalf("Load(keymint-v2.yaml) = %v", err)
	}
	return p
}

// queryCase is one raw query string for one route; want is the message of the
// 400 it must get, "" when it must pass.
type queryCase struct {
	name, route, query, want string
}

func checkQueryCases(t *testing.T, p *Policy, cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.route+"/"+tc.name, func(t *testing.T) {
			var r *Route
			for _, rr := range p.Routes {
				if rr.Name == tc.route {
					r = rr
				}
			}
			if r == nil {
				t.Fatalf("no route %q", tc.route)
			}
			v, e := r.ParseQuery(tc.query)
			if e == nil {
				e = v.Validate()
			}
			switch {
			case tc.want == "" && e != nil:
				t.Errorf("%s: ParseQuery(%.120q) = %v, want accepted", tc.route, tc.query, e)
			case tc.want != "" && e == nil:
				t.Errorf("%s: ParseQuery(%.120q) = accepted, want 400 %q", tc.route, tc.query, tc.want)
			case tc.want != "" && (e.Status != 400 || e.Code != CodeInvalid || e.Message != tc.want):
				t.Errorf("%s: ParseQuery(%.120q) = %d code %d %q, want 400 code 1 %q", tc.route, tc.query, e.Status, e.Code, e.Message, tc.want)
			}
		})
	}
}

// q builds a raw query string from name, value pairs, escaping the values.
func q(kv ...string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

func TestQueryRoutes(t *testing.T) {
	const (
		badProd = "Invalid productId: must be 22 to 256 characters"
		badKey  = "Invalid licenseKey: must be 23 to 256 characters"
	)
	var cases []queryCase
	add := func(route, name, query, want string) { cases = append(cases, queryCase{name, route, query, want}) }
	key := func(kv ...string) string {
		return q(append([]string{"productId", okProduct, "licenseKey", okKey}, kv...)...)
	}

	add("get-key", "valid", key(), "")
	add("get-key", "reversed", q("licenseKey", okKey, "productId", okProduct), "")
	add("get-key", "unknown params pass", key("trace", "1", "x", ""), "")
	add("get-key", "empty query", "", MsgMissingParams)
	add("get-key", "no licenseKey", q("productId", okProduct), MsgMissingParams)
	add("get-key", "empty licenseKey", q("productId", okProduct, "licenseKey", ""), MsgMissingParams)
	add("get-key", "bare licenseKey", q("productId", okProduct)+"&licenseKey", MsgMissingParams)
	add("get-key", "only separators", "&&&", MsgMissingParams)
	add("get-key", "productId 21 runes", q("productId", strings.Repeat("é", 21), "licenseKey", okKey), badProd)
	add("get-key", "productId 22 runes", q("productId", strings.Repeat("é", 22), "licenseKey", okKey), "")
	add("get-key", "productId 256 runes", q("productId", strings.Repeat("日", 256), "licenseKey", okKey), "")
	add("get-key", "productId 257 runes", q("productId", strings.Repeat("日", 257), "licenseKey", okKey), badProd)
	add("get-key", "licenseKey 22 runes", q("productId", okProduct, "licenseKey", strings.Repeat("🔑", 22)), badKey)
	add("get-key", "licenseKey 23 runes", q("productId", okProduct, "licenseKey", strings.Repeat("🔑", 23)), "")
	add("get-key", "licenseKey 257 runes", q("productId", okProduct, "licenseKey", strings.Repeat("🔑", 257)), badKey)
	add("get-key", "plus is a space", "productId="+okProduct+"&licenseKey=ABCDE+FGHIJ+KLMNO+PQRST", "")
	add("get-key", "escaped key", "productId="+okProduct+"&licen%73eKey="+okKey, "")
	add("get-key", "control character", "productId="+okProduct+"&licenseKey="+okKey+"%00", "Invalid licenseKey: must not contain control characters")
	add("get-key", "newline", "productId="+okProduct+"&licenseKey="+okKey+"%0A", "Invalid licenseKey: must not contain control characters")

	add("get-key", "repeated param", key("productId", okProduct), "Duplicate parameter: productId")
	add("get-key", "repeated empty param", "productId&productId&licenseKey="+okKey, "Duplicate parameter: productId")
	add("get-key", "repeated through escape", key("licen%73eKey", "other"), "Duplicate parameter: licenseKey")
	add("get-key", "repeated unknown param", key("x", "1", "x", "2"), "Duplicate parameter: x")
	add("get-key", "repeated empty name", key("", "1", "", "2"), "Duplicate parameter: (unprintable name)")
	add("get-key", "case variant", q("productId", okProduct, "LicenseKey", okKey), "Unexpected parameter LicenseKey (did you mean licenseKey?)")
	add("get-key", "case variant beside exact", key("PRODUCTID", okProduct), "Unexpected parameter PRODUCTID (did you mean productId?)")
	add("get-key", "invalid UTF-8 value", "productId="+okProduct+"&licenseKey="+okKey+"%FF", "Request must be valid UTF-8")
	add("get-key", "invalid UTF-8 name", key("%C3%28", "1"), "Request must be valid UTF-8")
	for _, bad := range []string{"%zz", "%", "%4", "a%g1=1", "%%"} {
		add("get-key", "bad escape "+bad, key()+"&x="+bad, "Invalid query string")
	}
	add("get-key", "semicolon", key()+";x=1", "Invalid query string")

	add("get-customer", "no params", "", "")
	add("get-customer", "one customer", q("customerId", "cus_1"), "")
	add("get-customer", "a page", q("page", "2", "limit", "50", "email", "ada@example.com"), "")
	add("get-customer", "page not a number", q("page", "two"), `Invalid page: must be a numeric string such as "5"`)
	add("get-customer", "limit too long", q("limit", "1000"), "Invalid limit: must be 1 to 3 characters")
	add("get-customer", "bad email", q("email", "ada"), "Invalid email: must be an email address")
	add("get-customer", "empty customerId", "customerId=", "Invalid customerId: must be 1 to 256 characters")
	add("get-customer-by-id", "customerId", q("customerId", "cus_1"), "")
	add("get-customer-by-id", "no customerId", "", MsgMissingParams)
	add("delete-customer", "customerId", q("customerId", "cus_1"), "")
	add("delete-customer", "repeated customerId", q("customerId", "cus_1", "customerId", "cus_2"), "Duplicate parameter: customerId")
	checkQueryCases(t, loadV2(t), cases)
}

// TestQueryBoolean: a boolean read from a query string arrives as the text
// true or false, and must be accepted as a boolean.
func TestQueryBoolean(t *testing.T) {
	doc := "routes:\n  - name: list\n    method: GET\n    path: /things\n    params:\n      all: {type: boolean}\n"
	p, err := Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	const bad = "Invalid all: must be true or false"
	checkQueryCases(t, p, []queryCase{
		{"absent", "list", "", ""},
		{"true", "list", "all=true", ""},
		{"false", "list", "all=false", ""},
		{"yes", "list", "all=yes", bad},
		{"TRUE", "list", "all=TRUE", bad},
		{"1", "list", "all=1", bad},
		{"empty", "list", "all=", bad},
	})
}

// TestV2Bodies checks the body routes of keymint-v2.yaml that the built-in
// policy lacks.
func TestV2Bodies(t *testing.T) {
	checkBodyCases(t, loadV2(t), []bodyCase{
		{"valid", "create-customer", `{"name":"Ada","email":"ada@example.com"}`, ""},
		{"no email", "create-customer", `{"name":"Ada"}`, MsgMissingParams},
		{"bad email", "create-customer", `{"name":"Ada","email":"ada@"}`, "Invalid email: must be an email address"},
		{"activate without hostId", "activate-key", obj("productId", js(okProduct), "licenseKey", js(okKey)), ""},
		{"create for a customer", "create-key", obj("productId", js(okProduct), "customerId", `"cus_1"`, "metadata", `{"plan":"pro"}`), ""},
		{"create for both", "create-key", obj("productId", js(okProduct), "customerId", `"cus_1"`, "newCustomer", `{"name":"Ada"}`),
			"customerId and newCustomer cannot be used together"},
		{"update", "update-customer", `{"customerId":"cus_1","active":false}`, ""},
		{"update active as text", "update-customer", `{"customerId":"cus_1","active":"false"}`, "Invalid active: must be true or false"},
		{"update active null", "update-customer", `{"customerId":"cus_1","active":null}`, ""},
		{"toggle", "toggle-customer", `{"customerId":"cus_1"}`, ""},
		{"toggle without id", "toggle-customer", `{}`, MsgMissingParams},
	})
}

// TestQueryStable: a query string with several problems gets the same answer
// every time, not one picked by map iteration.
func TestQueryStable(t *testing.T) {
	p := loadV2(t)
	get := p.Match("GET", "/key")
	body := Default().Match("POST", "/get-key")
	for range 20 {
		_, e := get.ParseQuery("zz=1&zz=2&LicenseKey=x&productId=a&productId=b&%FF=1")
		if want := "Unexpected parameter LicenseKey (did you mean licenseKey?)"; e == nil || e.Message != want {
			t.Fatalf("ParseQuery(several problems) = %v, want 400 %q", e, want)
		}
		if name, bad := body.QueryNames("productId=1&licenseKey=2&LICENSEKEY=3"); name != "LICENSEKEY" || !bad {
			t.Fatalf("QueryNames(three names) = %q, %v; want LICENSEKEY, true", name, bad)
		}
	}
}

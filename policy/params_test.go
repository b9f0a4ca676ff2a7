package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

// Values that pass the built-in rules: productId 22 characters, licenseKey 23.
const (
	okProduct = "prd_0123456789abcdefgh"
	okKey     = "ABCDE-FGHIJ-KLMNO-PQRST"
	okHost    = "host-7f3a"
)

// js renders a Go value as JSON.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// obj renders a JSON object from name and raw JSON value pairs, in order, so
// that duplicate and odd keys can be written.
func obj(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(js(kv[i]) + ":" + kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// bodyCase is one request body for one built-in route. want is the message
// of the 400 it must get, "" when it must pass.
type bodyCase struct {
	name, route, body, want string
}

// validate runs what the proxy runs on a body: ParseBody, then Validate.
func validate(r *Route, body []byte) *Error {
	v, e := r.ParseBody(body)
	if e != nil {
		return e
	}
	return v.Validate()
}

func checkBodyCases(t *testing.T, p *Policy, cases []bodyCase) {
	t.Helper()
	routes := map[string]*Route{}
	for _, r := range p.Routes {
		routes[r.Name] = r
	}
	for _, tc := range cases {
		t.Run(tc.route+"/"+tc.name, func(t *testing.T) {
			r := routes[tc.route]
			if r == nil {
				t.Fatalf("no route %q", tc.route)
			}
			e := validate(r, []byte(tc.body))
			switch {
			case tc.want == "" && e != nil:
				t.Errorf("%s: validate(%.120q) = %v, want accepted", tc.route, tc.body, e)
			case tc.want != "" && e == nil:
				t.Errorf("%s: validate(%.120q) = accepted, want 400 %q", tc.route, tc.body, tc.want)
			case tc.want != "" && (e.Status != 400 || e.Code != CodeInvalid || e.Message != tc.want):
				t.Errorf("%s: validate(%.120q) = %d code %d %q, want 400 code 1 %q", tc.route, tc.body, e.Status, e.Code, e.Message, tc.want)
			}
		})
	}
}

// keyRoutes are the built-in routes with a required productId and licenseKey,
// and the extra fields each needs to pass.
var keyRoutes = []struct {
	name  string
	extra []string
}{
	{"get", nil},
	{"activate", []string{"hostId", js(okHost)}},
	{"deactivate", nil},
	{"block", nil},
	{"unblock", nil},
}

// TestBuiltinBodies checks the documented constraints of every built-in
// route: required params, length bounds counted in characters, JSON types.
func TestBuiltinBodies(t *testing.T) {
	const (
		missing   = MsgMissingParams
		badProd   = "Invalid productId: must be 22 to 256 characters"
		badKey    = "Invalid licenseKey: must be 23 to 256 characters"
		notString = "Invalid productId: must be a string"
	)
	var cases []bodyCase
	add := func(route, name, body, want string) {
		cases = append(cases, bodyCase{name, route, body, want})
	}
	for _, kr := range keyRoutes {
		with := func(kv ...string) string { return obj(append(kv, kr.extra...)...) }
		r := kr.name
		add(r, "valid", with("productId", js(okProduct), "licenseKey", js(okKey)), "")
		add(r, "unknown params pass", with("productId", js(okProduct), "licenseKey", js(okKey), "note", `{"a":[1,2]}`), "")
		add(r, "no productId", with("licenseKey", js(okKey)), missing)
		add(r, "no licenseKey", with("productId", js(okProduct)), missing)
		add(r, "null productId", with("productId", "null", "licenseKey", js(okKey)), missing)
		add(r, "empty licenseKey", with("productId", js(okProduct), "licenseKey", `""`), missing)
		add(r, "empty object", "{}", missing)
		add(r, "empty body", "", missing)
		add(r, "blank body", " \r\n\t", missing)
		for _, b := range []struct {
			name, product, key, want string
		}{
			{"productId 21 ASCII", strings.Repeat("p", 21), okKey, badProd},
			{"productId 22 ASCII", strings.Repeat("p", 22), okKey, ""},
			// é is two bytes: 21 of them are 42 bytes, still too short.
			{"productId 21 runes", strings.Repeat("é", 21), okKey, badProd},
			{"productId 22 runes", strings.Repeat("é", 22), okKey, ""},
			// 日 is three bytes: 256 of them are 768 bytes, still allowed.
			{"productId 256 runes", strings.Repeat("日", 256), okKey, ""},
			{"productId 257 runes", strings.Repeat("日", 257), okKey, badProd},
			{"licenseKey 22 runes", okProduct, strings.Repeat("🔑", 22), badKey},
			{"licenseKey 23 runes", okProduct, strings.Repeat("🔑", 23), ""},
			{"licenseKey 256 runes", okProduct, strings.Repeat("🔑", 256), ""},
			{"licenseKey 257 runes", okProduct, strings.Repeat("🔑", 257), badKey},
			{"licenseKey 257 ASCII", okProduct, strings.Repeat("k", 257), badKey},
		} {
			add(r, b.name, with("productId", js(b.product), "licenseKey", js(b.key)), b.want)
		}
		for _, v := range []string{`12345678901234567890123`, `true`, `false`, `{}`, `[]`, `["` + okProduct + `"]`, `{"id":"` + okProduct + `"}`, `1e22`} {
			add(r, "productId "+v, with("productId", v, "licenseKey", js(okKey)), notString)
		}
		add(r, "licenseKey number", with("productId", js(okProduct), "licenseKey", "12345678901234567890123"), "Invalid licenseKey: must be a string")
		add(r, "missing wins over invalid", with("productId", js("short")), missing)
		add(r, "control character", with("productId", js(okProduct), "licenseKey", js(okKey[:22]+"\x00")), "Invalid licenseKey: must not contain control characters")
		add(r, "DEL character", with("productId", js(okProduct[:21]+"\x7f"), "licenseKey", js(okKey)), "Invalid productId: must not contain control characters")
	}

	host := func(v string) string { return obj("productId", js(okProduct), "licenseKey", js(okKey), "hostId", v) }
	add("activate", "no hostId", obj("productId", js(okProduct), "licenseKey", js(okKey)), missing)
	add("activate", "null hostId", host("null"), missing)
	add("activate", "empty hostId", host(`""`), missing)
	add("activate", "hostId 1", host(`"h"`), "")
	add("activate", "hostId 64 runes", host(js(strings.Repeat("ü", 64))), "")
	add("activate", "hostId 65 runes", host(js(strings.Repeat("ü", 65))), "Invalid hostId: must be 1 to 64 characters")
	add("activate", "hostId number", host("7"), "Invalid hostId: must be a string")
	add("activate", "hostId newline", host(js("host\n1")), "Invalid hostId: must not contain control characters")
	tag := func(v string) string {
		return obj("productId", js(okProduct), "licenseKey", js(okKey), "hostId", js(okHost), "deviceTag", v)
	}
	add("activate", "deviceTag", tag(js("Ada's laptop")), "")
	add("activate", "deviceTag null", tag("null"), "")
	add("activate", "deviceTag empty", tag(`""`), "Invalid deviceTag: must be 1 to 64 characters")
	add("activate", "deviceTag 64 runes", tag(js(strings.Repeat("ж", 64))), "")
	add("activate", "deviceTag 65 runes", tag(js(strings.Repeat("ж", 65))), "Invalid deviceTag: must be 1 to 64 characters")
	add("activate", "deviceTag boolean", tag("false"), "Invalid deviceTag: must be a string")

	dhost := func(v string) string { return obj("productId", js(okProduct), "licenseKey", js(okKey), "hostId", v) }
	add("deactivate", "hostId", dhost(js(okHost)), "")
	add("deactivate", "null hostId", dhost("null"), "")
	add("deactivate", "empty hostId", dhost(`""`), "Invalid hostId: must be 1 to 64 characters")
	add("deactivate", "hostId 65 runes", dhost(js(strings.Repeat("x", 65))), "Invalid hostId: must be 1 to 64 characters")
	add("deactivate", "hostId array", dhost(`["a"]`), "Invalid hostId: must be a string")

	checkBodyCases(t, Default(), cases)
}

func TestValues(t *testing.T) {
	r := Default().Match("POST", "/create-key")
	body := obj("productId", `"prd_0123456789abcdef\u0067h"`, "maxActivations", `"3"`, "customerId", "null",
		"newCustomer", `{"name":"Ada"}`, "usesPerKey", "4", "expiryDate", "true")
	v, e := r.ParseBody([]byte(body))
	if e != nil {
		t.Fatalf("ParseBody(%s) = %v", body, e)
	}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"productId", okProduct, true}, // escapes decoded
		{"maxActivations", "3", true},
		{"usesPerKey", "4", true}, // a number's literal, present though invalid
		{"expiryDate", "true", true},
		{"customerId", "", false},  // null
		{"newCustomer", "", false}, // objects are not scalars
		{"licenseKey", "", false},  // not a param of the route
	}
	for _, tt := range tests {
		if got, ok := v.Get(tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if got := v.Product(); got != okProduct {
		t.Errorf("Product() = %q, want %q", got, okProduct)
	}
	var nilValues *Values
	if got, ok := nilValues.Get("productId"); got != "" || ok {
		t.Errorf("nil Values.Get(productId) = %q, %v; want \"\", false", got, ok)
	}
	if got := nilValues.Product(); got != "" {
		t.Errorf("nil Values.Product() = %q, want \"\"", got)
	}
}

func BenchmarkParseBodyValidate(b *testing.B) {
	r := Default().Match("POST", "/activate-key")
	body := []byte(obj("productId", js(okProduct), "licenseKey", js(okKey), "hostId", js(okHost), "deviceTag", js("Ada's laptop"), "extra", `{"a":[1,2,{"b":"c"}]}`))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if e := validate(r, body); e != nil {
			b.Fatal(e)
		}
	}
}

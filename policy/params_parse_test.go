package policy

import (
	"strings"
	"testing"
)

// TestParseBodyStrict covers what ParseBody refuses so that keygate and a
// backend cannot read one body two ways: duplicate keys, keys that differ
// from a checked param only in case, invalid UTF-8, and anything that is not
// one JSON object.
func TestParseBodyStrict(t *testing.T) {
	const (
		badJSON   = "Invalid JSON body"
		notObject = "Request body must be a JSON object"
		badUTF8   = "Request must be valid UTF-8"
	)
	p, k := js(okProduct), js(okKey)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	var cases []bodyCase
	add := func(name, body, want string) { cases = append(cases, bodyCase{name, "get", body, want}) }

	add("valid", obj("productId", p, "licenseKey", k), "")
	add("whitespace everywhere", " \n{ \"productId\" :\t"+p+" ,\r\n \"licenseKey\" : "+k+" } \n", "")
	add("escaped key", `{"productId":`+p+`,"licen\u0073eKey":`+k+`}`, "")
	add("escaped key and value", `{"\u0070roductId":"prd_\u0030123456789abcdefgh","licenseKey":`+k+`}`, "")
	add("surrogate pairs count once", obj("productId", p, "licenseKey", `"`+strings.Repeat(`\ud83d\udd11`, 23)+`"`), "")
	add("surrogate pairs too few", obj("productId", p, "licenseKey", `"`+strings.Repeat(`\ud83d\udd11`, 22)+`"`), "Invalid licenseKey: must be 23 to 256 characters")
	add("escaped control character", obj("productId", p, "licenseKey", `"`+okKey[:22]+`\u0000"`), "Invalid licenseKey: must not contain control characters")
	add("escaped quote in value", obj("productId", p, "licenseKey", `"ABCDE-FGHIJ-KLMNO-PQRS\""`), "")
	add("escaped backslash before quote", obj("productId", p, "licenseKey", `"ABCDE-FGHIJ-KLMNO-PQRS\\"`), "")
	add("key-like text inside a value", obj("productId", p, "licenseKey", k, "note", `"\",\"licenseKey\":\"x"`), "")
	add("params inside other values", obj("x", `{"productId":1,"licenseKey":[]}`, "productId", p, "licenseKey", k), "")
	add("deep unknown value", obj("productId", p, "licenseKey", k, "x", deep(9000)), "")

	add("duplicate param", obj("productId", p, "licenseKey", k, "licenseKey", js(okKey+"X")), "Duplicate parameter: licenseKey")
	add("duplicate identical param", obj("productId", p, "productId", p, "licenseKey", k), "Duplicate parameter: productId")
	add("duplicate unknown key", obj("productId", p, "licenseKey", k, "x", "1", "x", "2"), "Duplicate parameter: x")
	add("duplicate after null", obj("productId", p, "licenseKey", "null", "licenseKey", k), "Duplicate parameter: licenseKey")
	add("duplicate through escape", `{"productId":`+p+`,"licenseKey":`+k+`,"licen\u0073eKey":"other"}`, "Duplicate parameter: licenseKey")
	add("duplicate unprintable key", `{"a b":1,"a\u0020b":2}`, "Duplicate parameter: (unprintable name)")
	add("case variant", obj("productId", p, "LicenseKey", k), "Unexpected parameter LicenseKey (did you mean licenseKey?)")
	add("case variant beside exact", obj("productId", p, "licenseKey", k, "LICENSEKEY", k), "Unexpected parameter LICENSEKEY (did you mean licenseKey?)")
	add("escaped case variant", `{"productId":`+p+`,"\u004cicenseKey":`+k+`}`, "Unexpected parameter LicenseKey (did you mean licenseKey?)")
	// Kelvin sign and long s fold to k and s, as encoding/json matches struct fields.
	add("Kelvin sign", obj("productId", p, "licenseKey", k, "license\u212aey", k), "Unexpected parameter (unprintable name) (did you mean licenseKey?)")
	add("long s", obj("productId", p, "licenseKey", k, "licen\u017feKey", k), "Unexpected parameter (unprintable name) (did you mean licenseKey?)")
	// stricter since issue #11: one folding rule for every duplicate, checked or not
	add("unrelated key in other case", obj("productId", p, "licenseKey", k, "Note", "1", "NOTE", "2"), "Duplicate parameter: NOTE (the same name as Note to some backends)")
	add("unrelated key in snake case", obj("productId", p, "licenseKey", k, "hostName", "1", "host_name", "2"), "Duplicate parameter: host_name (the same name as hostName to some backends)")

	add("invalid UTF-8 in value", "{\"productId\":"+p+",\"licenseKey\":\"ABCDE-FGHIJ-KLMNO-PQRS\xff\"}", badUTF8)
	add("invalid UTF-8 in key", "{\"productId\":"+p+",\"licenseKey\":"+k+",\"\xc3\x28\":1}", badUTF8)
	add("invalid UTF-8 outside strings", "{\"productId\":"+p+",\"licenseKey\":"+k+"}\xff", badUTF8)
	add("overlong UTF-8", "{\"productId\":\"\xc0\xaf"+okProduct+"\",\"licenseKey\":"+k+"}", badUTF8)
	add("UTF-8 surrogate half", "{\"productId\":\"\xed\xa0\x80"+okProduct+"\",\"licenseKey\":"+k+"}", badUTF8)
	add("byte order mark", "\xef\xbb\xbf"+obj("productId", p, "licenseKey", k), badJSON)

	for _, b := range []string{`[]`, `[{"productId":` + p + `}]`, `"x"`, `42`, `null`, `true`} {
		add("not an object "+b, b, notObject)
	}
	for _, b := range []struct{ name, body string }{
		{"unclosed", `{"productId":` + p},
		{"missing value", `{"productId":}`},
		{"single quotes", `{'productId':'x'}`},
		{"trailing comma", `{"productId":` + p + `,}`},
		{"trailing garbage", obj("productId", p, "licenseKey", k) + "x"},
		{"second object", obj("productId", p, "licenseKey", k) + "{}"},
		{"trailing brace", obj("productId", p, "licenseKey", k) + "}"},
		{"NaN", `{"x":NaN}`},
		{"leading zero", `{"x":01}`},
		{"raw newline in string", "{\"x\":\"a\nb\"}"},
		{"bad escape", `{"x":"\q"}`},
		{"unpaired quote", `{"x":"}`},
		{"comment", `{"x":1 /* c */}`},
		{"too deep", obj("x", deep(10000))},
	} {
		add(b.name, b.body, badJSON)
	}
	checkBodyCases(t, Default(), cases)
}

// TestParseBodyKeys checks that the value read for a param is the one a
// backend reads, however its key was written.
func TestParseBodyKeys(t *testing.T) {
	r := Default().Match("POST", "/activate-key")
	tests := []struct {
		body string
		want map[string]string
	}{
		{`{"hostId":"a"}`, map[string]string{"hostId": "a"}},
		{`{"h\u006fstId":"\u0062"}`, map[string]string{"hostId": "b"}},
		{`{"deviceTag":"\"quoted\" \\ \/ \b\f\n\r\t"}`, map[string]string{"deviceTag": "\"quoted\" \\ / \b\f\n\r\t"}},
		{`{"deviceTag":"\ud83d\udd11 key"}`, map[string]string{"deviceTag": "🔑 key"}},
		{`{"x":{"hostId":"inner"},"hostId":"outer"}`, map[string]string{"hostId": "outer"}},
		{`{"hostId":7}`, map[string]string{"hostId": "7"}},
	}
	for _, tt := range tests {
		v, e := r.ParseBody([]byte(tt.body))
		if e != nil {
			t.Errorf("ParseBody(%s) = %v, want no error", tt.body, e)
			continue
		}
		for name, want := range tt.want {
			if got, ok := v.Get(name); !ok || got != want {
				t.Errorf("ParseBody(%s).Get(%q) = %q, %v; want %q, true", tt.body, name, got, ok, want)
			}
		}
	}
}

func TestQueryNames(t *testing.T) {
	p := Default()
	get := p.Match("POST", "/get-key")
	tests := []struct {
		query    string
		wantName string
		wantBad  bool
	}{
		{"", "", false},
		{"trace=1", "", false},
		{"licenseKey=x", "licenseKey", true},
		{"LICENSEKEY=x", "LICENSEKEY", true},
		{"productId", "productId", true},
		{"a=%zz", "", true},
		{"a=1;b=2", "", true},
	}
	for _, tt := range tests {
		name, bad := get.QueryNames(tt.query)
		if name != tt.wantName || bad != tt.wantBad {
			t.Errorf("QueryNames(%q) = %q, %v; want %q, %v", tt.query, name, bad, tt.wantName, tt.wantBad)
		}
	}
}

func TestPrototypeKeysRefused(t *testing.T) {
	r := Default().Match("POST", "/get-key")
	for _, key := range []string{"__proto__", "constructor", "prototype"} {
		body := `{"productId":"prod_test_0000000000000001","licenseKey":"KEY-TEST-0000-0000-0000-0001","` + key + `":{"licenseKey":"x"}}`
		_, e := r.ParseBody([]byte(body))
		if e == nil || e.Status != 400 || e.Message != "Parameter "+key+" is not allowed" {
			t.Errorf("ParseBody(%s) = %v, want 400 Parameter %s is not allowed", key, e, key)
		}
	}
}

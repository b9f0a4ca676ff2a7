package policy

import (
	"strings"
	"testing"
)

// TestFoldName: every spelling some mainstream binder reads as productId
// folds onto it; names no binder confuses stay apart.
func TestFoldName(t *testing.T) {
	same := []struct{ why, name string }{
		{"exact", "productId"},
		{"case", "PRODUCTID"},
		{"dotless i (Java equalsIgnoreCase, Python upper)", "product\u0131d"},
		{"dotted capital I", "product\u0130d"},
		{"fullwidth letters (NFKC)", "\uff50\uff52\uff4f\uff44\uff55\uff43\uff54\uff29\uff44"},
		{"underscore (relaxed binding)", "product_id"},
		{"kebab case", "product-id"},
		{"dot (PHP name mangling)", "product.Id"},
		{"space (PHP name mangling)", "product Id"},
		{"zero-width space", "product\u200bId"},
		{"soft hyphen", "product\u00adId"},
		{"combining accent", "produ\u0301ctId"},
		{"NUL", "productId\x00"},
		{"non-breaking hyphen", "product\u2011id"},
	}
	for _, tc := range same {
		t.Run(tc.why, func(t *testing.T) {
			if got := FoldName(tc.name); got != "productid" {
				t.Errorf("FoldName(%q) = %q, want productid", tc.name, got)
			}
			if !SameName(tc.name, "productId") {
				t.Errorf("SameName(%q, productId) = false, want true", tc.name)
			}
		})
	}
	for _, pair := range [][2]string{
		{"license\u212aey", "licensekey"}, // Kelvin sign
		{"licen\u017feKey", "licensekey"}, // long s
		{"stra\u00dfe", "strasse"},        // sharp s: full case folding
		{"\ufb01eld", "field"},            // ligature
	} {
		if got := FoldName(pair[0]); got != pair[1] {
			t.Errorf("FoldName(%q) = %q, want %q", pair[0], got, pair[1])
		}
	}
	for _, other := range []string{"productIds", "product", "licenseKey", "pr0ductId", "\u0440roductId" /* Cyrillic er */} {
		if SameName(other, "productId") {
			t.Errorf("SameName(%q, productId) = true, want false", other)
		}
	}
}

// TestParseBodyNameVariants: a JSON key that folds onto a checked param is
// refused, wherever it comes and whatever its spelling (issue #11 item 3).
func TestParseBodyNameVariants(t *testing.T) {
	p, k := js(okProduct), js(okKey)
	var cases []bodyCase
	for _, tc := range []struct{ name, key, msg string }{
		{"dotless i", "product\u0131d", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"dotted capital I", "PRODUCT\u0130D", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"fullwidth", "\uff50roductId", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"snake case", "product_id", "Unexpected parameter product_id (did you mean productId?)"},
		{"kebab case", "license-key", "Unexpected parameter (unprintable name) (did you mean licenseKey?)"},
		{"zero-width space", "license\u200bKey", "Unexpected parameter (unprintable name) (did you mean licenseKey?)"},
	} {
		other := js("prd_other_product_00000")
		cases = append(cases, bodyCase{tc.name + " after", "get", obj("productId", p, "licenseKey", k, tc.key, other), tc.msg})
		cases = append(cases, bodyCase{tc.name + " before", "get", obj(tc.key, other, "productId", p, "licenseKey", k), tc.msg})
	}
	checkBodyCases(t, Default(), cases)
}

// TestQueryNameVariants: on a body route, query names that a framework
// binds to a checked body param are refused (issue #11 item 2); on a query
// route they are refused beside the param they shadow.
func TestQueryNameVariants(t *testing.T) {
	get := Default().Match("POST", "/get-key")
	for _, raw := range []string{
		"productId[]=B", "productId%5B%5D=B", "productId%5B0%5D=B", "productId[x]=B", "productId.x=B",
		"product_id=B", "PRODUCT-ID=B", "product%C4%B1d=B", "product%E2%80%8BId=B",
		"%5BproductId=B", "%5DproductId=B", "productId%5D=B", "%5B%5DproductId%5D%5D=B",
		"trace=1&licenseKey[]=K",
	} {
		if name, bad := get.QueryNames(raw); !bad || name == "" {
			t.Errorf("QueryNames(%q) = %q, %v; want the variant named, true", raw, name, bad)
		}
	}
	for _, raw := range []string{"trace=1", "products=1", "x[productId]=1"} {
		if name, bad := get.QueryNames(raw); bad {
			t.Errorf("QueryNames(%q) = %q, %v; want accepted", raw, name, bad)
		}
	}
	base := q("productId", okProduct, "licenseKey", okKey)
	var cases []queryCase
	for _, tc := range []struct{ raw, shown string }{
		{"productId[]", "(unprintable name)"},
		{"productId%5B0%5D", "(unprintable name)"},
		{"product_id", "product_id"},
		{"product%C4%B1d", "(unprintable name)"},
	} {
		cases = append(cases, queryCase{tc.raw, "get-key", base + "&" + tc.raw + "=prd_other",
			"Unexpected parameter " + tc.shown + " (did you mean productId?)"})
	}
	checkQueryCases(t, loadV2(t), cases)
}

// TestBucketForm: every variant of a spent key that some backend reads as
// the same key names the same bucket (issue #11 item 4).
func TestBucketForm(t *testing.T) {
	const key = "KEY-TEST-0000-0000-0000-0001"
	want := BucketForm(key)
	if want != "key-test-0000-0000-0000-0001" {
		t.Fatalf("BucketForm(%q) = %q, want it lower-cased", key, want)
	}
	for _, tc := range []struct{ why, v string }{
		{"trailing space", key + " "},
		{"leading tab", "\t" + key},
		{"lower case", strings.ToLower(key)},
		{"fullwidth letter", "\uff2bEY-TEST-0000-0000-0000-0001"},
		{"fullwidth digit", "KEY-TEST-0000-0000-0000-000\uff11"},
		{"zero-width space", "KEY-TEST-\u200b0000-0000-0000-0001"},
		{"NBSP", key + "\u00a0"},
		{"C1 control", key + "\u0085"},
		{"BOM", "\ufeff" + key},
		{"dotted capital I in other case", "KEY-TEST-0000-0000-0000-0001"},
		{"combining accent", "KE\u0301Y-TEST-0000-0000-0000-0001"},
		{"ideographic space", "\u3000" + key},
		{"sharp s, which utf8mb4_general_ci reads as s", "KEY-TE\u00dfT-0000-0000-0000-0001"},
		{"capital sharp s", "KEY-TE\u1e9eT-0000-0000-0000-0001"},
		{"sharp s in lower case", "KEY-te\u00dft-0000-0000-0000-0001"},
		{"ss, which utf8mb4_unicode_ci reads as sharp s", "KEY-TESST-0000-0000-0000-0001"},
		{"long s", "KEY-TE\u017fT-0000-0000-0000-0001"},
		{"sharp s beside s", "KEY-TES\u00dfsT-0000-0000-0000-0001"},
	} {
		if got := BucketForm(tc.v); got != want {
			t.Errorf("BucketForm(%q) [%s] = %q, want %q", tc.v, tc.why, got, want)
		}
	}
	if BucketForm("KEY-TEST-0000-0000-0000-0002") == want {
		t.Errorf("BucketForm merges distinct keys")
	}
}

func TestBucketValue(t *testing.T) {
	p, err := Parse("t", []byte(`routes:
  - name: a
    method: POST
    path: /a
    product: body.productId
    params:
      productId: {}
      licenseKey: {}
      exact: {bucket: exact}
`))
	if err != nil {
		t.Fatal(err)
	}
	v, e := p.Routes[0].ParseBody([]byte(`{"productId":"PROD ","licenseKey":"\uff2bEY","exact":"\uff2bEY"}`))
	if e != nil {
		t.Fatal(e)
	}
	for _, tc := range []struct{ name, want string }{{"licenseKey", "key"}, {"exact", "\uff2bEY"}} {
		if got, ok := v.BucketValue(tc.name); got != tc.want || !ok {
			t.Errorf("BucketValue(%s) = %q, %v; want %q, true", tc.name, got, ok, tc.want)
		}
	}
	if got := v.BucketProduct(); got != "prod" {
		t.Errorf("BucketProduct() = %q, want prod", got)
	}
	if got, _ := v.Get("licenseKey"); got != "\uff2bEY" {
		t.Errorf("Get(licenseKey) = %q, want the client's bytes", got)
	}
}

// TestInvisibleCharactersRefused: checked strings refuse C1 controls always,
// and zero-width and bidi characters unless allow_invisible is set.
func TestInvisibleCharactersRefused(t *testing.T) {
	const (
		control   = "Invalid licenseKey: must not contain control characters"
		invisible = "Invalid licenseKey: must not contain invisible or bidirectional control characters"
	)
	p := js(okProduct)
	var cases []bodyCase
	for _, tc := range []struct{ name, v, want string }{
		{"C1 NEL", okKey + "\u0085", control},
		{"C1 CSI", "\u009b" + okKey, control},
		{"DEL", okKey + "\u007f", control},
		{"zero-width space", okKey + "\u200b", invisible},
		{"zero-width joiner", okKey + "\u200d", invisible},
		{"right-to-left override", "\u202e" + okKey, invisible},
		{"BOM", "\ufeff" + okKey, invisible},
		{"soft hyphen", okKey + "\u00ad", invisible},
		{"line separator", okKey + "\u2028", invisible},
		{"tag character", okKey + "\U000E0041", invisible},
		{"accented letters pass", okKey + "\u00e9\u00df", ""},
		{"emoji pass", okKey + "\U0001F511", ""},
	} {
		cases = append(cases, bodyCase{tc.name, "get", obj("productId", p, "licenseKey", js(tc.v)), tc.want})
	}
	checkBodyCases(t, Default(), cases)

	pol, err := Parse("t", []byte(`routes:
  - name: a
    method: POST
    path: /a
    params:
      tag: {allow_invisible: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ v, want string }{
		{"a\u200db", ""},
		{"\u202ea", ""},
		{"a\u0085", "Invalid tag: must not contain control characters"},
	} {
		v, e := pol.Routes[0].ParseBody([]byte(obj("tag", js(tc.v))))
		if e == nil {
			e = v.Validate()
		}
		if got := errMsg(e); got != tc.want {
			t.Errorf("allow_invisible: tag %q = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func errMsg(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Message
}

// TestManyKeysLinear: a body of thousands of distinct keys is accepted, and
// its duplicate is found however far apart the two are.
func TestManyKeysLinear(t *testing.T) {
	r := Default().Match("POST", "/get-key")
	body := keyFlood(6000, "")
	if _, e := r.ParseBody(body); e != nil {
		t.Fatalf("ParseBody(6,000 distinct keys) = %v, want accepted", e)
	}
	dup := keyFlood(6000, `"k0":1,`)
	if _, e := r.ParseBody(dup); errMsg(e) != "Duplicate parameter: k0" {
		t.Errorf("ParseBody(6,000 keys, k0 twice) = %v, want Duplicate parameter: k0", e)
	}
}

// TestKeyCheckLinear counts the name comparisons of the duplicate-key
// check: a body of 6,000 distinct keys must cost a bounded number per key,
// not one per earlier key (18 million for pairwise comparison).
func TestKeyCheckLinear(t *testing.T) {
	var calls int
	compareNames = func(a, b string) bool { calls++; return SameName(a, b) }
	defer func() { compareNames = SameName }()
	r := Default().Match("POST", "/get-key")
	for _, n := range []int{10, 6000} {
		calls = 0
		if _, e := r.ParseBody(keyFlood(n, "")); e != nil {
			t.Fatalf("ParseBody(%d keys) = %v, want accepted", n, e)
		}
		if max := smallKeys * smallKeys; calls > max {
			t.Errorf("ParseBody(%d keys) compared names %d times, want at most %d", n, calls, max)
		}
	}
}

// keyFlood is a get-key body with n distinct extra keys; extra is inserted
// just before the closing brace.
func keyFlood(n int, extra string) []byte {
	var b strings.Builder
	b.WriteString(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `"`)
	for i := range n {
		b.WriteString(`,"k`)
		b.WriteString(itoa(i))
		b.WriteString(`":1`)
	}
	if extra != "" {
		b.WriteString("," + strings.TrimSuffix(extra, ","))
	}
	b.WriteString("}")
	return []byte(b.String())
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

// TestFoldedDuplicates: two names that some binder reads as one are refused
// together, whether or not a rule checks them, in bodies of any size and in
// query strings.
func TestFoldedDuplicates(t *testing.T) {
	r := Default().Match("POST", "/get-key")
	for _, n := range []int{2, 40} { // the pairwise path and the map path
		body := keyFlood(n, `"k0x":1,"K_0X":2`)
		if _, e := r.ParseBody(body); errMsg(e) != "Duplicate parameter: K_0X (the same name as k0x to some backends)" {
			t.Errorf("ParseBody(%d keys, k0x and K_0X) = %v, want the duplicate named", n, e)
		}
		body = keyFlood(n, `"\u00e9t\u00e9":1,"E\u0301TE\u0301":2`)
		if _, e := r.ParseBody(body); e == nil || !strings.HasPrefix(e.Message, "Duplicate parameter: ") {
			t.Errorf("ParseBody(%d keys, été twice in two forms) = %v, want a duplicate", n, e)
		}
	}
	get := loadV2(t).Match("GET", "/key")
	if get == nil {
		t.Fatal("no GET /key route in keymint-v2.yaml")
	}
	_, e := get.ParseQuery(q("productId", okProduct, "licenseKey", okKey, "note", "a", "NOTE", "b"))
	if errMsg(e) != "Duplicate parameter: note (the same name as NOTE to some backends)" {
		t.Errorf("ParseQuery(note and NOTE) = %v, want the duplicate named", e)
	}
}

// TestMethodOverrideRefused: a body key that frameworks read as the method
// of a POST is refused, whatever its case.
func TestMethodOverrideRefused(t *testing.T) {
	p, k := js(okProduct), js(okKey)
	checkBodyCases(t, Default(), []bodyCase{
		{"_method", "get", obj("productId", p, "licenseKey", k, "_method", `"DELETE"`), "Parameter _method is not allowed"},
		{"_METHOD", "get", obj("_METHOD", `"PUT"`, "productId", p, "licenseKey", k), "Parameter _METHOD is not allowed"},
		{"method is a plain name", "get", obj("productId", p, "licenseKey", k, "method", `"card"`), ""},
	})
}

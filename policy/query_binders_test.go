package policy

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestQueryNamesBindersCut: query names that PHP (cut at NUL) or Rack 2
// (leading '[' and ']', trailing ']' dropped) bind to a checked param, and
// names holding controls, are refused on query routes beside the param
// they would shadow.
func TestQueryNamesBindersCut(t *testing.T) {
	base := q("productId", okProduct, "licenseKey", okKey)
	var cases []queryCase
	for _, tc := range []struct{ name, raw, want string }{
		{"PHP NUL cut", "productId%00x", msgControlName},
		{"NUL alone", "productId%00", msgControlName},
		{"C0 control", "licenseKey%01", msgControlName},
		{"DEL", "license%7FKey", msgControlName},
		{"C1 control", "productId%C2%85", msgControlName},
		{"C1 control, unchecked name", "note%C2%9F", msgControlName},
		{"Rack 2 leading [", "%5BproductId", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"Rack 2 leading ]", "%5DproductId", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"Rack 2 trailing ]", "productId%5D", "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"Rack 2 both, folded", "%5B%5DLICENSE_KEY%5D%5D", "Unexpected parameter (unprintable name) (did you mean licenseKey?)"},
		{"long name", strings.Repeat("n", maxNameBytes+1), msgNameTooLong},
	} {
		cases = append(cases,
			queryCase{tc.name + " after", "get-key", base + "&" + tc.raw + "=B", tc.want},
			queryCase{tc.name + " before", "get-key", tc.raw + "=B&" + base, tc.want})
	}
	cases = append(cases,
		queryCase{"longest name", "get-key", base + "&" + strings.Repeat("n", maxNameBytes) + "=1", ""},
		queryCase{"nested bracket is another name", "get-key", base + "&x%5BproductId%5D=1", ""})
	checkQueryCases(t, loadV2(t), cases)
}

// TestQueryNamesControlsOnBodyRoutes: body routes refuse query names with
// controls or over the length bound as a malformed query.
func TestQueryNamesControlsOnBodyRoutes(t *testing.T) {
	get := Default().Match("POST", "/get-key")
	for _, raw := range []string{"productId%00=B", "trace%00x=1", "a%1F=1", "a%7F=1", "a%C2%80=1", strings.Repeat("t", maxNameBytes+1) + "=1"} {
		if name, bad := get.QueryNames(raw); !bad || name != "" {
			t.Errorf("QueryNames(%.40q) = %q, %v; want \"\", true", raw, name, bad)
		}
	}
}

// TestForwardQueryRebuilt: a query route forwards a query rebuilt from the
// checked params, one value each, canonically escaped, in sorted
// order; nothing else the client sent.
func TestForwardQueryRebuilt(t *testing.T) {
	r := loadV2(t).Match("GET", "/key")
	want := "licenseKey=" + okKey + "&productId=" + okProduct // params in sorted order
	for _, tc := range []struct{ name, raw, want string }{
		{"plain", "productId=" + okProduct + "&licenseKey=" + okKey, want},
		{"client order", "licenseKey=" + okKey + "&productId=" + okProduct, want},
		{"escapes made canonical", "productId=" + okProduct + "&licenseKey=" + strings.ReplaceAll(okKey, "-", "%2d"), want},
		{"other names dropped", "x=1&productId=" + okProduct + "&y&licenseKey=" + okKey + "&z%5B%5D=2", want},
		{"value escaped", "productId=" + okProduct + "&licenseKey=a+b%26c%3Dd%25", "licenseKey=a+b%26c%3Dd%25&productId=" + okProduct},
		{"absent param left out", "licenseKey=" + okKey, "licenseKey=" + okKey},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, e := r.ParseQuery(tc.raw); e != nil || v == nil {
				t.Fatalf("ParseQuery(%q) = %v, want accepted", tc.raw, e)
			}
			if got := r.ForwardQuery(tc.raw); got != tc.want {
				t.Errorf("ForwardQuery(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

// TestNameFoldWorkBounded counts the runes folded per parse: a body or a
// query whose names are all U+FDFA (one rune, 18 after NFKD) is refused
// once its non-ASCII names pass maxFoldBytes, and no key is folded twice.
func TestNameFoldWorkBounded(t *testing.T) {
	var runes, names int
	countFolded = func(s string) { runes += utf8.RuneCountInString(s); names++ }
	defer func() { countFolded = func(string) {} }()
	lig := "\ufdfa"
	keys := func(n int, esc bool) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			k := strings.Repeat(lig, 3) + strings.Repeat("a", i%7) + string(rune('a'+i%26)) + strings.Repeat("b", i/26)
			if esc {
				k = strings.ReplaceAll(k, lig, `\ufdfa`)
			}
			b.WriteString(`"` + k + `":1`)
		}
		b.WriteString("}")
		return b.String()
	}
	qnames := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, url.QueryEscape(lig+lig+strings.Repeat("a", i))+"=1")
		}
		return strings.Join(parts, "&")
	}
	body := Default().Match("POST", "/activate-key")
	query := loadV2(t).Match("GET", "/key")
	for _, tc := range []struct {
		name      string
		parse     func() *Error
		want      string
		maxRunes  int
		wantNames int // -1: not checked
	}{
		{"one long key", func() *Error { _, e := body.ParseBody([]byte(`{"` + strings.Repeat(lig, 20000) + `":1}`)); return e }, msgNameTooLong, 0, 0},
		{"one long escaped key", func() *Error {
			_, e := body.ParseBody([]byte(`{"` + strings.Repeat(`\ufdfa`, 20000) + `":1}`))
			return e
		}, msgNameTooLong, 0, 0},
		{"one long query name", func() *Error { _, e := query.ParseQuery(strings.Repeat("%EF%B7%BA", 20000) + "=1"); return e }, msgNameTooLong, 0, 0},
		{"few keys folded once each", func() *Error { _, e := body.ParseBody([]byte(keys(20, false))); return e }, "", 20 * 16, 20},
		{"few query names folded once each", func() *Error { _, e := query.ParseQuery(qnames(20)); return e }, "", 20 * 22, 20},
		{"many keys", func() *Error { _, e := body.ParseBody([]byte(keys(4000, false))); return e }, msgFoldBudget, maxFoldBytes, -1},
		{"many escaped keys", func() *Error { _, e := body.ParseBody([]byte(keys(4000, true))); return e }, msgFoldBudget, maxFoldBytes, -1},
		{"many query names", func() *Error { _, e := query.ParseQuery(qnames(2000)); return e }, msgFoldBudget, maxFoldBytes, -1},
		{"many query names, body route", func() *Error {
			if _, bad := body.QueryNames(qnames(2000)); bad {
				return badRequest(msgBadQuery)
			}
			return nil
		}, msgBadQuery, maxFoldBytes, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runes, names = 0, 0
			e := tc.parse()
			switch {
			case tc.want == "" && e != nil:
				t.Errorf("parse = %v, want accepted", e)
			case tc.want != "" && (e == nil || e.Status != 400 || e.Message != tc.want):
				t.Errorf("parse = %v, want 400 %q", e, tc.want)
			}
			if runes > tc.maxRunes {
				t.Errorf("runes folded = %d, want at most %d", runes, tc.maxRunes)
			}
			if tc.wantNames >= 0 && names != tc.wantNames {
				t.Errorf("names folded = %d, want %d (each key once)", names, tc.wantNames)
			}
		})
	}
}

package policy

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzFoldName: FoldName is idempotent, SameName agrees with it, case
// mappings of a name never escape its fold, and BucketForm is idempotent.
func FuzzFoldName(f *testing.F) {
	for _, s := range []string{"productId", "product\u0131d", "PRODUCT\u0130D", "stra\u00dfe", "\ufb01", "license\u212aey",
		"\u1e9e", "\u0390", "a\u200bb", "x_y-z.w v", "\uff50", "\u01c5", "\u03a3\u03c2", ""} {
		f.Add(s, "productId")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return // keygate refuses invalid UTF-8 before names are compared
		}
		fa := FoldName(a)
		if again := FoldName(fa); again != fa {
			t.Fatalf("FoldName(FoldName(%q)) = %q, want %q", a, again, fa)
		}
		if got, want := SameName(a, b), fa == FoldName(b); got != want {
			t.Fatalf("SameName(%q, %q) = %v, want %v", a, b, got, want)
		}
		if isASCII(a) {
			if up := FoldName(strings.ToUpper(a)); up != fa {
				t.Fatalf("FoldName(ToUpper(%q)) = %q, want %q", a, up, fa)
			}
		}
		if fb := BucketForm(a); BucketForm(fb) != fb {
			t.Fatalf("BucketForm(BucketForm(%q)) = %q, want %q", a, BucketForm(fb), fb)
		}
	})
}

// FuzzQueryNames checks the one-pass QueryNames against the same question
// asked through url.ParseQuery: the same verdict and the same name.
func FuzzQueryNames(f *testing.F) {
	for _, s := range []string{"", "trace=1", "productId[]=B", "a=%zz", "a=1;b=2", "productId", "b+=1&product_id=2&%41=3",
		"licenseKey%5B0%5D=x&productId.x=y", "=&=", "%", "x=%4", "trace=1#licenseKey=x"} {
		f.Add(s)
	}
	r := Default().Match("POST", "/get-key")
	f.Fuzz(func(t *testing.T, raw string) {
		name, bad := r.QueryNames(raw)
		wantName, wantBad := "", false
		if q, err := url.ParseQuery(raw); err != nil || strings.Contains(raw, "#") { // '#': a fragment to some backends
			wantBad = true
		} else if slices.ContainsFunc(slices.Collect(maps.Keys(q)), func(k string) bool { return checkName(k) != nil || controlName(k) }) {
			wantBad = true
		} else {
			for _, k := range slices.Sorted(maps.Keys(q)) {
				if r.queryVariant(k) >= 0 {
					wantName, wantBad = k, true
					break
				}
			}
		}
		if name != wantName || bad != wantBad {
			t.Fatalf("QueryNames(%q) = %q, %v; want %q, %v", raw, name, bad, wantName, wantBad)
		}
	})
}

// FuzzParseQueryOnePass checks the one-pass ParseQuery against the same
// rules applied to url.ParseQuery's map in sorted order: the same error, or
// the same values.
func FuzzParseQueryOnePass(f *testing.F) {
	for _, s := range []string{"", "productId=a&licenseKey=b", "zz=1&zz=2&LicenseKey=x&productId=a&productId=b&%FF=1",
		"PRODUCTID=a&productId=b", "product_id=a&productId=b", "a=1&A=2&b=%FF", "x=1&X=2&x=3", "%zz", "a;b", "+=+&%20=1"} {
		f.Add(s)
	}
	r := loadV2(f).Match("GET", "/key")
	f.Fuzz(func(t *testing.T, raw string) {
		got, gotErr := r.ParseQuery(raw)
		want, wantErr := referenceParseQuery(r, raw)
		if errMsg(gotErr) != errMsg(wantErr) {
			t.Fatalf("ParseQuery(%q) = %q, reference %q", raw, errMsg(gotErr), errMsg(wantErr))
		}
		same := func(a, b value) bool { return a.kind == b.kind && a.str == b.str }
		if gotErr == nil && !slices.EqualFunc(got.vals, want.vals, same) {
			t.Fatalf("ParseQuery(%q) values = %v, reference %v", raw, got.vals, want.vals)
		}
	})
}

func referenceParseQuery(r *Route, raw string) (*Values, *Error) {
	v := newValues(r)
	if raw == "" {
		return v, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest(msgBadQuery)
	}
	names := slices.Sorted(maps.Keys(q))
	var seen []string
	for _, k := range names {
		vs := q[k]
		if e := checkName(k); e != nil {
			return nil, e
		}
		if controlName(k) {
			return nil, badRequest(msgControlName)
		}
		if len(vs) > 1 {
			return nil, badRequest("Duplicate parameter: %s", safeName(k))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			return nil, badRequest(msgBadUTF8)
		}
		i := paramIndexIn(r.params, k)
		if i < 0 {
			if j := queryVariantIn(r.params, k); j >= 0 {
				return nil, badRequest("Unexpected parameter %s (did you mean %s?)", safeName(k), r.params[j].Name)
			}
		}
		for _, prev := range seen {
			if FoldName(prev) == FoldName(k) {
				return nil, duplicate(prev, k)
			}
		}
		seen = append(seen, k)
		if i >= 0 {
			v.vals[i] = value{kind: 's', str: vs[0]}
			if r.params[i].Type == "boolean" && (vs[0] == "true" || vs[0] == "false") {
				v.vals[i].kind = 'b'
			}
		}
	}
	return v, nil
}

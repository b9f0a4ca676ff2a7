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
		"licenseKey%5B0%5D=x&productId.x=y", "=&=", "%", "x=%4"} {
		f.Add(s)
	}
	r := Default().Match("POST", "/get-key")
	f.Fuzz(func(t *testing.T, raw string) {
		name, bad := r.QueryNames(raw)
		wantName, wantBad := "", false
		if q, err := url.ParseQuery(raw); err != nil {
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

package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Bucket forms of a parameter (Param.Bucket): how its value names a
// rate-limit bucket.
const (
	BucketFold  = "fold"  // BucketForm of the value: its variants share one bucket (the default)
	BucketExact = "exact" // the value's exact text
)

// BucketForm returns the conservative normal form of a parameter value used
// for rate-limit bucket identity, so that every spelling a backend may read
// as the same key meets in one bucket: compatibility decomposition (NFKD)
// with combining marks dropped (fullwidth letters, ligatures and accents, as
// accent-insensitive collations compare), full case folding and
// lower(upper(r)) per rune, controls and invisible characters (zero-width,
// bidi, soft hyphen, BOM) dropped, the result composed (NFC) and trimmed of
// white space (NBSP included), and every run of "s" collapsed to one "s".
// The last step joins the two readings of ß: full case folding and
// utf8mb4_unicode_ci read it as "ss", MySQL's utf8mb4_general_ci as "s"; so
// "KEY-TEßT", "KEY-TESST" and "KEY-TEST" share one bucket. It merges more
// values than any one backend does, never fewer. The value forwarded stays
// the client's.
func BucketForm(s string) string {
	if isASCII(s) {
		return collapseS(bucketASCII(s))
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range cases.Fold().String(norm.NFKD.String(s)) {
		r = unicode.ToLower(unicode.ToUpper(r))
		if r == utf8.RuneError || invisible(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) {
			continue
		}
		b.WriteRune(r)
	}
	return collapseS(strings.TrimFunc(norm.NFC.String(b.String()), unicode.IsSpace))
}

// collapseS replaces every run of 's' in a case-folded s with one 's'.
func collapseS(s string) string {
	if !strings.Contains(s, "ss") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == 's' && i > 0 && s[i-1] == 's' {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func bucketASCII(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f {
			b = append(b, lowerASCII(c))
		}
	}
	return string(b)
}

// BucketValue returns a parameter's value in the form that names its
// rate-limit buckets: BucketForm unless the parameter's rule says
// `bucket: exact`. ok is as for Get.
func (v *Values) BucketValue(name string) (string, bool) {
	s, ok := v.Get(name)
	if !ok {
		return s, ok
	}
	return v.route.params[v.route.paramIndex(name)].bucketForm(s), true
}

// BucketProduct is Product in the form that names rate-limit buckets.
func (v *Values) BucketProduct() string {
	if v == nil || v.route.product < 0 {
		return ""
	}
	return v.route.params[v.route.product].bucketForm(v.vals[v.route.product].str)
}

func (p *Param) bucketForm(s string) string {
	if p.Bucket == BucketExact {
		return s
	}
	return BucketForm(s)
}

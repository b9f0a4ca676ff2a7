package policy

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FoldName returns the form under which two parameter names are "the same
// name" to some mainstream binder, so that keygate refuses both spellings
// rather than check one while the backend reads the other. It is the union
// of what binders do, not one of them:
//
//   - compatibility normalization (NFKD), and combining marks dropped, so
//     fullwidth, ligature and accented spellings meet the plain letters;
//   - full Unicode case folding, and lower(upper(r)) per rune, which is what
//     Java's equalsIgnoreCase and Python's upper() compare: "ı" (dotless i),
//     "ſ" (long s), "K" (Kelvin) and "ß" fold onto i, s, k and ss;
//   - the separators '_', '-', '.' and ' ' dropped (Spring's relaxed
//     binding, PHP's name mangling), and control and invisible (format)
//     characters dropped.
//
// FoldName is idempotent. ASCII names take a fast path; others cost one
// allocation.
func FoldName(s string) string {
	if isASCII(s) {
		return foldASCII(s)
	}
	countFolded(s)
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = foldRune(b, r, 0)
	}
	return string(b)
}

// foldRune appends the fold of r to b. Decomposition and case mapping are
// applied per rune, without allocating, until nothing changes: the rune's
// compatibility decomposition (NFKD) is folded part by part, and a rune
// without one is mapped to lower(upper(r)) and folded again if that differs.
// Full case folding differs from that only for ß and ẞ, mapped to ss here,
// and for Greek letters with an iota subscript, which it spells with a
// separate ι where this drops the subscript as a mark: its other multi-rune
// entries are letters that NFKD splits into a base letter and marks, or
// ligatures it expands. Neither difference can make a name fold onto an
// ASCII one.
func foldRune(b []byte, r rune, depth int) []byte {
	if r < utf8.RuneSelf {
		if c := byte(r); !nameSep(c) {
			b = append(b, lowerASCII(c))
		}
		return b
	}
	if r == utf8.RuneError || dropInName(r) {
		return b
	}
	if r == '\u00df' || r == '\u1e9e' {
		return append(b, "ss"...)
	}
	if depth > 4 { // no Unicode mapping chains this deep; stop rather than loop
		return utf8.AppendRune(b, r)
	}
	var buf [utf8.UTFMax]byte
	if d := norm.NFKD.Properties(utf8.AppendRune(buf[:0], r)).Decomposition(); d != nil {
		for _, p := range string(d) {
			b = foldRune(b, p, depth+1)
		}
		return b
	}
	if u := unicode.ToLower(unicode.ToUpper(r)); u != r {
		return foldRune(b, u, depth+1)
	}
	return utf8.AppendRune(b, r)
}

// SameName reports whether FoldName(a) == FoldName(b), without allocating
// when both are ASCII.
func SameName(a, b string) bool {
	if isASCII(a) && isASCII(b) {
		i, j := 0, 0
		for {
			for i < len(a) && nameSep(a[i]) {
				i++
			}
			for j < len(b) && nameSep(b[j]) {
				j++
			}
			if i == len(a) || j == len(b) {
				return i == len(a) && j == len(b)
			}
			if lowerASCII(a[i]) != lowerASCII(b[j]) {
				return false
			}
			i++
			j++
		}
	}
	return FoldName(a) == FoldName(b)
}

func foldASCII(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; nameSep(c) || (c >= 'A' && c <= 'Z') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if !nameSep(s[i]) {
			b = append(b, lowerASCII(s[i]))
		}
	}
	return string(b)
}

// nameSep reports the ASCII bytes FoldName drops: separators binders ignore
// or rewrite, and controls.
func nameSep(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == ' ' || c < 0x20 || c == 0x7f
}

func dropInName(r rune) bool {
	if r < utf8.RuneSelf {
		return nameSep(byte(r))
	}
	return unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || invisible(r) || unicode.IsSpace(r) ||
		r == '\u2010' || r == '\u2011' || r == '\u2212' // hyphens that NFKD keeps
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// invisible reports code points that render as nothing or steer rendering:
// C0 and C1 controls, format characters (zero-width spaces and joiners, bidi
// controls, the BOM, soft hyphen, tags), line and paragraph separators, and
// the other default-ignorable code points (variation selectors, Hangul
// fillers, the combining grapheme joiner).
func invisible(r rune) bool {
	switch {
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return true
	case r < 0xa0:
		return false
	case r == 0x34f || r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0 || r == 0x2028 || r == 0x2029:
		return true
	case r >= 0x180b && r <= 0x180f, r >= 0xfe00 && r <= 0xfe0f, r >= 0xe0000 && r <= 0xe0fff:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

package jsonscan

import "bytes"

// LoneSurrogate reports whether JSON that json.Valid accepted holds a \u
// escape of a surrogate (U+D800 to U+DFFF) that is not a high one followed
// at once by a low one. Go's decoder reads such an escape as U+FFFD, Node
// and Python keep the lone surrogate: two parsers read two strings. Backslashes
// appear in valid JSON only inside strings, each starting an escape, so a
// scan from one to the next is exact.
func LoneSurrogate(b []byte) bool {
	for i := bytes.IndexByte(b, '\\'); i >= 0; {
		// b[i] starts an escape: two bytes, or six for \uXXXX
		if b[i+1] != 'u' {
			i = nextBackslash(b, i+2)
			continue
		}
		r := hex4(b[i+2 : i+6])
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true // a low half first
		case r >= 0xd800 && r <= 0xdbff:
			j := i + 6
			if j+6 > len(b) || b[j] != '\\' || b[j+1] != 'u' {
				return true
			}
			if lo := hex4(b[j+2 : j+6]); lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i = nextBackslash(b, j+6)
		default:
			i = nextBackslash(b, i+6)
		}
	}
	return false
}

// nextBackslash returns the index of the first backslash at or after from, or -1.
func nextBackslash(b []byte, from int) int {
	if j := bytes.IndexByte(b[from:], '\\'); j >= 0 {
		return from + j
	}
	return -1
}

// hex4 reads four hex digits, which json.Valid has checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

package leak

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refClass and refEchoes are Class and Echoes as they were before their
// fast paths (an ASCII word splitter, secrets folded once per Needles): the
// reference the fast paths must agree with.
func refClass(s string, secrets ...string) string {
	if len(s) > maxLeakText {
		return Length
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if c < 0x20 || c == 0x7f {
			return Control
		}
	}
	if !ascii {
		if !utf8.ValidString(s) {
			return Control
		}
		for _, r := range s {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
				return Control
			}
		}
	}
	if strings.ContainsAny(s, "<>{}") {
		return Markup
	}
	if c := refEchoes(s, secrets); c != "" {
		return c
	}
	if strings.Contains(s, "://") {
		return URL
	}
	for i := 0; i < len(s); i++ {
		c := lowerByte(s[i])
		for _, w := range leakIndex[c] {
			if hasPrefixFold(s[i:], w) {
				return wordClass(w)
			}
		}
	}
	if i := indexFold(s, "select "); i >= 0 && indexFold(s[i:], " from ") >= 0 {
		return Driver
	}
	for rest := s; rest != ""; {
		i := strings.IndexFunc(rest, func(r rune) bool { return !isSeparator(r) })
		if i < 0 {
			break
		}
		rest = rest[i:]
		j := strings.IndexFunc(rest, isSeparator)
		if j < 0 {
			j = len(rest)
		}
		w := strings.Trim(rest[:j], "\"'`(),;!?")
		rest = rest[j:]
		if c := leakWord(strings.TrimRight(w, ".:")); c != "" {
			return c
		}
	}
	return ""
}

func refEchoes(s string, secrets []string) string {
	if len(secrets) == 0 {
		return ""
	}
	var sbuf [512]byte
	var folded []byte
	for _, sec := range secrets {
		var buf [128]byte
		f := appendFold(buf[:0], sec)
		if len(f) < minEchoLen {
			if len(sec) >= minEchoLen && indexFold(s, strings.ToLower(sec)) >= 0 {
				return Echo
			}
			continue
		}
		if folded == nil {
			folded = appendFold(sbuf[:0], s)
		}
		if bytes.Contains(folded, f) {
			return Echo
		}
	}
	return ""
}

// FuzzClassAgrees: Class, Echoes and Needles give the reference's answer
// for any string and secrets.
func FuzzClassAgrees(f *testing.F) {
	for _, s := range []string{
		"License key not found", "connect to db-1.internal:5432 failed", "at main.go:12", "ECONNREFUSED",
		"key KEY-TEST-0000-0000-0000-0001 blocked", "key keytest0000 0000 0000 0001", "0x7f000001", "3232235777",
		"C:\\x", "~/x", "a_b", "!ok?", "(x).", "AKIAIOSFODNN7EXAMPLE", "deadbeefdeadbeef", "a\u00a0b", "x\u0085y",
		"SELECT a FROM b", "ȺȺȺȺȺȺ", "ⱥⱥⱥⱥⱥⱥ", "bearer x", "pwd=1", "!/etc/x", "(!10.0.0.1?)", "?db.internal!:", "`x_y`", "", " ", "\t\v\f",
	} {
		f.Add(s, "tok-global-secret", "KEY-TEST-0000-0000-0000-0001")
	}
	f.Add("ⱥⱥⱥⱥⱥⱥ", "ȺȺȺȺȺȺ", "a-b-c-d")
	f.Add("ȺȺȺȺȺȺ", "ⱥⱥⱥⱥⱥⱥ", "") // folding lengthens s: 12 bytes hold an 18-byte secret
	f.Add("x AB-CD-EF y", "ab-cd-ef", "")
	f.Fuzz(func(t *testing.T, s, sec1, sec2 string) {
		secrets := []string{sec1, sec2}
		want := refClass(s, secrets...)
		if got := Class(s, secrets...); got != want {
			t.Fatalf("Class(%q, %q) = %q, want %q", s, secrets, got, want)
		}
		n := Prepare(secrets)
		if got := n.Class(s); got != want {
			t.Fatalf("Prepare(%q).Class(%q) = %q, want %q", secrets, s, got, want)
		}
		for _, sec := range [][]string{secrets, secrets[:1], nil} {
			want := refEchoes(s, sec)
			if got := Echoes(s, sec); got != want {
				t.Fatalf("Echoes(%q, %q) = %q, want %q", s, sec, got, want)
			}
			p := Prepare(sec)
			if got := p.Echoes(s); got != want {
				t.Fatalf("Prepare(%q).Echoes(%q) = %q, want %q", sec, s, got, want)
			}
		}
	})
}

// TestFoldAtMostDoubles: the bound Needles.Echoes skips short strings by
// holds for every rune: lower-casing at most doubles its bytes.
func TestFoldAtMostDoubles(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		if got, in := len(appendFold(nil, string(r))), utf8.RuneLen(r); got > 2*in {
			t.Errorf("appendFold(%U) = %d bytes, more than twice the rune's %d", r, got, in)
		}
	}
}

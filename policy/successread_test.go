package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/leak"
)

// refAppendString is appendString as it was, rune by rune: the reference
// the byte loop must agree with.
func refAppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i, r := range s {
		var esc string
		switch {
		case r == '"':
			esc = `\"`
		case r == '\\':
			esc = `\\`
		case r == '\n':
			esc = `\n`
		case r == '\r':
			esc = `\r`
		case r == '\t':
			esc = `\t`
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			esc = `\u` + string([]byte{hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf]})
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + utf8.RuneLen(r)
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

var appendStringSeeds = []string{
	"", "plain", `say "hi"`, `C:\dir`, "a\nb\rc\td", "\x00\x01\x1f\x7f", "a\u2028b\u2029c", "\u2027\u202a\u20ac", "ключ €",
	"\xe2", "\xe2\x80", "x\xe2\x80\xa8", "😀",
}

func TestAppendStringMatchesReference(t *testing.T) {
	for _, s := range appendStringSeeds {
		if got, want := string(appendString(nil, s)), string(refAppendString(nil, s)); got != want {
			t.Errorf("appendString(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range appendStringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // VetSuccess writes valid UTF-8 only
		}
		if got, want := string(appendString(nil, s)), string(refAppendString(nil, s)); got != want {
			t.Errorf("appendString(%q) = %q, want %q", s, got, want)
		}
	})
}

// FuzzAllowedMessage: VetSuccess's message check, with the secrets folded
// once, decides as Route.allowedMessage.
func FuzzAllowedMessage(f *testing.F) {
	for _, s := range []string{"License valid", "License key fetched", "", "OK", "at db.internal", "KEY-TEST-0000-0000-0000-0001 fetched", "Server error"} {
		f.Add(s)
	}
	f.Add(strings.Repeat("ok ", maxMessage/3+1)) // too long, clean otherwise
	secrets := []string{"tok-global-secret", "KEY-TEST-0000-0000-0000-0001"}
	p := Default()
	routes := []*Route{nil, p.Match("POST", "/get-key"), p.Match("POST", "/activate-key")}
	f.Fuzz(func(t *testing.T, msg string) {
		v := vetter{needles: leak.Prepare(secrets)}
		for _, r := range routes {
			if got, want := v.allowedMessage(r, msg), r.allowedMessage(msg, secrets); got != want {
				t.Errorf("vetter.allowedMessage(%q) = %v, want %v (Route.allowedMessage)", msg, got, want)
			}
		}
	})
}

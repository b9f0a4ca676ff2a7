package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestAppendHashToken(t *testing.T) {
	for _, s := range []string{"", "tok-global-secret", "KEY-TEST-0000-0000-0000-0001", strings.Repeat("k", 300), "ключ"} {
		sum := sha256.Sum256([]byte(s)) // computed apart: HashToken is built on AppendHashToken
		if got, want := string(AppendHashToken([]byte("x="), s)), "x="+hex.EncodeToString(sum[:6]); got != want {
			t.Errorf("AppendHashToken(%q) = %q, want %q", s, got, want)
		}
	}
}

func BenchmarkAppendHashToken(b *testing.B) {
	for _, tc := range []struct{ name, s string }{{"token", "tok-global-secret"}, {"long", strings.Repeat("k", 300)}} {
		s := tc.s
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendHashToken(buf[:0], s)
			}
		})
	}
}

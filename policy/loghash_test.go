package policy

import (
	"strings"
	"testing"
)

func TestAppendHashToken(t *testing.T) {
	for _, s := range []string{"", "tok-global-secret", "KEY-TEST-0000-0000-0000-0001", strings.Repeat("k", 300), "ключ"} {
		if got, want := string(AppendHashToken([]byte("x="), s)), "x="+HashToken(s); got != want {
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

package suggest

import "testing"

func TestClosest(t *testing.T) {
	opts := []string{"KEYGATE_UPSTREAM_TIMEOUT", "KEYGATE_UPSTREAM_URL", "serve", "check", "method", "path", "burst"}
	tests := []struct{ word, want string }{
		{"KEYGATE_UPSTREM_TIMEOUT", "KEYGATE_UPSTREAM_TIMEOUT"},
		{"KEYGATE_UPSTREAM_ULR", "KEYGATE_UPSTREAM_URL"},
		{"serv", "serve"},
		{"chekc", "check"},
		{"brust", "burst"},
		{"mehtod", "method"},
		{"frobnicate", ""},
		{"serve", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, opts); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

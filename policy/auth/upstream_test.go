package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpstreamAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "upstream-auth")
	if err := os.WriteFile(file, []byte("Bearer backend-key-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, file string
		mode, want        string // want: the Authorization sent upstream
	}{
		{"default forwards", "", "", UpstreamForward, "Bearer client-token"},
		{"fixed value", "Basic dXNlcjpwYXNz", "", UpstreamFixed, "Basic dXNlcjpwYXNz"},
		{"fixed from a file", "", file, UpstreamFixed, "Bearer backend-key-1"},
		{"none strips", "none", "", UpstreamStrip, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := NewUpstreamAuth(tc.value, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"Authorization": {"Bearer client-token"}}
			u.Apply(h)
			if got := h.Get("Authorization"); got != tc.want || u.Mode() != tc.mode {
				t.Errorf("Apply: Authorization = %q, mode %s; want %q, %s", got, u.Mode(), tc.want, tc.mode)
			}
			if strings.Contains(u.String(), "dXNlcjpwYXNz") || strings.Contains(u.String(), "backend-key") {
				t.Errorf("String() = %q reveals the credential", u.String())
			}
		})
	}
	var nilAuth *UpstreamAuth
	h := http.Header{"Authorization": {"Bearer c"}}
	nilAuth.Apply(h)
	if h.Get("Authorization") != "Bearer c" || nilAuth.Mode() != UpstreamForward {
		t.Error("a nil UpstreamAuth does not forward")
	}

	t.Run("reload", func(t *testing.T) {
		u, err := NewUpstreamAuth("", file)
		if err != nil {
			t.Fatal(err)
		}
		if changed, err := u.Reload(); changed || err != nil {
			t.Errorf("Reload(same) = %v, %v", changed, err)
		}
		os.WriteFile(file, []byte("Bearer backend-key-2"), 0o600)
		if changed, err := u.Reload(); !changed || err != nil {
			t.Errorf("Reload(rotated) = %v, %v", changed, err)
		}
		os.WriteFile(file, []byte("garbage\x00"), 0o600)
		if _, err := u.Reload(); err == nil {
			t.Error("Reload(garbage) = nil error")
		}
		h := http.Header{}
		u.Apply(h)
		if h.Get("Authorization") != "Bearer backend-key-2" {
			t.Errorf("after a failed reload Authorization = %q, want the last good one", h.Get("Authorization"))
		}
	})

	for _, tc := range []struct{ value, file string }{
		{"Bearer x", file},                          // both
		{"just-a-token", ""},                        // no scheme
		{"Bearer ", ""},                             // no credentials
		{"Bearer a\r\nX-Evil: 1", ""},               // header injection
		{"Bearer " + strings.Repeat("a", 9000), ""}, // too long
		{"", filepath.Join(dir, "missing")},         // no file
		{"Bé x", ""},                                // not ASCII
		{"Bearer secret-value\x7f", ""},             // control byte
		{"Bad/Scheme x", ""},                        // not a token
	} {
		_, err := NewUpstreamAuth(tc.value, tc.file)
		if err == nil {
			t.Errorf("NewUpstreamAuth(%.30q, %q) = nil error", tc.value, tc.file)
		} else if strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error %q quotes the credential", err)
		}
	}
}

package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/keygate/keygate/policy"
)

func TestKeepsPrivate(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"private", true},
		{"Private", true},
		{"no-store", true},
		{"public, max-age=60, NO-STORE", true},
		{"max-age=0 ,  private", true},
		{"public", false},
		{"max-age=3600", false},
		{"no-cache", false},
		{`private="Set-Cookie"`, false}, // only the named field is private
		{"privateish", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := keepsPrivate(tc.in); got != tc.want {
			t.Errorf("keepsPrivate(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestTokenRouteAnswersStayPrivate: keygate drops Vary, so on a route that
// needs a token an answer a shared cache could store would reach other
// callers. The upstream's Cache-Control passes only when it keeps the answer
// private; otherwise it becomes "private". Routes without tokens keep the
// upstream's value as it is.
func TestTokenRouteAnswersStayPrivate(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`routes:
  - name: get
    method: POST
    path: /get-key
    params:
      licenseKey: {secret: true}
  - name: ping
    method: POST
    path: /ping
    auth: none
    params:
      productId: {}
      licenseKey: {secret: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(p))
	tests := []struct {
		name, path, token, upstream, want string
		status                            int
	}{
		{"token route public", "/get-key", testTokens["global"], "public, max-age=600", "private", 200},
		{"token route max-age", "/get-key", testTokens["global"], "max-age=600", "private", 200},
		{"token route none", "/get-key", testTokens["global"], "", "private", 200},
		{"token route private field", "/get-key", testTokens["global"], `private="X-A", max-age=60`, "private", 200},
		{"token route private", "/get-key", testTokens["global"], "private, max-age=60", "private, max-age=60", 200},
		{"token route no-store", "/get-key", testTokens["global"], "no-store", "no-store", 200},
		{"token route public 404", "/get-key", testTokens["global"], "public, max-age=600", "private", 404},
		{"open route public", "/ping", "", "public, max-age=600", "public, max-age=600", 200},
		{"open route none", "/ping", "", "", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				if tc.upstream != "" {
					w.Header().Set("Cache-Control", tc.upstream)
				}
				w.Header().Set("Vary", "Authorization")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				if tc.status == 404 {
					io.WriteString(w, `{"message":"License key not found","code":1}`)
					return
				}
				io.WriteString(w, `{"message":"OK","code":0}`)
			})
			a := g.do(t, call{path: tc.path, token: tc.token, body: getBody(testKey)})
			if a.status != tc.status {
				t.Fatalf("status = %d %s, want %d", a.status, a.raw, tc.status)
			}
			if got := a.header.Values("Cache-Control"); len(got) > 1 || a.header.Get("Cache-Control") != tc.want {
				t.Errorf("Cache-Control = %q, want %q", got, tc.want)
			}
		})
	}
}

package proxy

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/policy"
)

// fixedCredential is an upstream credential that replaces Authorization.
type fixedCredential string

func (c fixedCredential) Apply(h http.Header) { h["Authorization"] = []string{string(c)} }

// TestAuthorizationForwardedOnlyWhenChecked: the client's Authorization
// reaches the backend only on routes where keygate checked it; on an
// auth: none route it is dropped (a backend could otherwise honour a
// credential keygate never looked at). A configured upstream credential
// replaces it on every route.
func TestAuthorizationForwardedOnlyWhenChecked(t *testing.T) {
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
      licenseKey: {secret: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	const clientBasic = "Basic YWRtaW46YWRtaW4="
	tests := []struct {
		name, path, auth string
		cred             fixedCredential // "": none configured
		want             string          // what the backend reads; "": none
	}{
		{"open route drops client's", "/ping", clientBasic, "", ""},
		{"open route, upstream credential", "/ping", clientBasic, "Token up", "Token up"},
		{"open route, none sent", "/ping", "", "", ""},
		{"token route forwards checked", "/get-key", "Bearer " + testTokens["global"], "", "Bearer " + testTokens["global"]},
		{"token route, upstream credential", "/get-key", "Bearer " + testTokens["global"], "Token up", "Token up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []fixtureOpt{withPolicy(p)}
			if tc.cred != "" {
				opts = append(opts, func(o *Options) { o.UpstreamAuth = tc.cred })
			}
			g := newGateway(t, opts...)
			c := call{path: tc.path, body: `{"licenseKey":"` + testKey + `"}`}
			if tc.auth != "" {
				c.header = map[string]string{"Authorization": tc.auth}
			}
			if a := g.do(t, c); a.status != 200 {
				t.Fatalf("status = %d %s, want 200", a.status, a.raw)
			}
			seen := g.up.last.Load()
			if got := seen.Header.Values("Authorization"); len(got) > 1 || seen.Header.Get("Authorization") != tc.want {
				t.Errorf("backend Authorization = %q, want %q", got, tc.want)
			}
		})
	}
}

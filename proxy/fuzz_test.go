package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// FuzzUpstreamAnswer sends whatever status, content type, encoding and body
// an upstream might produce through the real gateway and checks that the
// client always gets a contract answer.
func FuzzUpstreamAnswer(f *testing.F) {
	f.Add(200, "application/json", "", `{"message":"ok","code":0}`)
	f.Add(502, "text/html", "", "<html>Bad Gateway</html>")
	f.Add(404, "application/json", "", `{"message":"License key not found","code":1}`)
	f.Add(422, "application/json", "", `{"error":"bad"}`)
	f.Add(500, "text/plain", "", "panic: runtime error\ngoroutine 1 [running]:")
	f.Add(204, "", "", "")
	f.Add(301, "text/html", "", "moved")
	f.Add(403, "application/json", "gzip", "not gzip at all")
	f.Add(200, "text/plain", "", "[1,2,3]")
	f.Add(429, "application/json", "", `{"message":"slow","code":3}`)
	f.Add(599, "application/json; charset=utf-8", "br", `{"message":"x","code":1}`)
	g := newGateway(f)
	f.Fuzz(func(t *testing.T, status int, ctype, enc, body string) {
		if status < 200 || status > 599 {
			status = 200 + (abs(status) % 400)
		}
		g.up.set(func(w http.ResponseWriter, r *http.Request) {
			if ctype != "" && validHeaderValue(ctype) {
				w.Header().Set("Content-Type", ctype)
			}
			if enc != "" && validHeaderValue(enc) {
				w.Header().Set("Content-Encoding", enc)
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		})
		g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}) // asserts the contract
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func validHeaderValue(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00") && len(s) < 200
}

// plantedSecrets are what FuzzAnswerLeaks plants in upstream answers: none
// may reach a client, in a body or a header.
var plantedSecrets = []string{"keymint:hunter2@", "db-primary.prod.internal", "/srv/keymint/db.js", "10.0.3.7",
	"at Query.run", testKey, testTokens["global"]}

// FuzzAnswerLeaks sends upstream answers with any status, one extra header
// and any body, seeded with planted secrets, and checks that the client gets
// only allowlisted headers and never a planted secret.
func FuzzAnswerLeaks(f *testing.F) {
	dsn := "postgres://keymint:hunter2@db-primary.prod.internal:5432/keys"
	f.Add(200, "X-Backend", "db-primary.prod.internal", `{"message":"License valid","code":0,"licenseeName":"`+dsn+`"}`)
	f.Add(200, "Set-Cookie", "sid=1", `{"message":"at Query.run (/srv/keymint/db.js:1:2)","code":0}`)
	f.Add(200, "Cache-Control", "private, host=10.0.3.7", `{"licenseeName":"10.0.3.7","x":{"y":["`+testKey+`"]}}`)
	f.Add(404, "Location", "http://10.0.3.7/", `{"message":"License `+testKey+` not found","code":1}`)
	f.Add(500, "Server", "db-primary.prod.internal", `{"message":"connect ECONNREFUSED db-primary.prod.internal","code":1}`)
	f.Add(403, "X-Token", testTokens["global"], `{"error":"token `+testTokens["global"]+` revoked"}`)
	f.Add(429, "Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT", `{"message":"/srv/keymint/db.js","code":3}`)
	f.Add(201, "Content-Type", "text/html", `<html>db-primary.prod.internal</html>`)
	p := policy.Default()
	for _, r := range p.Routes {
		r.Limits = nil // every input reaches the upstream
	}
	g := newGateway(f, withPolicy(p))
	f.Fuzz(func(t *testing.T, status int, name, value, body string) {
		if status < 200 || status > 599 {
			status = 200 + (abs(status) % 400)
		}
		if !headerName(name) || !validHeaderValue(value) {
			name, value = "X-Planted", plantedSecrets[1]
		}
		g.up.set(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range hostileHeaders {
				w.Header().Set(k, v)
			}
			w.Header().Set(name, value)
			w.WriteHeader(status)
			w.Write([]byte(body))
		})
		a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)}) // asserts the contract
		for k, vs := range a.header {
			if !allowedHeader(k) {
				t.Fatalf("header %s: %q reached the client", k, vs)
			}
			for _, v := range vs {
				if s := planted(v); s != "" {
					t.Fatalf("header %s = %q carries planted %q", k, v, s)
				}
			}
		}
		if s := planted(string(a.raw)); s != "" {
			t.Fatalf("answer %q carries planted %q", a.raw, s)
		}
	})
}

func planted(s string) string {
	lower := strings.ToLower(s)
	for _, p := range plantedSecrets {
		if strings.Contains(lower, strings.ToLower(p)) {
			return p
		}
	}
	return ""
}

func headerName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

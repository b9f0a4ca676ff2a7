package proxy

import (
	"net/http"
	"strings"
	"testing"
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

package proxy

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkUnauthenticatedFlood sends, without a token, a body of thousands
// of distinct keys and a plain body of the same size through the handler:
// what a client without a token can make keygate spend before its 401
// (the body is parsed for limit keys that name parameters). The two must
// cost about the same.
func BenchmarkUnauthenticatedFlood(b *testing.B) {
	g := newGateway(b)
	for _, r := range g.policy.Routes { // the 401s must not run into token-guessing's 429
		for _, l := range r.Limits {
			l.Rate, l.Burst = 1<<30, 1<<30
		}
	}
	var sb strings.Builder
	sb.WriteString(`{"productId":"` + testProduct + `","licenseKey":"` + testKey + `"`)
	for i := range 6000 {
		sb.WriteString(`,"k` + strconv.Itoa(i) + `":1`)
	}
	sb.WriteString("}")
	flood := sb.String()
	head := `{"productId":"` + testProduct + `","licenseKey":"` + testKey + `","pad":"`
	plain := head + strings.Repeat("x", len(flood)-len(head)-2) + `"}`
	for _, tc := range []struct{ name, body string }{{"keys", flood}, {"plain", plain}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/get-key", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, req)
				if w.Code != http.StatusUnauthorized {
					b.Fatalf("status = %d %s, want 401", w.Code, w.Body)
				}
			}
		})
	}
}

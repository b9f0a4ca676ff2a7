package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkServeHTTP measures keygate's own work per proxied activation:
// token check, parameter validation, two limits (in memory), the reverse
// proxy to a real loopback upstream and normalization. The recorder stands in
// for the client connection.
func BenchmarkServeHTTP(b *testing.B) {
	g := newGateway(b)
	body := activateBody(testKey)
	// a limit that never trips at benchmark rates
	for _, r := range g.policy.Routes {
		for _, l := range r.Limits {
			l.Rate, l.Burst = 1<<30, 1<<30
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/activate-key", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testTokens["global"])
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		io.Discard.Write(w.Body.Bytes())
	}
}

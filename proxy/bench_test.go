package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// BenchmarkServeHTTP measures keygate's own work per proxied activation:
// token check, parameter validation, two limits (in memory), the reverse
// proxy to a real loopback upstream and normalization. The recorder stands in
// for the client connection.
func BenchmarkServeHTTP(b *testing.B) {
	g := newGateway(b)
	// a limit that never trips at benchmark rates
	for _, r := range g.policy.Routes {
		for _, l := range r.Limits {
			l.Rate, l.Burst = 1<<30, 1<<30
		}
	}
	benchActivate(b, g)
}

// benchPolicy is the policy of cmd/keygate-bench: two limits on activate,
// high enough never to trip, decided in one Redis round trip.
const benchPolicy = `routes:
  - name: activate
    method: POST
    path: /activate-key
    product: body.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256}
      hostId: {required: true, min: 1, max: 64}
      deviceTag: {min: 1, max: 64}
    limits:
      - name: bench-per-license
        key: [product, licenseKey]
        rate: 100000
        per: 1s
        burst: 1000000
      - name: bench-per-token
        key: [token]
        rate: 100000
        per: 1s
        burst: 1000000
`

// BenchmarkServeHTTPRedis is BenchmarkServeHTTP with the limiter `keygate
// serve` builds: a real redis-server behind the fallback, the two limits of
// benchPolicy in one script call.
func BenchmarkServeHTTPRedis(b *testing.B) {
	srv := redistest.Start(b)
	client, err := redisconn.New(redisconn.Config{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	shared, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	limiter, err := ratelimit.NewFallback(shared, ratelimit.NewMemory(), ratelimit.FallbackOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := limiter.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Parse("bench policy", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	g := newGateway(b, withPolicy(pol), func(o *Options) {
		o.Limiter = limiter
		o.AccessLog = NewAccessLog(io.Discard, "text") // as keygate serve logs
	})
	benchActivate(b, g)
	if limiter.Degraded() || limiter.Stats().Errors > 0 {
		b.Fatalf("Redis failed during the benchmark: %+v", limiter.Stats())
	}
}

func benchActivate(b *testing.B, g *gateway) {
	body := activateBody(testKey)
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

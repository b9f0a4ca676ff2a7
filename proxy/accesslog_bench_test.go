package proxy

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// BenchmarkFinish measures the access line of one answered activation: the
// request id, route, status, code, duration, address and the hashes of the
// license key and the token, through slog's handlers and through an
// AccessLog.
func BenchmarkFinish(b *testing.B) {
	route := policy.Default().Match("POST", "/activate-key")
	vals, e := route.ParseBody([]byte(activateBody(testKey)))
	if e != nil {
		b.Fatal(e)
	}
	for _, tc := range []struct {
		name string
		o    func(*Options)
	}{
		{"slog-json", func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) }},
		{"slog-text", func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) }},
		{"access-json", func(o *Options) {
			o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
			o.AccessLog = NewAccessLog(io.Discard, "json")
		}},
		{"access-text", func(o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			o.AccessLog = NewAccessLog(io.Discard, "text")
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g := newGateway(b, tc.o)
			r := httptest.NewRequest("POST", "/activate-key", nil)
			a := &attempt{route: route, ip: "192.0.2.7", token: testTokens["global"], values: vals}
			w := &statusWriter{ResponseWriter: httptest.NewRecorder(), requestID: "4f2a9c1e77d03b58", status: 200, coded: true}
			start := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				g.finish(w, r, a, start)
			}
		})
	}
}

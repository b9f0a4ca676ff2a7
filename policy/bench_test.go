package policy

import "testing"

// BenchmarkNormalizeSuccess checks a backend's success body.
func BenchmarkNormalizeSuccess(b *testing.B) {
	body := []byte(`{"message":"License valid","code":0,"license":{"status":"active","expires":"2027-01-31T00:00:00Z"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := NormalizeSuccess(body); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkNormalizeError maps backend errors: a contract answer that passes (and
// whose code is read for metrics), a legacy JSON error and an HTML page.
func BenchmarkNormalizeError(b *testing.B) {
	r := routeNamed(b, "activate")
	for _, tc := range []struct{ name, body string }{
		{"contract", `{"message":"License not found","code":1}`},
		{"legacy", `{"error":"License not found"}`},
		{"html", `<html><body><h1>502 Bad Gateway</h1></body></html>`},
	} {
		body := []byte(tc.body)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if pass, _, _ := r.Normalize(404, body, false, true); pass {
					CodeOfContract(body)
				}
			}
		})
	}
}

func routeNamed(tb testing.TB, name string) *Route {
	tb.Helper()
	for _, r := range Default().Routes {
		if r.Name == name {
			return r
		}
	}
	tb.Fatalf("no route %s in the built-in policy", name)
	return nil
}

package policy

import "testing"

// BenchmarkVetSuccess checks backend success bodies: activate's as Keymint
// sends it (listed fields), and a body of a route without listed fields
// (every string through the leak detector).
func BenchmarkVetSuccess(b *testing.B) {
	secrets := []string{"tok-global-secret", "KEY-TEST-0000-0000-0000-0001"}
	for _, tc := range []struct{ name, route, body string }{
		{"listed", "activate", `{"message":"License valid","licenseeName":"Ada Lovelace","code":0}`},
		{"detector", "", `{"message":"License valid","code":0,"license":{"status":"active","expires":"2027-01-31T00:00:00Z"}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var r *Route
			if tc.route != "" {
				r = routeNamed(b, tc.route)
			}
			body := []byte(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := r.VetSuccess(body, secrets); !ok {
					b.Fatal("refused")
				}
			}
		})
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

package policy

import (
	"strings"
	"testing"
)

// BenchmarkVetSuccess checks backend success bodies: activate's as Keymint
// sends it (listed fields), and a body of a route without listed fields
// (every string through the leak detector).
func BenchmarkVetSuccess(b *testing.B) {
	secrets := []string{"tok-global-secret", "KEY-TEST-0000-0000-0000-0001"}
	for _, tc := range []struct{ name, route, body string }{
		{"listed", "activate", `{"message":"License valid","licenseeName":"Ada Lovelace","code":0}`},
		{"detector", "", `{"message":"License valid","code":0,"license":{"status":"active","expires":"2027-01-31T00:00:00Z"}}`},
		// cmd/keygate-bench's backend answer (its policy lists no fields)
		{"bench", "", `{"message":"License valid","code":0,"license":{"status":"active","activations":1,` +
			`"maxActivations":5,"expires":"2027-01-31T00:00:00Z"}}`},
		// the built-in policy's get-key answer, as Keymint sends it
		{"get-key", "get", `{"message":"License key fetched","code":0,"data":{"licenseKey":"KEY-TEST-0000-0000-0000-0001",` +
			`"productId":"prod_0123456789abcdefghij","activated":true,"activations":1,"maxActivations":5,` +
			`"expiryDate":"2027-01-31T00:00:00Z","blocked":false,"devices":[{"hostId":"host-42","deviceTag":"Office laptop",` +
			`"activationTime":"2026-11-01T09:30:00Z"}],"customer":{"id":"cus_0001","name":"Ada Lovelace","email":"ada@example.com"}}}`},
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

// BenchmarkParseKeyFlood parses a body of thousands of distinct keys (the
// duplicate check's worst case) against a plain body of the same size, one
// long string: the two must cost about the same per byte.
func BenchmarkParseKeyFlood(b *testing.B) {
	flood := keyFlood(6000, "")
	pad := len(flood) - len(`{"productId":"`+okProduct+`","licenseKey":"`+okKey+`","pad":""}`)
	plain := []byte(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `","pad":"` + strings.Repeat("x", pad) + `"}`)
	deep := []byte(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `","d":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`)
	unicode := keyFloodUnicode(400) // 400 non-ASCII names and their folds: within maxFoldBytes
	r := routeNamed(b, "get")
	for _, tc := range []struct {
		name string
		body []byte
	}{{"keys", flood}, {"plain", plain}, {"deep", deep}, {"unicode-keys", unicode}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, e := r.ParseBody(tc.body); e != nil {
					b.Fatal(e)
				}
			}
		})
	}
}

// BenchmarkParseQueryFlood reads a query string of many distinct names.
func BenchmarkParseQueryFlood(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("trace=1")
	for i := range 3000 {
		sb.WriteString("&q" + itoa(i) + "=1")
	}
	raw := sb.String()
	r := routeNamed(b, "get")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, bad := r.QueryNames(raw); bad {
			b.Fatal("refused")
		}
	}
}

// keyFloodUnicode is keyFlood with non-ASCII keys, which take FoldName's
// slow path.
func keyFloodUnicode(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `"`)
	for i := range n {
		sb.WriteString(`,"\u00e9` + itoa(i) + `":1`)
	}
	sb.WriteString("}")
	return []byte(sb.String())
}

// BenchmarkParseQueryRouteFlood reads a query route's parameters from a
// query string of many distinct names.
func BenchmarkParseQueryRouteFlood(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("productId=" + okProduct + "&licenseKey=" + okKey)
	for i := range 3000 {
		sb.WriteString("&q" + itoa(i) + "=1")
	}
	raw := sb.String()
	r := loadV2(b).Match("GET", "/key")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, e := r.ParseQuery(raw); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkParseFoldHostile parses bodies of non-ASCII keys made to cost
// the most folding (U+FDFA: one rune, 18 after NFKD), beside plain bodies of
// the same size (one long string); compare the ns/op of each pair. The 60 KB
// ones are refused (a 60 KB key, or keys past maxFoldBytes); "budget" is the
// costliest accepted: as many keys of 3 U+FDFA as maxFoldBytes allows.
func BenchmarkParseFoldHostile(b *testing.B) {
	lig := strings.Repeat("\ufdfa", 3)
	keys := func(n int, each string) []byte {
		var sb strings.Builder
		sb.WriteString(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `"`)
		for i := range n {
			sb.WriteString(`,"` + each + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`)
		}
		sb.WriteString("}")
		return []byte(sb.String())
	}
	plainOf := func(n int) []byte {
		pad := n - len(`{"productId":"`+okProduct+`","licenseKey":"`+okKey+`","pad":""}`)
		return []byte(`{"productId":"` + okProduct + `","licenseKey":"` + okKey + `","pad":"` + strings.Repeat("x", pad) + `"}`)
	}
	long := []byte(`{"` + strings.Repeat("\ufdfa", 20000) + `":1}`)
	many := keys(60000/16, "\ufdfa\ufdfa\ufdfa")
	r := routeNamed(b, "get")
	n := 1
	for _, e := r.ParseBody(keys(n+1, lig)); e == nil; _, e = r.ParseBody(keys(n+1, lig)) {
		n++
	}
	budget := keys(n, lig)
	b.Logf("budget: %d keys, %d bytes", n, len(budget))
	for _, tc := range []struct {
		name    string
		body    []byte
		refused bool
	}{
		{"long-key-60KB", long, true}, {"plain-60KB", plainOf(len(long)), false},
		{"many-keys-60KB", many, true}, {"plain-many", plainOf(len(many)), false},
		{"budget", budget, false}, {"plain-budget", plainOf(len(budget)), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, e := r.ParseBody(tc.body); (e != nil) != tc.refused {
					b.Fatalf("ParseBody = %v, want refused %v", e, tc.refused)
				}
			}
		})
	}
}

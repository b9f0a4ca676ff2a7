package proxy

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// v2Policy is the policy of policy/testdata/keymint-v2.yaml, whose get-key
// route reads productId and licenseKey from the query string.
func v2Policy(t *testing.T) *policy.Policy {
	t.Helper()
	b, err := os.ReadFile("../policy/testdata/keymint-v2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("keymint-v2.yaml", b)
	if err != nil {
		t.Fatalf("policy.Parse(keymint-v2.yaml) = %v", err)
	}
	return p
}

// phpQuery reads a raw query as PHP binds top-level names: a name is a C
// string (cut at the first NUL) and the last value of a name wins.
func phpQuery(raw string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(raw, "&") {
		n, v, _ := strings.Cut(part, "=")
		n, _ = url.QueryUnescape(n)
		v, _ = url.QueryUnescape(v)
		if i := strings.IndexByte(n, 0); i >= 0 {
			n = n[:i]
		}
		out[n] = v
	}
	return out
}

// rack2Query reads a raw query as Rack 2 (Rails before 7.1) binds top-level
// names: leading '[' and ']' and trailing ']' are dropped; the last value of
// a name wins; nested names ("a[b]") are left out.
func rack2Query(raw string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(raw, "&") {
		n, v, _ := strings.Cut(part, "=")
		n, _ = url.QueryUnescape(n)
		v, _ = url.QueryUnescape(v)
		n = strings.TrimLeft(n, "[]")
		if i := strings.IndexAny(n, "[]"); i >= 0 {
			if strings.Trim(n[i:], "]") != "" {
				continue // nested
			}
			n = n[:i]
		}
		out[n] = v
	}
	return out
}

// TestQueryRouteBackendReadsChecked: on a query route, whatever the client
// adds beside the checked params, a PHP or Rack 2 backend reads the product
// and key keygate checked (the token is scoped to testProduct), or the
// request is refused with 400 code 1 and never reaches it.
func TestQueryRouteBackendReadsChecked(t *testing.T) {
	g := newGateway(t, withPolicy(v2Policy(t)))
	base := "productId=" + testProduct + "&licenseKey=" + testKey
	for _, tc := range []struct {
		name, extra string
		status      int
	}{
		{"PHP NUL cut", "productId%00x=" + otherProd, 400},
		{"PHP NUL cut, key", "licenseKey%00=KEY-OTHER-0000-0000-0000-0002", 400},
		{"control in name", "productId%01=" + otherProd, 400},
		{"Rack 2 leading [", "%5BproductId=" + otherProd, 400},
		{"Rack 2 leading ]", "%5DproductId=" + otherProd, 400},
		{"Rack 2 trailing ]", "productId%5D=" + otherProd, 400},
		{"unchecked name", "trace=1", 200},
		{"unchecked nested name", "x%5BproductId%5D=" + otherProd, 200},
	} {
		for _, order := range []string{"after", "before"} {
			t.Run(tc.name+" "+order, func(t *testing.T) {
				raw := base + "&" + tc.extra
				if order == "before" {
					raw = tc.extra + "&" + base
				}
				before := g.up.calls.Load()
				a := g.do(t, call{method: "GET", path: "/key?" + raw, token: testTokens["scoped"]})
				if a.status != tc.status {
					t.Fatalf("GET /key?%s = %d %s, want %d", raw, a.status, a.raw, tc.status)
				}
				if tc.status != 200 {
					if a.code != 1 {
						t.Errorf("GET /key?%s code = %d, want 1", raw, a.code)
					}
					if n := g.up.calls.Load() - before; n != 0 {
						t.Errorf("GET /key?%s reached the backend %d times, want 0", raw, n)
					}
					return
				}
				seen := g.up.last.Load()
				want := "licenseKey=" + testKey + "&productId=" + testProduct
				if seen.RawQuery != want {
					t.Errorf("backend query = %q, want %q (rebuilt from the checked params)", seen.RawQuery, want)
				}
				for reader, read := range map[string]func(string) map[string]string{"PHP": phpQuery, "Rack 2": rack2Query} {
					got := read(seen.RawQuery)
					if got["productId"] != testProduct || got["licenseKey"] != testKey {
						t.Errorf("%s reads productId=%q licenseKey=%q, want %q %q", reader, got["productId"], got["licenseKey"], testProduct, testKey)
					}
				}
			})
		}
	}
}

// TestQueryRouteSpentKeyStaysSpent: once a key's bucket is spent on a query
// route, a fresh key beside a name PHP or Rack 2 reads as licenseKey
// (carrying the spent one) gets no request through.
func TestQueryRouteSpentKeyStaysSpent(t *testing.T) {
	p, err := policy.Parse("per-key", []byte(`routes:
  - name: get-key
    method: GET
    path: /key
    product: query.productId
    params:
      productId: {required: true, min: 22, max: 256}
      licenseKey: {required: true, min: 23, max: 256, secret: true}
    limits:
      - {name: per-key, key: [product, licenseKey], rate: 1, per: 24h, burst: 2}
`))
	if err != nil {
		t.Fatalf("policy.Parse = %v", err)
	}
	g := newGateway(t, withPolicy(p))
	base := "productId=" + testProduct
	for i := 1; i <= 2; i++ {
		if a := g.do(t, call{method: "GET", path: "/key?" + base + "&licenseKey=" + testKey, token: testTokens["global"]}); a.status != 200 {
			t.Fatalf("lookup %d = %d %s, want 200", i, a.status, a.raw)
		}
	}
	if a := g.do(t, call{method: "GET", path: "/key?" + base + "&licenseKey=" + testKey, token: testTokens["global"]}); a.status != 429 {
		t.Fatalf("lookup of the spent key = %d %s, want 429", a.status, a.raw)
	}
	spent := g.up.calls.Load()
	for i, name := range []string{"licenseKey%00x", "licenseKey%00", "%5BlicenseKey", "%5DlicenseKey", "licenseKey%5D"} {
		fresh := fmt.Sprintf("KEY-FRESH-0000-0000-%04d", i)
		raw := base + "&licenseKey=" + fresh + "&" + name + "=" + testKey
		if a := g.do(t, call{method: "GET", path: "/key?" + raw, token: testTokens["global"]}); a.status != 400 || a.code != 1 {
			t.Errorf("GET /key?%s = %d %s, want 400 code 1", raw, a.status, a.raw)
		}
	}
	if n := g.up.calls.Load() - spent; n != 0 {
		t.Errorf("backend calls after the key was spent = %d, want 0", n)
	}
}

// TestLoneSurrogateNotForwarded: a body whose license key ends in an
// unpaired surrogate escape (U+FFFD to keygate, a lone surrogate to Node or
// Python) is refused and never forwarded.
func TestLoneSurrogateNotForwarded(t *testing.T) {
	g := newGateway(t)
	for _, key := range []string{`KEY-TEST-0000-0000-0000-000\ud800`, `KEY-TEST-0000-0000-0000-000\udfff`, `KEY-TEST-0000-0000-0000-00\udbff\u0041`} {
		body := `{"productId":"` + testProduct + `","licenseKey":"` + key + `","hostId":"h"}`
		a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: body})
		if a.status != 400 || a.code != 1 {
			t.Errorf("activation with %s = %d %s, want 400 code 1", key, a.status, a.raw)
		}
	}
	if n := g.up.calls.Load(); n != 0 {
		t.Errorf("backend calls = %d, want 0", n)
	}
}

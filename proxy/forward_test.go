package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// rawCall is a request built header line by header line, so that a test can
// send a header twice or in an odd spelling.
type rawCall struct {
	method, target, body string
	header               [][2]string // in order; each pair is one field line
}

func (g *gateway) doRaw(t *testing.T, c rawCall) answer {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	req, err := http.NewRequest(c.method, g.srv.URL+c.target, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range c.header {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1]) // no canonicalization: the name as written
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	assertContract(t, a)
	var b struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
	}
	_ = json.Unmarshal(raw, &b)
	a.msg, a.code = b.Message, b.Code
	return a
}

// readProduct is what a backend framework reads as the product and license
// key of a request.
type readProduct func(r *http.Request, body []byte) (product, key string)

// lastContentType reads like Werkzeug/Flask: the last Content-Type wins, and
// a form body is read as a form.
func lastContentType(r *http.Request, body []byte) (string, string) {
	cts := r.Header.Values("Content-Type")
	if len(cts) > 0 && strings.HasPrefix(cts[len(cts)-1], "application/x-www-form-urlencoded") {
		f, _ := url.ParseQuery(string(body))
		return f.Get("productId"), f.Get("licenseKey")
	}
	return caseInsensitiveJSON(r, body)
}

// caseInsensitiveJSON binds JSON keys the way Java's equalsIgnoreCase and
// relaxed binders do: upper then lower case, '_' and '-' ignored; the last
// key wins. Query parameters merged in the way of PHP, Rails and qs (query
// wins, brackets folded) come on top.
func caseInsensitiveJSON(r *http.Request, body []byte) (product, key string) {
	norm := func(k string) string {
		k, _, _ = strings.Cut(k, "[")
		k = strings.Map(func(c rune) rune {
			if c == '_' || c == '-' {
				return -1
			}
			return unicode.ToLower(unicode.ToUpper(c))
		}, k)
		return k
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		var s string
		if json.Unmarshal(m[k], &s) != nil {
			continue
		}
		switch norm(k) {
		case "productid":
			product = s
		case "licensekey":
			key = s
		}
	}
	for k, vs := range r.URL.Query() {
		switch norm(k) {
		case "productid":
			product = vs[len(vs)-1]
		case "licensekey":
			key = vs[len(vs)-1]
		}
	}
	return product, key
}

// TestBackendReadsWhatKeygateChecked sends, with a token scoped to
// testProduct, requests that common frameworks read as otherProd (issue #11
// items 1 to 3). Each must be refused with 400 code 1 before the backend,
// a Werkzeug-like one (last Content-Type) and one binding keys without
// regard to case, sees it.
func TestBackendReadsWhatKeygateChecked(t *testing.T) {
	scoped := "Bearer " + testTokens["scoped"]
	ok := fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"h1"`, testProduct, testKey)
	formish := ok + fmt.Sprintf(`,"x":"&productId=%s&licenseKey=%s&"}`, otherProd, testKey)
	variant := func(key string) string { return ok + fmt.Sprintf(`,%q:%q}`, key, otherProd) }
	tests := []struct {
		name   string
		c      rawCall
		status int
		msg    string
	}{
		{"two Content-Types", rawCall{target: "/activate-key", body: formish, header: [][2]string{
			{"Authorization", scoped}, {"Content-Type", "application/json"}, {"Content-Type", "application/x-www-form-urlencoded"}}},
			400, "Header Content-Type must be sent once"},
		{"Content-Type in another spelling", rawCall{target: "/activate-key", body: formish, header: [][2]string{
			{"Authorization", scoped}, {"Content-Type", "application/json"}, {"Content_Type", "application/x-www-form-urlencoded"}}},
			400, "Header Content_type is not allowed (some servers read it as Content-Type)"},
		{"two Authorizations", rawCall{target: "/activate-key", body: ok + "}", header: [][2]string{
			{"Authorization", scoped}, {"Authorization", "Bearer " + testTokens["global"]}, {"Content-Type", "application/json"}}},
			400, "Header Authorization must be sent once"},
		{"two Idempotency-Keys", rawCall{target: "/activate-key", body: ok + "}", header: [][2]string{
			{"Authorization", scoped}, {"Idempotency-Key", "a"}, {"Idempotency-Key", "b"}}},
			400, "Header Idempotency-Key must be sent once"},
		{"two X-Request-Ids", rawCall{target: "/activate-key", body: ok + "}", header: [][2]string{
			{"Authorization", scoped}, {"X-Request-Id", "a"}, {"X-Request-Id", "b"}}},
			400, "Header X-Request-Id must be sent once"},
		{"query productId[]", rawCall{target: "/activate-key?productId[]=" + otherProd, body: ok + "}", header: [][2]string{{"Authorization", scoped}}},
			400, "Parameter productId[] belongs in the JSON body, not the query string"},
		{"query productId%5B0%5D", rawCall{target: "/activate-key?productId%5B0%5D=" + otherProd, body: ok + "}", header: [][2]string{{"Authorization", scoped}}},
			400, "Parameter productId[0] belongs in the JSON body, not the query string"},
		{"query product_id", rawCall{target: "/activate-key?product_id=" + otherProd, body: ok + "}", header: [][2]string{{"Authorization", scoped}}},
			400, "Parameter product_id belongs in the JSON body, not the query string"},
		{"dotless i key", rawCall{target: "/activate-key", body: variant("product\u0131d"), header: [][2]string{{"Authorization", scoped}}},
			400, "Unexpected parameter (unprintable name) (did you mean productId?)"},
		{"snake case key", rawCall{target: "/activate-key", body: variant("product_id"), header: [][2]string{{"Authorization", scoped}}},
			400, "Unexpected parameter product_id (did you mean productId?)"},
		{"fullwidth key", rawCall{target: "/activate-key", body: variant("\uff50roductId"), header: [][2]string{{"Authorization", scoped}}},
			400, "Unexpected parameter (unprintable name) (did you mean productId?)"},
	}
	for _, backend := range []struct {
		name string
		read readProduct
	}{{"last Content-Type", lastContentType}, {"case-insensitive binder", caseInsensitiveJSON}} {
		g := newGateway(t)
		var mu sync.Mutex
		var read []string
		g.up.set(func(w http.ResponseWriter, r *http.Request) {
			p, _ := backend.read(r, g.up.last.Load().Body) // the recorder has read the body

			mu.Lock()
			read = append(read, p)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"message":"License activated","code":0}`)
		})
		for _, tc := range tests {
			t.Run(backend.name+"/"+tc.name, func(t *testing.T) {
				a := g.doRaw(t, tc.c)
				if a.status != tc.status || a.code != 1 || a.msg != tc.msg {
					t.Errorf("answer = %d %s, want %d {%q, 1}", a.status, a.raw, tc.status, tc.msg)
				}
			})
		}
		// the honest request still passes, and the backend reads its product
		if a := g.doRaw(t, rawCall{target: "/activate-key", body: ok + "}", header: [][2]string{{"Authorization", scoped}, {"Content-Type", "application/json"}}}); a.status != 200 {
			t.Errorf("%s: honest activation = %d %s, want 200", backend.name, a.status, a.raw)
		}
		mu.Lock()
		if diff := cmp.Diff([]string{testProduct}, read); diff != "" {
			t.Errorf("%s: products the backend read (-want +got):\n%s", backend.name, diff)
		}
		mu.Unlock()
	}
}

// TestForwardedHeadersAllowlist: the backend gets exactly keygate's header
// set, whatever the client sent: no override or client-address headers, no
// X-Forwarded-Host from the client's Host, and Connection cannot strip what
// keygate adds (issue #11 item 5).
func TestForwardedHeadersAllowlist(t *testing.T) {
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false))
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	a := g.doRaw(t, rawCall{target: "/activate-key", body: activateBody(testKey), header: [][2]string{
		{"Authorization", "Bearer " + testTokens["global"]},
		{"Content-Type", "application/json; charset=utf-8"},
		{"Idempotency-Key", "idem-1"},
		{"X-Request-Id", "req-1"},
		{"Connection", "X-Request-Id, Content-Type, Idempotency-Key, Authorization, X-Forwarded-For"},
		{"X-Original-URL", "/block-key"},
		{"X-Rewrite-URL", "/block-key"},
		{"X-HTTP-Method-Override", "DELETE"},
		{"X-Real-IP", "203.0.113.7"},
		{"True-Client-IP", "203.0.113.7"},
		{"Forwarded", "for=203.0.113.7;host=evil.example"},
		{"X-Forwarded-Host", "evil.example"},
		{"X-Forwarded-For", "203.0.113.7"},
		{"Cookie", "session=1"},
		{"X-Custom", "1"},
		{"Traceparent", tp},
		{"Tracestate", "a=1"},
		{"Tracestate", "b=2"},
		{"Accept-Encoding", "gzip"},
		{"User-Agent", "evil/1.0"},
	}})
	if a.status != 200 {
		t.Fatalf("answer = %d %s, want 200", a.status, a.raw)
	}
	seen := g.up.last.Load()
	want := http.Header{
		"Accept-Encoding":   {"identity"}, // keygate's own, not the client's gzip
		"Authorization":     {"Bearer " + testTokens["global"]},
		"Content-Length":    {fmt.Sprint(len(activateBody(testKey)))},
		"Content-Type":      {"application/json"},
		"Idempotency-Key":   {"idem-1"},
		"Traceparent":       {tp},
		"Tracestate":        {"a=1,b=2"},
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Proto": {"http"},
		"X-Request-Id":      {"req-1"},
	}
	if diff := cmp.Diff(want, seen.Header); diff != "" {
		t.Errorf("headers the backend read (-want +got):\n%s", diff)
	}
	if seen.Method != http.MethodPost || seen.Path != "/activate-key" || seen.RawQuery != "" || string(seen.Body) != activateBody(testKey) {
		t.Errorf("backend read %s %s?%s %q, want POST /activate-key and the body sent", seen.Method, seen.Path, seen.RawQuery, seen.Body)
	}
}

// TestPolicyForwardsNamedHeaders: a header the policy names is forwarded,
// once; sent twice it is refused.
func TestPolicyForwardsNamedHeaders(t *testing.T) {
	p, err := policy.Parse("t", []byte(`routes:
  - name: get
    method: POST
    path: /get-key
    auth: none
    params:
      licenseKey: {required: true}
    headers: [X-Client-Version]
    allow_query: [trace]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(p))
	body := `{"licenseKey":"k"}`
	a := g.doRaw(t, rawCall{target: "/get-key?trace=1&licenseKey[]=x", body: body, header: [][2]string{{"X-Client-Version", "2.1"}}})
	if a.status != 400 || a.msg != "Parameter licenseKey[] belongs in the JSON body, not the query string" {
		t.Errorf("query variant = %d %s, want 400", a.status, a.raw)
	}
	a = g.doRaw(t, rawCall{target: "/get-key?x=2&trace=1&debug", body: body, header: [][2]string{{"X-Client-Version", "2.1"}, {"X-Other", "o"}}})
	if a.status != 200 {
		t.Fatalf("answer = %d %s, want 200", a.status, a.raw)
	}
	seen := g.up.last.Load()
	if got := seen.Header.Values("X-Client-Version"); !slices.Equal(got, []string{"2.1"}) {
		t.Errorf("X-Client-Version upstream = %q, want [2.1]", got)
	}
	if got := seen.Header.Get("X-Other"); got != "" {
		t.Errorf("X-Other upstream = %q, want none", got)
	}
	if seen.RawQuery != "trace=1" {
		t.Errorf("query upstream = %q, want trace=1 (only allow_query names)", seen.RawQuery)
	}
	a = g.doRaw(t, rawCall{target: "/get-key", body: body, header: [][2]string{{"X-Client-Version", "2.1"}, {"X-Client-Version", "3"}}})
	if a.status != 400 || a.msg != "Header X-Client-Version must be sent once" {
		t.Errorf("duplicate policy header = %d %s, want 400", a.status, a.raw)
	}
}

// TestSpentKeyVariants: once a license's activations are spent, no spelling
// of the same key that a backend may read as it gets a fresh bucket: each
// is limited or refused (issue #11 item 4). It runs against the in-memory
// limiter and a real redis-server.
func TestSpentKeyVariants(t *testing.T) {
	// the built-in activation limit with a day's period: no token comes back
	// while the test runs, however slow the machine
	doc := strings.Replace(string(policy.Builtin), "per: 1m\n        burst: 10\n        message: \"Too many activation",
		"per: 24h\n        burst: 10\n        message: \"Too many activation", 1)
	pol, err := policy.Parse("day policy", []byte(doc))
	if err != nil || doc == string(policy.Builtin) {
		t.Fatalf("policy with a day's activation limit: %v (changed: %v)", err, doc != string(policy.Builtin))
	}
	t.Run("memory", func(t *testing.T) { spentKeyVariants(t, newGateway(t, withPolicy(pol))) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		client, err := redisconn.New(redisconn.Config{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		limiter, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spentKeyVariants(t, newGateway(t, withPolicy(pol), func(o *Options) { o.Limiter = limiter }))
	})
}

func spentKeyVariants(t *testing.T, g *gateway) {
	for i := 1; i <= 10; i++ {
		if a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)}); a.status != 200 {
			t.Fatalf("activation %d = %d %s, want 200", i, a.status, a.raw)
		}
	}
	tests := []struct {
		name, key string
		status    int
	}{
		{"trailing space", testKey + " ", 429},
		{"lower case", strings.ToLower(testKey), 429},
		{"fullwidth letter", "\uff2b" + testKey[1:], 429},
		{"NBSP", testKey + "\u00a0", 429},
		{"ideographic space", "\u3000" + testKey, 429},
		{"accented letter", "KE\u0301" + testKey[2:], 429},
		{"sharp s (s to utf8mb4_general_ci)", "KEY-TE\u00dfT" + testKey[8:], 429},
		{"capital sharp s", "KEY-TE\u1e9eT" + testKey[8:], 429},
		{"sharp s, lower case", "KEY-te\u00dft" + testKey[8:], 429},
		{"ss (sharp s to utf8mb4_unicode_ci)", "KEY-TESST" + testKey[8:], 429},
		{"zero-width space", testKey + "\u200b", 400},
		{"C1 control", testKey + "\u0085", 400},
		{"BOM", "\ufeff" + testKey, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(tc.key)})
			if a.status != tc.status {
				t.Errorf("activation of %q = %d %s, want %d", tc.key, a.status, a.raw, tc.status)
			}
		})
	}
	if calls := g.up.calls.Load(); calls != 10 {
		t.Errorf("upstream calls = %d, want 10", calls)
	}
	// the product is read in its normal form too
	variant := fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"h"}`, strings.ToUpper(testProduct)+" ", testKey)
	if a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: variant}); a.status != 429 {
		t.Errorf("activation with the product in upper case = %d %s, want 429", a.status, a.raw)
	}
}

// TestChunkedBodyForwardedFramed: a body the client sent chunked (no
// Content-Length) reaches the backend as the exact bytes keygate read, with
// keygate's Content-Length and Content-Type.
func TestChunkedBodyForwardedFramed(t *testing.T) {
	g := newGateway(t)
	body := activateBody(testKey)
	req, err := http.NewRequest(http.MethodPost, g.srv.URL+"/activate-key", io.MultiReader(strings.NewReader(body))) // no length known: chunked
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testTokens["global"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != 200 {
		t.Fatalf("request length %d, answer %d: want a chunked request answered 200", req.ContentLength, resp.StatusCode)
	}
	seen := g.up.last.Load()
	if got := seen.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("forwarded Content-Type = %q, want application/json", got)
	}
	if got := seen.Header.Get("Content-Length"); got != fmt.Sprint(len(body)) || string(seen.Body) != body {
		t.Errorf("forwarded Content-Length %q and body %q, want %d and the body sent", got, seen.Body, len(body))
	}
}

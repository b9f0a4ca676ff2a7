package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/policy"
)

func TestRequestChecks(t *testing.T) {
	valid := activateBody(testKey)
	tests := []struct {
		name     string
		c        call
		status   int
		code     int
		msg      string
		forwards bool
	}{
		{"valid activation", call{path: "/activate-key", token: testTokens["global"], body: valid}, 200, 0, "License valid", true},
		{"unknown route", call{path: "/nope", token: testTokens["global"], body: valid}, 404, 1, "Not found", false},
		{"known path, wrong method", call{method: "GET", path: "/activate-key", token: testTokens["global"]}, 404, 1, "Not found", false},
		{"dotted path", call{path: "/activate-key/../get-key", token: testTokens["global"], body: valid}, 404, 1, "Not found", false},
		{"encoded path", call{path: "/activate%2Dkey", token: testTokens["global"], body: valid}, 200, 0, "License valid", true},
		{"trailing slash", call{path: "/activate-key/", token: testTokens["global"], body: valid}, 404, 1, "Not found", false},
		{"no token", call{path: "/activate-key", body: valid}, 401, 1, "Invalid access token", false},
		{"unknown token", call{path: "/activate-key", token: "guess", body: valid}, 401, 1, "Invalid access token", false},
		{"not a bearer token", call{path: "/activate-key", body: valid, header: map[string]string{"Authorization": "Basic " + testTokens["global"]}}, 401, 1, "Invalid access token", false},
		{"expired token", call{path: "/activate-key", token: testTokens["expired"], body: valid}, 401, 1, "Invalid access token", false},
		{"operation not allowed", call{path: "/activate-key", token: testTokens["getonly"], body: valid}, 401, 1, "Invalid access token", false},
		{"operation allowed", call{path: "/get-key", token: testTokens["getonly"], body: getBody(testKey)}, 200, 0, "License valid", true},
		{"product allowed", call{path: "/activate-key", token: testTokens["scoped"], body: valid}, 200, 0, "License valid", true},
		{"product not allowed", call{path: "/activate-key", token: testTokens["scoped"],
			body: fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"h"}`, otherProd, testKey)}, 401, 1, "Invalid access token", false},
		{"missing hostId", call{path: "/activate-key", token: testTokens["global"], body: getBody(testKey)}, 400, 1, "Missing required params", false},
		{"short licenseKey", call{path: "/get-key", token: testTokens["global"], body: getBody("short")}, 400, 1, "Invalid licenseKey: must be 23 to 256 characters", false},
		{"invalid JSON", call{path: "/get-key", token: testTokens["global"], body: `{"productId":`}, 400, 1, "Invalid JSON body", false},
		{"duplicate key", call{path: "/get-key", token: testTokens["global"],
			body: fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"licenseKey":"x"}`, testProduct, testKey)}, 400, 1, "Duplicate parameter: licenseKey", false},
		{"param in query too", call{path: "/get-key?licenseKey=x", token: testTokens["global"], body: getBody(testKey)},
			400, 1, "Parameter licenseKey belongs in the JSON body, not the query string", false},
		{"form content type", call{path: "/get-key", token: testTokens["global"], body: getBody(testKey),
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 400, 1, "Content-Type must be application/json", false},
		{"body too large", call{path: "/get-key", token: testTokens["global"],
			body: `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`}, 400, 1, "Request body too large (limit 65536 bytes)", false},
		{"upgrade", call{path: "/get-key", token: testTokens["global"], body: getBody(testKey),
			header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}}, 400, 1, "Protocol upgrades are not supported", false},
		{"exclusive params", call{path: "/create-key", token: testTokens["global"],
			body: fmt.Sprintf(`{"productId":%q,"customerId":"c1","newCustomer":{"name":"A"}}`, testProduct)}, 400, 1, "customerId and newCustomer cannot be used together", false},
	}
	g := newGateway(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.up.calls.Load()
			a := g.do(t, tc.c)
			if a.status != tc.status || a.code != tc.code || a.msg != tc.msg {
				t.Errorf("answer = %d %s, want %d {%q, %d}", a.status, a.raw, tc.status, tc.msg, tc.code)
			}
			if forwarded := g.up.calls.Load() > before; forwarded != tc.forwards {
				t.Errorf("forwarded = %v, want %v", forwarded, tc.forwards)
			}
		})
	}
}

func TestForwardedRequest(t *testing.T) {
	g := newGateway(t, withTrusted("127.0.0.0/8"))
	body := `{"licenseKey":"KEY-TEST-0000-0000-0000-0001",  "productId":"prod_test_0000000000000001","hostId":"h1","extra":{"a":[1,2]}}`
	a := g.do(t, call{path: "/activate%2dkey?trace=1", token: testTokens["global"], body: body,
		header: map[string]string{"X-Forwarded-For": "203.0.113.9, 127.0.0.5", "X-Request-Id": "req-123"}})
	if a.status != 200 {
		t.Fatalf("status = %d, want 200", a.status)
	}
	seen := g.up.last.Load()
	if string(seen.Body) != body {
		t.Errorf("upstream body = %q, want the bytes sent %q", seen.Body, body)
	}
	// a body route forwards no query string unless its policy allows names
	if seen.Path != "/activate-key" || seen.RawQuery != "" {
		t.Errorf("upstream path = %q?%q, want /activate-key and no query", seen.Path, seen.RawQuery)
	}
	if got := seen.Header.Get("X-Forwarded-For"); got != "203.0.113.9" {
		t.Errorf("X-Forwarded-For = %q, want the client 203.0.113.9", got)
	}
	if got := seen.Header.Get("X-Request-Id"); got != "req-123" {
		t.Errorf("X-Request-Id upstream = %q, want req-123", got)
	}
	if got := a.header.Get("X-Request-Id"); got != "req-123" {
		t.Errorf("X-Request-Id answer = %q, want req-123", got)
	}
	if got := seen.Header.Get("Authorization"); got != "Bearer "+testTokens["global"] {
		t.Errorf("Authorization upstream = %q, want the client's", got)
	}
}

func TestUpstreamBasePath(t *testing.T) {
	first := newGateway(t)
	g := newGateway(t, withUpstreamURL(first.up.URL+"/api/v1/"))
	g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
	if seen := first.up.last.Load(); seen == nil || seen.Path != "/api/v1/get-key" {
		t.Errorf("upstream saw %+v, want path /api/v1/get-key", seen)
	}
}

func TestSpoofedForwardedForIgnored(t *testing.T) {
	g := newGateway(t) // no trusted proxies
	g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey),
		header: map[string]string{"X-Forwarded-For": "203.0.113.9"}})
	if got := g.up.last.Load().Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer 127.0.0.1", got)
	}
}

func TestActivationLimit(t *testing.T) {
	g := newGateway(t)
	for i := 1; i <= 10; i++ {
		if a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)}); a.status != 200 {
			t.Fatalf("activation %d = %d %s, want 200", i, a.status, a.raw)
		}
	}
	a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
	if a.status != 429 || a.code != 3 || a.msg != "Too many activation attempts. Please try again later." {
		t.Fatalf("11th activation = %d %s, want 429 code 3", a.status, a.raw)
	}
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", ra)
	}
	if calls := g.up.calls.Load(); calls != 10 {
		t.Errorf("upstream calls = %d, want 10", calls)
	}
	other := activateBody("KEY-TEST-0000-0000-0000-0002")
	if a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: other}); a.status != 200 {
		t.Errorf("another license = %d, want 200: limits are per license", a.status)
	}
}

func TestKeyGuessingLimitCountsOnlyFailures(t *testing.T) {
	g := newGateway(t, withTrusted("127.0.0.0/8"))
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		io.WriteString(w, `{"message":"License key not found","code":1}`)
	})
	attacker := map[string]string{"X-Forwarded-For": "198.51.100.1"}
	for i := 1; i <= 30; i++ { // key-guessing: 30 failures per 10m
		if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey), header: attacker}); a.status != 404 {
			t.Fatalf("guess %d = %d, want 404", i, a.status)
		}
	}
	a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey), header: attacker})
	if a.status != 429 || a.code != 3 {
		t.Fatalf("guess 31 = %d %s, want 429 code 3", a.status, a.raw)
	}
	before := g.up.calls.Load()
	if a := g.do(t, call{path: "/block-key", token: testTokens["global"], body: getBody(testKey), header: attacker}); a.status != 429 {
		t.Errorf("same IP on another route = %d, want 429: the rule's bucket is shared by name", a.status)
	}
	if g.up.calls.Load() != before {
		t.Error("a limited request reached the upstream")
	}
	honest := map[string]string{"X-Forwarded-For": "198.51.100.2"}
	if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey), header: honest}); a.status != 404 {
		t.Errorf("another IP = %d, want 404 (not limited)", a.status)
	}
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"ok","code":0}`)
	})
	for i := 0; i < 40; i++ { // successes never spend the failure budget
		if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey), header: honest}); a.status != 200 {
			t.Fatalf("success %d = %d, want 200", i, a.status)
		}
	}
}

func TestTokenGuessingLimit(t *testing.T) {
	g := newGateway(t)
	for i := 1; i <= 20; i++ {
		if a := g.do(t, call{path: "/get-key", token: fmt.Sprintf("guess-%d", i), body: getBody(testKey)}); a.status != 401 {
			t.Fatalf("guess %d = %d, want 401", i, a.status)
		}
	}
	a := g.do(t, call{path: "/get-key", token: "guess-21", body: getBody(testKey)})
	if a.status != 429 || a.code != 3 {
		t.Errorf("guess 21 = %d %s, want 429", a.status, a.raw)
	}
	if a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)}); a.status != 429 {
		t.Errorf("valid token from the guessing IP = %d, want 429 while the budget is spent", a.status)
	}
}

func TestAdminEndpoints(t *testing.T) {
	g := newGateway(t)
	g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
	g.do(t, call{path: "/get-key", token: "bad", body: getBody(testKey)})
	admin := newAdminServer(t, g)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		if resp, err := http.Get(admin + path); err != nil || resp.StatusCode != want {
			t.Errorf("GET %s = %v %v, want %d", path, resp.StatusCode, err, want)
		}
	}
	g.SetReady(false)
	if resp, _ := http.Get(admin + "/readyz"); resp.StatusCode != 503 {
		t.Errorf("GET /readyz when not ready = %d, want 503", resp.StatusCode)
	}
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`keygate_requests_total{code="0",route="get",status="200"} 1`,
		`keygate_requests_total{code="1",route="get",status="401"} 1`,
		`keygate_token_rejections_total{reason="unknown",route="get"} 1`,
		`keygate_upstream_duration_seconds_count{route="get"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRateLimitHeaders(t *testing.T) {
	tests := []struct {
		mode      HeaderMode
		first     map[string]string
		limited   map[string]string
		forbidden []string
	}{
		{HeadersDraft,
			map[string]string{"RateLimit-Policy": `"activate-per-license";q=10;w=60`, "RateLimit": `"activate-per-license";r=9;t=6`},
			map[string]string{"RateLimit": `"activate-per-license";r=0;t=6`, "Retry-After": "6"},
			[]string{"RateLimit-Limit"}},
		{HeadersLegacy,
			map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": "6"},
			map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "6", "Retry-After": "6"},
			[]string{"RateLimit-Policy", "RateLimit"}},
		{HeadersNone, nil, map[string]string{"Retry-After": "6"}, []string{"RateLimit-Policy", "RateLimit", "RateLimit-Limit"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			g := newGateway(t, func(o *Options) { o.RateHeaders = tc.mode })
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("RateLimit", `"upstream";r=1;t=1`) // the upstream's own never leak
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"message":"ok","code":0}`)
			})
			var a answer
			for i := 0; i < 11; i++ {
				a = g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
				want := tc.limited
				if i == 0 {
					want = tc.first
				} else if i < 10 {
					continue
				}
				for k, v := range want {
					if got := a.header.Get(k); got != v {
						t.Errorf("request %d: %s = %q, want %q", i+1, k, got, v)
					}
				}
				for _, k := range tc.forbidden {
					if got := a.header.Get(k); got != "" {
						t.Errorf("request %d: %s = %q, want none in mode %s", i+1, k, got, tc.mode)
					}
				}
			}
			if a.status != 429 {
				t.Errorf("11th activation = %d, want 429", a.status)
			}
		})
	}
}

// TestAccessLogHashesSecrets: the access log names the token and every
// parameter the policy marks secret (the built-in licenseKey) by a short
// hash, never by value, whatever the answer, through the Logger or an
// AccessLog.
func TestAccessLogHashesSecrets(t *testing.T) {
	for _, access := range []bool{false, true} {
		t.Run(fmt.Sprintf("AccessLog=%v", access), func(t *testing.T) { testAccessLogHashesSecrets(t, access) })
	}
}

func testAccessLogHashesSecrets(t *testing.T, access bool) {
	var logs syncBuffer
	g := newGateway(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		if access {
			o.AccessLog = NewAccessLog(&logs, "json")
		}
	})
	for _, c := range []call{
		{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)},
		{path: "/activate-key", token: "not-a-token", body: activateBody(testKey)},
		{path: "/get-key", token: testTokens["global"], body: `{"productId":1}`},
	} {
		g.do(t, c)
	}
	out := logs.String()
	for _, secret := range []string{testKey, testTokens["global"], "not-a-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("access log holds %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"licenseKey_hash":"` + policy.HashToken(testKey) + `"`, `"token_hash":"` + policy.HashToken(testTokens["global"]) + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %s:\n%s", want, out)
		}
	}
}

// syncBuffer is a bytes.Buffer that handlers on several goroutines may
// write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

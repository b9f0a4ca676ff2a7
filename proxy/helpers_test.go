package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// Fixture values: lengths meet the built-in policy's rules.
const (
	testProduct = "prod_test_0000000000000001"
	testKey     = "KEY-TEST-0000-0000-0000-0001"
	otherProd   = "prod_test_0000000000000002"
)

// Tokens of the fixture, by name.
var testTokens = map[string]string{
	"global":  "tok-global-secret",
	"scoped":  "tok-scoped-secret",
	"getonly": "tok-getonly-secret",
	"expired": "tok-expired-secret",
}

func tokensDoc() string {
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	return fmt.Sprintf(`tokens:
  - name: global
    sha256: %q
    products: ["*"]
  - name: scoped
    sha256: %q
    products: [%q]
  - name: getonly
    sha256: %q
    products: ["*"]
    operations: [get]
  - name: expired
    sha256: %q
    products: ["*"]
    expires: "2001-01-01T00:00:00Z"
`, h(testTokens["global"]), h(testTokens["scoped"]), testProduct, h(testTokens["getonly"]), h(testTokens["expired"]))
}

// upstream is a real HTTP backend whose behaviour a test sets.
type upstream struct {
	*httptest.Server
	calls   atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
	last    atomic.Pointer[seenRequest]
}

type seenRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"License valid","code":0}`)
	})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.last.Store(&seenRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		(*u.handler.Load())(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) set(h http.HandlerFunc) { u.handler.Store(&h) }

// gateway is a Gateway under test behind a real listener.
type gateway struct {
	*Gateway
	srv *httptest.Server
	up  *upstream
}

type fixtureOpt func(*Options)

func withPolicy(p *policy.Policy) fixtureOpt { return func(o *Options) { o.Policy = p } }
func withTimeout(d time.Duration) fixtureOpt {
	return func(o *Options) { o.UpstreamTimeout = d }
}
func withTrusted(cidrs ...string) fixtureOpt {
	return func(o *Options) {
		for _, c := range cidrs {
			o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(c))
		}
	}
}
func withUpstreamURL(raw string) fixtureOpt {
	return func(o *Options) { o.Upstream, _ = url.Parse(raw) }
}

func newGateway(t testing.TB, opts ...fixtureOpt) *gateway {
	t.Helper()
	up := newUpstream(t)
	toks, err := policy.ParseTokens("test tokens", []byte(tokensDoc()), policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(up.URL)
	o := Options{
		Upstream:        target,
		UpstreamTimeout: 2 * time.Second,
		Policy:          policy.Default(),
		Tokens:          toks,
		Limiter:         ratelimit.NewMemory(),
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:         NewMetrics(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	g.SetReady(true)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &gateway{Gateway: g, srv: srv, up: up}
}

// call sends a request; token "" sends no Authorization.
type call struct {
	method, path, token, body string
	header                    map[string]string
}

type answer struct {
	status int
	header http.Header
	raw    []byte
	msg    string
	code   int
}

// do sends c and checks that the answer is within the contract. It stops the
// test on a transport error, so call it from the test's goroutine only;
// goroutines call send and report what it returns.
func (g *gateway) do(t *testing.T, c call) answer {
	t.Helper()
	a, err := g.send(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range contractProblems(a) {
		t.Error(p)
	}
	return a
}

// send sends c and returns the answer, or why there is none. It neither
// stops nor fails the test, so goroutines may call it.
func (g *gateway) send(c call) (answer, error) {
	if c.method == "" {
		c.method = http.MethodPost
	}
	req, err := http.NewRequest(c.method, g.srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		return answer{}, err
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", c.method, c.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: reading body: %w", c.method, c.path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	var b struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
	}
	_ = json.Unmarshal(raw, &b)
	a.msg, a.code = b.Message, b.Code
	return a, nil
}

var contractCodes = map[int][]int{200: {0}, 400: {1}, 401: {1}, 403: {2}, 404: {1, 2}, 409: {2}, 429: {3}, 500: {1}}

// assertContract fails the test unless the answer is within the contract
// (see contractProblems). It does not stop the test.
func assertContract(t *testing.T, a answer) {
	t.Helper()
	for _, p := range contractProblems(a) {
		t.Error(p)
	}
}

// contractProblems lists how an answer breaks the contract: a status outside
// it, a body that is not JSON, a missing or wrong code, an error body other
// than exactly {"message": non-empty string, "code": N}, a header outside
// the answer allowlist's name space. None means the answer is within it.
func contractProblems(a answer) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	codes, ok := contractCodes[a.status]
	if !ok {
		bad("status %d is outside the contract (body %q)", a.status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		bad("Content-Type = %q, want application/json (body %q)", ct, a.raw)
	}
	for name := range a.header {
		if strings.HasPrefix(name, "Keygate-") {
			bad("internal header %s = %q reached the client", name, a.header.Get(name))
		}
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(a.raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		bad("body %q is not a JSON object: %v", a.raw, err)
		return out
	}
	n, isNumber := m["code"].(json.Number)
	code, err := n.Int64()
	switch {
	case !isNumber || err != nil:
		bad("body %q has no integer code", a.raw)
	case ok && !containsInt(codes, int(code)):
		bad("status %d with code %d, want one of %v", a.status, code, codes)
	}
	if a.status >= 400 {
		if msg, ok := m["message"].(string); !ok || msg == "" || len(m) != 2 {
			bad("error body %q is not exactly {message, code}", a.raw)
		}
	}
	return out
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func activateBody(key string) string {
	return fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"host-1"}`, testProduct, key)
}

func getBody(key string) string {
	return fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, testProduct, key)
}

func newAdminServer(t *testing.T, g *gateway) string {
	t.Helper()
	srv := httptest.NewServer(g.AdminHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

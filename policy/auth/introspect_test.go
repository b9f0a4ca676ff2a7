package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// idpServer is a fake RFC 7662 endpoint: it answers from a table of tokens,
// counts its calls, and can be made slow or broken.
type idpServer struct {
	*httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	answers map[string]string // token -> JSON answer; others are inactive
	status  int
	release chan struct{} // when set, each call waits for it
	badAuth atomic.Int64
}

const (
	idpClientID     = "keygate"
	idpClientSecret = "s3cret:with/odd&chars"
)

func newIDP(t *testing.T) *idpServer {
	t.Helper()
	s := &idpServer{answers: map[string]string{}, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		id, secret, ok := r.BasicAuth()
		if !ok || id != idpClientID || secret != "s3cret%3Awith%2Fodd%26chars" || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
			s.badAuth.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		release, status := s.release, s.status
		answer, known := s.answers[r.PostFormValue("token")]
		s.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if !known {
			answer = `{"active":false}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(answer))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *idpServer) set(token string, answer map[string]any) {
	b, _ := json.Marshal(answer)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[token] = string(b)
}

func newTestIntrospector(t *testing.T, s *idpServer, c *fakeClock, cfg IntrospectionConfig) *Introspector {
	t.Helper()
	cfg.URL = s.URL
	cfg.ClientID, cfg.ClientSecret = idpClientID, idpClientSecret
	in, err := NewIntrospector(cfg)
	if err != nil {
		t.Fatalf("NewIntrospector: %v", err)
	}
	in.now = c.Now
	return in
}

func TestIntrospection(t *testing.T) {
	idp := newIDP(t)
	c := newClock()
	now := c.Now().Unix()
	in := newTestIntrospector(t, idp, c, IntrospectionConfig{Audiences: []string{testAudience}, Issuers: []string{testIssuer}})
	active := func(changes map[string]any) map[string]any {
		m := map[string]any{"active": true, "scope": "read", "client_id": "shop", "sub": "svc-1", "iss": testIssuer,
			"aud": []string{"other", testAudience}, "exp": now + 3600, "products": []string{testProductID}}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	idp.set("good", active(nil))
	idp.set("expired", active(map[string]any{"exp": now - 1}))
	idp.set("early", active(map[string]any{"nbf": now + 60}))
	idp.set("other-aud", active(map[string]any{"aud": "billing"}))
	idp.set("other-iss", active(map[string]any{"iss": "https://evil/"}))
	idp.set("no-products", active(map[string]any{"products": nil}))
	idp.set("bad-exp", active(map[string]any{"exp": "soon"}))

	tok, reason, err := in.Authenticate(context.Background(), "good")
	if tok == nil || err != nil {
		t.Fatalf("Authenticate(good) = %v, %q, %v", tok, reason, err)
	}
	if tok.Name != "introspect:svc-1" || !cmp.Equal(tok.Products, []string{testProductID}) || !tok.ExpiresAt().Equal(time.Unix(now+3600, 0)) {
		t.Errorf("token = %+v", tok)
	}
	for token, want := range map[string]string{
		"unknown": ReasonInactive, "expired": ReasonExpired, "early": ReasonNotYetValid,
		"other-aud": ReasonBadAudience, "other-iss": ReasonBadIssuer, "no-products": ReasonProduct, "bad-exp": ReasonMalformed,
	} {
		wantAuth(t, in, token, want)
	}
	if got := idp.badAuth.Load(); got != 0 {
		t.Errorf("%d calls had bad client authentication or form", got)
	}

	// Answers are cached: positive ones for CacheTTL, negative ones for
	// NegativeTTL; each token was asked once.
	calls := idp.calls.Load()
	wantAuth(t, in, "good", "")
	wantAuth(t, in, "unknown", ReasonInactive)
	if got := idp.calls.Load() - calls; got != 0 {
		t.Errorf("cached lookups made %d calls, want 0", got)
	}
	c.Add(DefaultIntrospectNegativeTTL)
	wantAuth(t, in, "unknown", ReasonInactive)
	wantAuth(t, in, "good", "")
	if got := idp.calls.Load() - calls; got != 1 {
		t.Errorf("after NegativeTTL: %d calls, want 1 (the negative answer only)", got)
	}
	c.Add(DefaultIntrospectCacheTTL)
	wantAuth(t, in, "good", "")
	if got := idp.calls.Load() - calls; got != 2 {
		t.Errorf("after CacheTTL: %d calls, want 2", got)
	}
}

func TestIntrospectionCollapsesConcurrentLookups(t *testing.T) {
	idp := newIDP(t)
	c := newClock()
	in := newTestIntrospector(t, idp, c, IntrospectionConfig{})
	idp.set("hot", map[string]any{"active": true, "products": "*"})
	release := make(chan struct{})
	idp.mu.Lock()
	idp.release = release
	idp.mu.Unlock()

	const n = 64
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for range n {
		wg.Go(func() {
			if tok, _, _ := in.Authenticate(context.Background(), "hot"); tok != nil {
				accepted.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return idp.calls.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // let the others pile up behind the one call
	close(release)
	wg.Wait()
	if got := idp.calls.Load(); got != 1 {
		t.Errorf("%d concurrent lookups made %d calls, want 1", n, got)
	}
	if accepted.Load() != n {
		t.Errorf("%d of %d lookups accepted", accepted.Load(), n)
	}
}

func TestIntrospectionUnavailable(t *testing.T) {
	idp := newIDP(t)
	c := newClock()
	in := newTestIntrospector(t, idp, c, IntrospectionConfig{Timeout: 100 * time.Millisecond, MaxBytes: 1024})
	idp.set("good", map[string]any{"active": true, "products": []string{"*"}})

	// A hung endpoint: the call gives up at Timeout.
	idp.mu.Lock()
	idp.release = make(chan struct{}) // never closed
	idp.mu.Unlock()
	start := time.Now()
	wantAuth(t, in, "good", ReasonUnavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Authenticate took %v with a 100ms timeout", d)
	}
	// Within Backoff, nothing is called.
	calls := idp.calls.Load()
	wantAuth(t, in, "other", ReasonUnavailable)
	if idp.calls.Load() != calls {
		t.Error("a lookup within Backoff called the endpoint")
	}
	idp.mu.Lock()
	idp.release = nil
	idp.mu.Unlock()

	for name, broken := range map[string]func(){
		"status 500":    func() { idp.status = http.StatusInternalServerError },
		"not JSON":      func() { idp.answers["good"] = "<html>" },
		"active string": func() { idp.answers["good"] = `{"active":"true"}` },
		"no active":     func() { idp.answers["good"] = `{"products":["*"]}` },
		"too large":     func() { idp.answers["good"] = `{"active":true,"x":"` + strings.Repeat("x", 2000) + `"}` },
	} {
		idp.mu.Lock()
		idp.status = http.StatusOK
		broken()
		idp.mu.Unlock()
		c.Add(DefaultIntrospectBackoff)
		tok, reason, err := in.Authenticate(context.Background(), "good")
		if tok != nil || reason != ReasonUnavailable || err == nil {
			t.Errorf("%s: Authenticate = %v, %q, %v; want unavailable with an error", name, tok, reason, err)
		}
		if err != nil && strings.Contains(err.Error(), "good") {
			t.Errorf("%s: error %q quotes the token", name, err)
		}
	}
	idp.set("good", map[string]any{"active": true, "products": []string{"*"}})
	idp.mu.Lock()
	idp.status = http.StatusOK
	idp.mu.Unlock()
	c.Add(DefaultIntrospectBackoff)
	wantAuth(t, in, "good", "") // failures were not cached
}

func TestNewIntrospectorErrors(t *testing.T) {
	_, err := NewIntrospector(IntrospectionConfig{URL: "localhost:80", ClientID: "x", Timeout: -1})
	for _, want := range []string{"URL", "ClientSecret", "Timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewIntrospector(bad) error = %v, want it to name %s", err, want)
		}
	}
}

// A redirect from the introspection endpoint is a failure: following a 307
// would send the token to wherever it points.
func TestIntrospectionRefusesRedirects(t *testing.T) {
	var leaked atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		w.Write([]byte(`{"active":true,"products":["*"]}`))
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	in, err := NewIntrospector(IntrospectionConfig{URL: redirector.URL})
	if err != nil {
		t.Fatal(err)
	}
	wantAuth(t, in, "opaque", ReasonUnavailable)
	if leaked.Load() != 0 {
		t.Error("the token followed the redirect")
	}
}

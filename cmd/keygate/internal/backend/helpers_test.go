package backend

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// response is what a test needs from one HTTP answer.
type response struct {
	status      int
	contentType string
	location    string
	body        string
}

// newServer starts a fresh seeded backend behind a real HTTP server.
func newServer(t *testing.T) (*Backend, *httptest.Server) {
	t.Helper()
	b := New()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv
}

// noRedirect is a client that reports 302s instead of following them, so the
// RedirectKey answer can be inspected.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends one request and reads the whole answer, failing the test on a
// transport error. It must run on the test's goroutine.
func do(t testing.TB, srv *httptest.Server, method, path, body string) response {
	t.Helper()
	got, err := tryDo(srv, method, path, body)
	if err != nil {
		t.Fatalf("%s %s(%s) error = %v", method, path, body, err)
	}
	return got
}

// tryDo is do for other goroutines: it reports errors instead of failing.
func tryDo(srv *httptest.Server, method, path, body string) (response, error) {
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := noRedirect.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{
		status:      resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"),
		location:    resp.Header.Get("Location"),
		body:        string(data),
	}, nil
}

// post sends a POST with a JSON body.
func post(t testing.TB, srv *httptest.Server, path, body string) response {
	t.Helper()
	return do(t, srv, http.MethodPost, path, body)
}

// mustJSON decodes s into a generic value, failing the test on bad JSON.
func mustJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("json.Unmarshal(%q) error = %v", s, err)
	}
	return v
}

// checkJSON compares a JSON answer with the wanted status and body.
func checkJSON(t testing.TB, name string, got response, wantStatus int, wantBody string) {
	t.Helper()
	if got.status != wantStatus {
		t.Errorf("%s status = %d, want %d (body %s)", name, got.status, wantStatus, got.body)
	}
	if got.contentType != "application/json" {
		t.Errorf("%s Content-Type = %q, want %q", name, got.contentType, "application/json")
	}
	if diff := cmp.Diff(mustJSON(t, wantBody), mustJSON(t, got.body)); diff != "" {
		t.Errorf("%s body mismatch (-want +got):\n%s", name, diff)
	}
}

// keyBody builds the usual {productId, licenseKey[, hostId]} request body.
func keyBody(key string, hostID ...string) string {
	m := map[string]string{"productId": ProductID, "licenseKey": key}
	if len(hostID) > 0 {
		m["hostId"] = hostID[0]
	}
	data, _ := json.Marshal(m)
	return string(data)
}

// activations asks /get-key how many devices hold key.
func activations(t testing.TB, srv *httptest.Server, key string) int {
	t.Helper()
	got := post(t, srv, "/get-key", keyBody(key))
	var reply struct {
		Data struct {
			Activations int `json:"activations"`
		} `json:"data"`
	}
	if got.status != http.StatusOK {
		t.Fatalf("POST /get-key(%s) status = %d, want 200 (body %s)", key, got.status, got.body)
	}
	if err := json.Unmarshal([]byte(got.body), &reply); err != nil {
		t.Fatalf("POST /get-key(%s) body %q: %v", key, got.body, err)
	}
	return reply.Data.Activations
}

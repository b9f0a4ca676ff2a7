package backend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

var allRoutes = []string{"/get-key", "/activate-key", "/deactivate-key", "/create-key", "/block-key", "/unblock-key"}

// TestLegacyKeys checks that each broken key gets its broken answer on every
// route, even when the rest of the request would fail validation.
func TestLegacyKeys(t *testing.T) {
	tests := []struct {
		key             string
		wantStatus      int
		wantContentType string
		wantLocation    string
		wantContains    []string
	}{
		{HTMLErrorKey, 502, "text/html", "", []string{"<title>502 Bad Gateway</title>", "nginx"}},
		{ForeignJSONKey, 422, "application/json", "", []string{`{"error":"license_key format invalid"}`}},
		{PlainTextKey, 500, "text/plain", "", []string{"Exception", "\n\tat ", "db-internal-7.corp:5432"}},
		{RedirectKey, 302, "text/html", "/login", []string{"<html>", `href="/login"`}},
	}
	bodies := map[string]func(key string) string{
		"full":        func(key string) string { return keyBody(key, "h") },
		"key only":    func(key string) string { return `{"licenseKey":"` + key + `"}` },
		"bad product": func(key string) string { return `{"productId":"prod_nope","licenseKey":"` + key + `"}` },
	}
	for _, tt := range tests {
		for _, path := range allRoutes {
			for bodyName, body := range bodies {
				t.Run(tt.key+path+"/"+bodyName, func(t *testing.T) {
					_, srv := newServer(t)
					got := post(t, srv, path, body(tt.key))
					name := fmt.Sprintf("POST %s(%s)", path, body(tt.key))
					if got.status != tt.wantStatus {
						t.Errorf("%s status = %d, want %d", name, got.status, tt.wantStatus)
					}
					if got.contentType != tt.wantContentType {
						t.Errorf("%s Content-Type = %q, want %q", name, got.contentType, tt.wantContentType)
					}
					if got.location != tt.wantLocation {
						t.Errorf("%s Location = %q, want %q", name, got.location, tt.wantLocation)
					}
					for _, want := range tt.wantContains {
						if !strings.Contains(got.body, want) {
							t.Errorf("%s body = %q, want it to contain %q", name, got.body, want)
						}
					}
				})
			}
		}
	}
}

// TestLegacyKeysAfterRouteAndBody checks that broken keys do not bypass the
// route table or JSON parsing.
func TestLegacyKeysAfterRouteAndBody(t *testing.T) {
	_, srv := newServer(t)
	got := do(t, srv, http.MethodGet, "/get-key", keyBody(HTMLErrorKey))
	checkJSON(t, "GET /get-key(HTMLErrorKey)", got, 404, `{"message":"Not found","code":1}`)
	got = post(t, srv, "/nope", keyBody(PlainTextKey))
	checkJSON(t, "POST /nope(PlainTextKey)", got, 404, `{"message":"Not found","code":1}`)
	got = post(t, srv, "/get-key", keyBody(RedirectKey)+`}`)
	checkJSON(t, "POST /get-key(RedirectKey, broken JSON)", got, 400, `{"message":"Invalid JSON","code":1}`)
}

// TestConcurrentActivations races many hosts for LicenseKey's three slots.
func TestConcurrentActivations(t *testing.T) {
	_, srv := newServer(t)
	const hosts = 40
	statuses := make([]int, hosts)
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Go(func() {
			got, err := tryDo(srv, http.MethodPost, "/activate-key", keyBody(LicenseKey, fmt.Sprintf("host-%d", i)))
			if err != nil {
				t.Errorf("POST /activate-key(host-%d) error = %v", i, err)
			}
			statuses[i] = got.status
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[200] != 3 || counts[403] != hosts-3 {
		t.Errorf("%d concurrent POST /activate-key statuses = %v, want 3×200 and %d×403", hosts, counts, hosts-3)
	}
	if n := activations(t, srv, LicenseKey); n != 3 {
		t.Errorf("activations(LicenseKey) = %d, want 3", n)
	}
}

// TestConcurrentMixedTraffic runs every route at once so that -race can see
// any unguarded state. Only 5xx answers are failures here.
func TestConcurrentMixedTraffic(t *testing.T) {
	b, srv := newServer(t)
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 20 {
				host := fmt.Sprintf("w%d-%d", w, i)
				reqs := []struct{ path, body string }{
					{"/activate-key", keyBody(LicenseKey, host)},
					{"/get-key", keyBody(LicenseKey)},
					{"/block-key", keyBody(FullKey)},
					{"/unblock-key", keyBody(FullKey)},
					{"/deactivate-key", keyBody(LicenseKey, host)},
					{"/create-key", `{` + productField + `,"newCustomer":{"name":"N","email":"` + host + `@example.com"}}`},
				}
				for _, r := range reqs {
					got, err := tryDo(srv, http.MethodPost, r.path, r.body)
					if err != nil {
						t.Errorf("POST %s(%s) error = %v", r.path, r.body, err)
					} else if got.status >= 500 {
						t.Errorf("POST %s(%s) status = %d, want < 500 (body %s)", r.path, r.body, got.status, got.body)
					}
				}
			}
			_ = b.Calls("/get-key")
		})
	}
	wg.Wait()
	if got, want := b.Calls("/get-key"), workers*20; got != want {
		t.Errorf("Calls(/get-key) = %d, want %d", got, want)
	}
}

// FuzzServeHTTP checks that no body or path makes the backend panic or
// answer outside its known shapes.
func FuzzServeHTTP(f *testing.F) {
	for _, path := range allRoutes {
		f.Add(path, keyBody(LicenseKey, "h"))
	}
	f.Add("/create-key", `{"productId":"`+ProductID+`","maxActivations":"7","expiryDate":"2030-01-02T03:04:05Z","newCustomer":{"name":"x"}}`)
	f.Add("/activate-key", keyBody(PlainTextKey, "h"))
	f.Add("/deactivate-key", `{"productId":null,"licenseKey":[]}`)
	f.Add("/nope", `{`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		b := New()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.URL.Path = path
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, req)
		ct := rec.Header().Get("Content-Type")
		if ct != "application/json" || !json.Valid(rec.Body.Bytes()) || rec.Code >= 500 {
			// Only the broken keys may answer outside the contract.
			if _, legacy := legacyAnswers[keyOf(body)]; !legacy {
				t.Fatalf("POST %q(%q) = %d %q %q, want contract JSON below 500", path, body, rec.Code, ct, rec.Body.String())
			}
		}
	})
}

// keyOf returns the licenseKey of a JSON body, or "".
func keyOf(body string) string {
	var r struct {
		LicenseKey string `json:"licenseKey"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	return r.LicenseKey
}

package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/policy"
)

// hostileHeaders are what legacy backends add to answers: none may reach a
// client.
var hostileHeaders = map[string]string{
	"Set-Cookie":                  "sid=0123456789abcdef; Path=/",
	"Server":                      "Apache/2.4.1 (db-primary.prod.internal)",
	"Location":                    "http://10.0.3.7:8080/internal",
	"X-Powered-By":                "Express",
	"X-Backend-Host":              "db-primary.prod.internal",
	"Access-Control-Allow-Origin": "*",
	"Link":                        "</x>; rel=preload",
	"Ratelimit":                   `"upstream";r=1;t=1`,
	"X-Request-Id":                "upstream-id",
}

// clientHeaders are all a client may see: answerHeader's list and what
// net/http adds to every answer.
func allowedHeader(name string, extra ...string) bool {
	return answerHeader(name) || name == "Date" || slices.Contains(extra, name)
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, s)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAnswerHeadersAllowlisted: whatever the status, and whether the answer
// passes as it is or is rewritten, only listed headers reach the client.
func TestAnswerHeadersAllowlisted(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     int
		wantBody string
	}{
		{"200 success", 200, `{"message":"License valid","code":0}`, 200, `{"message":"License valid","code":0}`},
		{"201 success", 201, `{"message":"License valid","code":0}`, 200, `{"message":"License valid","code":0}`},
		{"204 empty", 204, ``, 200, `{"message":"OK","code":0}`},
		{"400 contract", 400, `{"message":"Missing required params","code":1}`, 400, `{"message":"Missing required params","code":1}`},
		{"401 contract", 401, `{"message":"Invalid access token","code":1}`, 401, `{"message":"Invalid access token","code":1}`},
		{"403 contract", 403, `{"message":"License is blocked","code":2}`, 403, `{"message":"License is blocked","code":2}`},
		{"404 contract", 404, `{"message":"License key not found","code":1}`, 404, `{"message":"License key not found","code":1}`},
		{"409 contract", 409, `{"message":"Activation limit reached","code":2}`, 409, `{"message":"Activation limit reached","code":2}`},
		{"429 contract", 429, `{"message":"Too many requests. Please try again later.","code":3}`, 429, `{"message":"Too many requests. Please try again later.","code":3}`},
		{"500 contract", 500, `{"message":"Server error","code":1}`, 500, `{"message":"Server error","code":1}`},
		{"404 rewritten", 404, `<h1>not here</h1>`, 404, `{"message":"Not found","code":1}`},
		{"302 rewritten", 302, ``, 500, `{"message":"Server error","code":1}`},
		{"502 rewritten", 502, `bad gateway`, 500, `{"message":"Server error","code":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t) // fresh limits: each row activates
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range hostileHeaders {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
			if a.status != tc.want || string(a.raw) != tc.wantBody {
				t.Errorf("answer = %d %s, want %d %s", a.status, a.raw, tc.want, tc.wantBody)
			}
			for name := range a.header {
				if !allowedHeader(name) {
					t.Errorf("header %s = %q reached the client", name, a.header.Get(name))
				}
			}
			if got := a.header.Get("X-Request-Id"); got == "upstream-id" || got == "" {
				t.Errorf("X-Request-Id = %q, want keygate's own", got)
			}
			if got := a.header.Get("Ratelimit"); strings.Contains(got, "upstream") {
				t.Errorf("RateLimit = %q, want keygate's own", got)
			}
			// the hostile headers and the upstream's Date
			want := fmt.Sprintf(`keygate_upstream_rewrites_total{kind="header",route="activate"} %d`, len(hostileHeaders)+1)
			if m := metricsText(t, g); !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}

// TestAnswerHeadersListedByPolicy: a route's response.headers pass when their
// value is clean, and only then; Cache-Control passes.
func TestAnswerHeadersListedByPolicy(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`routes:
  - name: get
    method: POST
    path: /get-key
    params:
      licenseKey: {secret: true}
    response:
      headers: [X-Keymint-Version]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, withPolicy(p))
	tests := []struct {
		name, version, cache string
		wantVersion          string
		wantCache            string
	}{
		{"clean values pass", "2.1", "no-store", "", "no-store"}, // "2.1" is dotted: the detector refuses it
		{"plain value passes", "v2", "private, max-age=0", "v2", "private, max-age=0"},
		{"leaking value dropped", "db-primary.prod.internal", "private; host=10.0.0.7", "", "private"}, // token route: keygate's private
		{"caller's key dropped", testKey, "", "", "private"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Keymint-Version", tc.version)
				if tc.cache != "" {
					w.Header().Set("Cache-Control", tc.cache)
				}
				w.Header().Set("X-Other", "1")
				io.WriteString(w, `{"message":"OK","code":0}`)
			})
			a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
			if got := a.header.Get("X-Keymint-Version"); got != tc.wantVersion {
				t.Errorf("X-Keymint-Version = %q, want %q", got, tc.wantVersion)
			}
			if got := a.header.Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.wantCache)
			}
			for name := range a.header {
				if !allowedHeader(name, "X-Keymint-Version") {
					t.Errorf("header %s reached the client", name)
				}
			}
		})
	}
}

// TestPlantedSecretsNeverReachClient: golden answers for successes and
// errors that carry a DSN, an internal host, a file path, a stack trace, the
// caller's license key or token.
func TestPlantedSecretsNeverReachClient(t *testing.T) {
	dsn := "postgres://keymint:hunter2@db-primary.prod.internal:5432/keys"
	stack := "Error: boom\n    at Query.run (/srv/keymint/db.js:42:7)"
	tests := []struct {
		name   string
		path   string
		status int
		body   string
		want   string
	}{
		{"success: DSN in an unlisted field", "/activate-key", 200,
			`{"message":"License valid","code":0,"licenseeName":"Ada","db":"` + dsn + `"}`,
			`{"message":"License valid","code":0,"licenseeName":"Ada"}`},
		{"success: host, path and IP in a listed field", "/activate-key", 200,
			`{"message":"License valid","code":0,"licenseeName":"served by db-primary.prod.internal /srv/x 10.0.3.7"}`,
			`{"message":"License valid","code":0}`},
		{"success: stack trace as the message", "/activate-key", 200,
			`{"message":` + strconv.Quote(stack) + `,"code":0}`, `{"message":"OK","code":0}`},
		{"success: caller's key echoed", "/activate-key", 200,
			`{"message":"License valid","code":0,"licenseeName":"` + testKey + `"}`, `{"message":"License valid","code":0}`},
		{"success: caller's token echoed", "/activate-key", 200,
			`{"message":"License valid","code":0,"licenseeName":"` + testTokens["global"] + `"}`, `{"message":"License valid","code":0}`},
		{"get: caller's key in its documented field stays", "/get-key", 200,
			`{"message":"License key fetched","code":0,"data":{"licenseKey":"` + testKey + `","secret":"` + dsn + `"}}`,
			`{"message":"License key fetched","code":0,"data":{"licenseKey":"` + testKey + `"}}`},
		{"error: mysql access denied", "/activate-key", 500,
			`{"message":"ER_ACCESS_DENIED_ERROR: Access denied for user 'keymint'@'db-primary.prod.internal'","code":1}`,
			`{"message":"Server error","code":1}`},
		{"error: econnrefused", "/activate-key", 503, `{"error":"connect ECONNREFUSED db-primary.prod.internal"}`,
			`{"message":"Server error","code":1}`},
		{"error: constraint name", "/activate-key", 409, `{"message":"duplicate key violates licenses_host_uq","code":2}`,
			`{"message":"Conflict","code":2}`},
		{"error: hex IP", "/activate-key", 500, `{"message":"peer 0x0a000307 refused","code":1}`, `{"message":"Server error","code":1}`},
		{"error: access key id", "/activate-key", 500, `{"message":"AKIAIOSFODNN7EXAMPLE denied","code":1}`, `{"message":"Server error","code":1}`},
		{"error: caller's key echoed", "/activate-key", 404, `{"message":"License key ` + testKey + ` not found","code":1}`,
			`{"message":"Not found","code":1}`},
		{"error: DSN", "/activate-key", 500, `{"message":"` + dsn + `","code":1}`, `{"message":"Server error","code":1}`},
		{"error: stack", "/activate-key", 500, `{"message":` + strconv.Quote(stack) + `,"code":1}`, `{"message":"Server error","code":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t) // fresh limits: each row activates
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			body := activateBody(testKey)
			if tc.path == "/get-key" {
				body = getBody(testKey)
			}
			a := g.do(t, call{path: tc.path, token: testTokens["global"], body: body})
			if string(a.raw) != tc.want {
				t.Errorf("answer = %s, want %s", a.raw, tc.want)
			}
		})
	}
}

// TestLargeAndEndlessSuccesses: successes are read whole within the cap and
// the upstream timeout; anything else becomes a contract 500, never a stream.
func TestLargeAndEndlessSuccesses(t *testing.T) {
	g := newGateway(t, withTimeout(time.Second), func(o *Options) { o.MaxAnswerBytes = 64 << 10 })
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"10 MB text/html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, strings.Repeat("<p>x</p>", 10<<20/8))
		}},
		{"JSON over the cap", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"message":"License valid","code":0,"licenseeName":"`+strings.Repeat("a", 70<<10)+`"}`)
		}},
		{"Content-Length over the cap", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			io.WriteString(w, `{"message":"License valid","code":0}`)
		}},
		{"endless", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"message":"License valid","code":0,"licenseeName":"`)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // until keygate gives up on it
		}},
		{"endless chunks", func(w http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil {
				if _, err := io.WriteString(w, "       "); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}},
		{"gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipped(t, `{"message":"License valid","code":0,"licenseeName":"`+strings.Repeat("a", 1<<20)+`"}`))
		}},
		{"encoding keygate does not decode", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, `{"message":"License valid","code":0}`)
		}},
		{"broken gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			io.WriteString(w, `{"message":"License valid","code":0}`)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(tc.handler)
			a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
			if a.status != 500 || string(a.raw) != `{"message":"Server error","code":1}` {
				t.Errorf("answer = %d %.100s, want 500 Server error", a.status, a.raw)
			}
		})
	}
}

// TestGzipSuccessDecoded: a gzip success larger than the error cap once
// decoded passes (the backend has committed it), sent decoded, and keygate
// asks for identity only.
func TestGzipSuccessDecoded(t *testing.T) {
	g := newGateway(t)
	var devices []string
	for i := range 400 { // about 36 KiB decoded, over errorBodyCap
		devices = append(devices, fmt.Sprintf(`{"hostId":"host-%04d","deviceTag":"laptop","activationTime":"2026-01-02T03:04:05Z"}`, i))
	}
	want := `{"message":"License key fetched","code":0,"data":{"devices":[` + strings.Join(devices, ",") + `]}}`
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gzipped(t, want))
	})
	a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
	if a.status != 200 || string(a.raw) != want {
		t.Errorf("answer = %d %.80s (%d bytes), want 200 with the decoded body (%d bytes)", a.status, a.raw, len(a.raw), len(want))
	}
	if ce := a.header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q, want none (keygate sends identity)", ce)
	}
	if got := g.up.last.Load().Header.Values("Accept-Encoding"); !slices.Equal(got, []string{"identity"}) {
		t.Errorf("upstream Accept-Encoding = %q, want [identity]", got)
	}
}

// TestReplayEqualsFirstAnswer: a replay carries the first answer's bytes and
// headers, whatever encoding the upstream used; only what belongs to each
// request (its id, its limits) differs.
func TestReplayEqualsFirstAnswer(t *testing.T) {
	g := newGateway(t, withIdempotency(NewMemoryIdempotency(), false))
	g.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Cache-Control", "private")
		w.Header().Set("Set-Cookie", "sid=1")
		w.Write(gzipped(t, `{"message":"License valid","licenseeName":"Ada","code":0}`))
	})
	first := g.do(t, idemCall("replay-gzip", activateBody(testKey)))
	again := g.do(t, idemCall("replay-gzip", activateBody(testKey)))
	if again.header.Get(ReplayHeader) != "true" {
		t.Fatalf("second answer is not a replay: %v", again.header)
	}
	if first.status != again.status || !bytes.Equal(first.raw, again.raw) {
		t.Errorf("replay = %d %s, want %d %s", again.status, again.raw, first.status, first.raw)
	}
	perRequest := func(h http.Header) http.Header {
		out := http.Header{}
		for k, v := range h {
			if replayableHeader(k) && k != "Date" || k == "Content-Type" || k == "Content-Length" {
				out[k] = v
			}
		}
		return out
	}
	if f, a := fmt.Sprint(perRequest(first.header)), fmt.Sprint(perRequest(again.header)); f != a {
		t.Errorf("replay headers = %s, want the first answer's %s", a, f)
	}
	if got := first.header.Get("Cache-Control"); got != "private" {
		t.Errorf("Cache-Control = %q, want the upstream's private", got)
	}
}

// TestInformationalAnswerKeepsRateFields: a 103 Early Hints before the answer
// neither reaches the client nor erases keygate's RateLimit fields.
func TestInformationalAnswerKeepsRateFields(t *testing.T) {
	g := newGateway(t)
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("103 %v", early), func(t *testing.T) {
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				if early {
					w.Header().Set("Link", "</internal.css>; rel=preload")
					w.WriteHeader(http.StatusEarlyHints)
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"message":"License valid","code":0}`)
			})
			a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(fmt.Sprintf("KEY-TEST-0000-0000-0000-01%v", early))})
			if a.status != 200 || a.header.Get("Ratelimit") == "" || a.header.Get("Ratelimit-Policy") == "" {
				t.Errorf("answer = %d with RateLimit %q, RateLimit-Policy %q; want 200 with both", a.status,
					a.header.Get("Ratelimit"), a.header.Get("Ratelimit-Policy"))
			}
			if a.header.Get("Link") != "" {
				t.Errorf("Link = %q reached the client", a.header.Get("Link"))
			}
		})
	}
}

// TestUpstreamRetryAfterBounded: both forms of an upstream Retry-After are
// bounded to a day, on rewritten and passed 429s alike, and every 429 carries
// one of at least a second: none, a negative or junk value gives 1, a number
// too large for int64 the one-day maximum.
func TestUpstreamRetryAfterBounded(t *testing.T) {
	g := newGateway(t)
	now := time.Now()
	tests := []struct {
		name, value string
		min, max    int
	}{
		{"seconds", "7", 7, 7},
		{"seconds beyond a day", "999999999", 86400, 86400},
		{"date in an hour", now.Add(time.Hour).UTC().Format(http.TimeFormat), 3000, 3601},
		{"date in a year", now.Add(365 * 24 * time.Hour).UTC().Format(http.TimeFormat), 86400, 86400},
		{"date in the past", now.Add(-time.Hour).UTC().Format(http.TimeFormat), 1, 1},
		{"negative", "-5", 1, 1},
		{"junk", "soon", 1, 1},
		{"none", "", 1, 1},
		{"overflowing seconds", "99999999999999999999999", 86400, 86400},
		{"overflowing negative", "-99999999999999999999999", 1, 1},
	}
	for _, tc := range tests {
		for _, body := range []string{`slow down`, `{"message":"Too many requests. Please try again later.","code":3}`} {
			t.Run(tc.name+" "+body[:4], func(t *testing.T) {
				g.up.set(func(w http.ResponseWriter, r *http.Request) {
					if tc.value != "" {
						w.Header().Set("Retry-After", tc.value)
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(429)
					io.WriteString(w, body)
				})
				a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey)})
				if a.status != 429 {
					t.Fatalf("status = %d, want 429", a.status)
				}
				got := a.header.Get("Retry-After")
				n, err := strconv.Atoi(got)
				if err != nil || n < tc.min || n > tc.max {
					t.Errorf("Retry-After = %q, want %d to %d", got, tc.min, tc.max)
				}
			})
		}
	}
}

// TestStatusWriterSendsListedHeadersOnly: whatever wrote an answer, the last
// step before the wire drops headers outside the list, keeps the route's
// own and restores keygate's fields cleared by a 1xx.
func TestStatusWriterSendsListedHeadersOnly(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec, requestID: "rid"}
	w.Header().Set("Ratelimit", `"l";r=1;t=1`)
	w.keep(nil)
	w.extra = []string{"X-Listed"}
	clear(w.Header()) // what ReverseProxy does after a 1xx
	for k, v := range hostileHeaders {
		w.Header().Set(k, v)
	}
	w.Header().Del("Ratelimit")
	w.Header().Set("X-Listed", "1")
	w.setCode(0)
	w.WriteHeader(200)
	got := rec.Result().Header
	for name := range got {
		if !allowedHeader(name, "X-Listed") {
			t.Errorf("header %s = %q was sent", name, got.Get(name))
		}
	}
	if got.Get("Ratelimit") != `"l";r=1;t=1` || got.Get("X-Listed") != "1" || got.Get("X-Request-Id") != "rid" {
		t.Errorf("headers = %v, want keygate's RateLimit, X-Listed and X-Request-Id rid", got)
	}
	if got := w.codeLabel(); got != "0" {
		t.Errorf("codeLabel() = %q, want 0", got)
	}
}

func metricsText(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.Get(newAdminServer(t, g) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// TestSecretParamsNeverEchoed: a license key that looks like plain words
// (nothing the detector's patterns catch) is still kept out of answers,
// because the policy marks licenseKey secret. The policy is the built-in one
// without its allowlists, so only the secret marking stands in the way.
func TestSecretParamsNeverEchoed(t *testing.T) {
	const key = "plain-words-key-for-ada-lovelace"
	p := policy.Default()
	for _, r := range p.Routes {
		r.Response = nil
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"success field", 200, `{"message":"Done","code":0,"owner":"Key ` + key + ` belongs to Ada"}`, `{"message":"Done","code":0}`},
		{"success field, other case, no dashes", 200, `{"owner":"PLAINWORDSKEYFORADALOVELACE"}`, `{"message":"OK","code":0}`},
		{"success message", 200, `{"message":"Key ` + key + `","code":0}`, `{"message":"OK","code":0}`},
		{"error message", 404, `{"message":"No license ` + key + ` here","code":1}`, `{"message":"Not found","code":1}`},
		{"other text passes", 404, `{"message":"No license here","code":1}`, `{"message":"No license here","code":1}`},
	}
	g := newGateway(t, withPolicy(p))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			a := g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(key)})
			if string(a.raw) != tc.want {
				t.Errorf("answer = %s, want %s", a.raw, tc.want)
			}
		})
	}
}

// TestUpstreamTrailersDropped: trailers an upstream sends after its body
// (which the transport fills in once the body is read) never follow an
// answer, over HTTP/1.1 or HTTP/2.
func TestUpstreamTrailersDropped(t *testing.T) {
	g := newGateway(t)
	h2 := httptest.NewUnstartedServer(g.Gateway)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"success", 200, `{"message":"License valid","code":0}`},
		{"contract error", 404, `{"message":"License key not found","code":1}`},
	} {
		for _, srv := range []*httptest.Server{g.srv, h2} {
			t.Run(fmt.Sprintf("%s %v", tc.name, srv == h2), func(t *testing.T) {
				g.up.set(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Trailer", "X-Db-Host")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					io.WriteString(w, tc.body)
					w.(http.Flusher).Flush()
					w.Header().Set("X-Db-Host", "db-primary.prod.internal")
				})
				req, _ := http.NewRequest("POST", srv.URL+"/activate-key", strings.NewReader(activateBody(testKey)))
				req.Header.Set("Authorization", "Bearer "+testTokens["global"])
				req.Header.Set("Content-Type", "application/json")
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || string(raw) != tc.body {
					t.Errorf("answer = %d %s, want %d %s", resp.StatusCode, raw, tc.status, tc.body)
				}
				if len(resp.Trailer) != 0 || resp.Header.Get("Trailer") != "" {
					t.Errorf("trailers = %v (Trailer %q), want none", resp.Trailer, resp.Header.Get("Trailer"))
				}
			})
		}
	}
}

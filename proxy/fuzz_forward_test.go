package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// FuzzForwardHeader feeds arbitrary header lines ("Name: value" per line) to
// the header check and, when it passes, to the rebuild of the forwarded
// header: only allowlisted names may come out, each with one value, and the
// values keygate owns are its own whatever the client sent.
func FuzzForwardHeader(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: application/json\nContent-Type: application/x-www-form-urlencoded",
		"Content_Type: text/plain",
		"Authorization: Bearer a\nauthorization: Bearer b",
		"Connection: X-Request-Id, Authorization\nX-Request-Id: r",
		"X-Original-URL: /admin\nX-Forwarded-Host: evil\nForwarded: for=1.2.3.4",
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nTracestate: a=1",
		"X-Client-Version: 1\nx_client_version: 2",
		"Idempotency-Key: k",
	} {
		f.Add(seed, true)
	}
	p, err := policy.Parse("fuzz", []byte("routes:\n  - name: a\n    method: POST\n    path: /a\n    headers: [X-Client-Version]\n"))
	if err != nil {
		f.Fatal(err)
	}
	route := p.Routes[0]
	g := newGateway(f, withPolicy(p))
	allowed := map[string]bool{
		"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Request-Id": true, "Content-Type": true,
		"Idempotency-Key": true, "Authorization": true, "Traceparent": true, "Tracestate": true,
		"Accept-Encoding": true, "X-Client-Version": true, // Accept-Encoding: keygate's own identity
	}
	f.Fuzz(func(t *testing.T, lines string, body bool) {
		r, _ := http.NewRequest(http.MethodPost, "http://keygate/a", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		if body {
			r.ContentLength = 2
		}
		for line := range strings.SplitSeq(lines, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && name != "" {
				r.Header[http.CanonicalHeaderKey(name)] = append(r.Header[http.CanonicalHeaderKey(name)], strings.TrimSpace(value))
			}
		}
		if e := checkHeaders(r.Header, route, len(r.Header["X-Request-Id"])); e != nil {
			if e.Status != 400 || e.Code != policy.CodeInvalid {
				t.Fatalf("checkHeaders = %d code %d, want 400 code 1", e.Status, e.Code)
			}
			return
		}
		h := g.forwardHeader(r, route, r.ContentLength > 0, clientIP(r, g.trusted).String())
		for name, vs := range h {
			if !allowed[name] {
				t.Fatalf("forwarded header %s = %q is not on the allowlist", name, vs)
			}
			if len(vs) != 1 {
				t.Fatalf("forwarded header %s has %d values, want 1", name, len(vs))
			}
		}
		if got := h.Get("X-Forwarded-For"); got != "192.0.2.1" {
			t.Fatalf("X-Forwarded-For = %q, want the peer 192.0.2.1", got)
		}
		if ct, ok := h["Content-Type"]; (ok || body) && (!body || ct[0] != "application/json") {
			t.Fatalf("Content-Type = %q with body %v, want application/json exactly when there is a body", ct, body)
		}
		if a := r.Header["Authorization"]; len(a) == 1 && h.Get("Authorization") != a[0] {
			t.Fatalf("Authorization = %q, want the one checked %q", h.Get("Authorization"), a[0])
		}
	})
}

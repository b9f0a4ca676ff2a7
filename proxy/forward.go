package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/keygate/keygate/policy"
)

// singleHeaders are the request headers keygate reads or forwards whose
// value is one by definition: a second field line, which one backend joins,
// another reads first and a third reads last, is refused, and so is a
// spelling such as Content_Type that CGI-style servers (WSGI, PHP) read as
// the same header. Tracestate is a list by definition and may repeat.
var singleHeaders = []string{
	"Authorization", "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Host",
	"Idempotency-Key", "X-Request-Id", "Traceparent", "Upgrade",
}

// checkHeaders refuses a request that carries a header keygate reads or
// forwards twice or in two spellings. idLines is how many X-Request-Id
// lines the client sent (keygate has replaced them by then). It runs before
// anything reads a header.
func checkHeaders(h http.Header, route *policy.Route, idLines int) *policy.Error {
	if idLines > 1 {
		return policy.Errorf(400, "Header X-Request-Id must be sent once")
	}
	single := func(name string) *policy.Error {
		if len(h[name]) > 1 {
			return policy.Errorf(400, "Header %s must be sent once", name)
		}
		return nil
	}
	for _, name := range singleHeaders {
		if e := single(name); e != nil {
			return e
		}
	}
	for _, name := range route.ForwardHeaders() {
		if e := single(name); e != nil {
			return e
		}
	}
	for _, l := range route.Limits {
		for _, d := range l.Dims {
			if d.Kind != policy.DimHeader {
				continue
			}
			if e := single(d.Name); e != nil {
				return e
			}
		}
	}
	for name := range h {
		if !strings.Contains(name, "_") {
			continue // Go has put every other spelling of a name into one key
		}
		if canon, ok := headerVariant(name, route); ok {
			return policy.Errorf(400, "Header %s is not allowed (some servers read it as %s)", printableHeader(name), canon)
		}
	}
	return nil
}

// headerVariant reports the header keygate reads or forwards that name, an
// underscore spelling, stands for on servers that map '_' to '-'.
func headerVariant(name string, route *policy.Route) (string, bool) {
	same := func(canon string) bool {
		if len(canon) != len(name) {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == '_' {
				c = '-'
			}
			if lowerByte(c) != lowerByte(canon[i]) {
				return false
			}
		}
		return true
	}
	for _, list := range [][]string{singleHeaders, ownForwarded, route.ForwardHeaders()} {
		for _, canon := range list {
			if same(canon) {
				return canon, true
			}
		}
	}
	for _, l := range route.Limits {
		for _, d := range l.Dims {
			if d.Kind == policy.DimHeader && same(d.Name) {
				return d.Name, true
			}
		}
	}
	return "", false
}

// ownForwarded are further headers keygate sets on the forwarded request.
var ownForwarded = []string{"X-Forwarded-For", "X-Forwarded-Proto", "Tracestate"}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func printableHeader(name string) string {
	if len(name) > 64 {
		return "(long name)"
	}
	return name
}

// target is where one route's requests go: the upstream's scheme and host
// and the route's canonical path below the upstream's own, never the
// client's spelling of it.
type target struct {
	scheme, host, path string
	uri                string // path, escaped as the request target
}

func newTarget(upstream *url.URL, route *policy.Route) target {
	t := target{scheme: upstream.Scheme, host: upstream.Host, path: strings.TrimSuffix(upstream.Path, "/") + route.Path}
	t.uri = (&url.URL{Path: t.path}).EscapedPath()
	return t
}

// outbound builds the forwarded request from what keygate checked, never by
// copying the client's request and deleting what is known to be dangerous:
// the route's method and canonical path, the query the policy allows, the
// exact body bytes read, and a header set made here from an allowlist.
// Names listed in the client's Connection header cannot remove any of it,
// since nothing of the client's header map is kept; nor can a trailer, a
// transfer coding or a Close of the client's reach the backend.
func (g *Gateway) outbound(ctx context.Context, in *http.Request, route *policy.Route, t target, body []byte, ip string) *http.Request {
	out := &http.Request{
		Method:        route.Method,
		URL:           &url.URL{Scheme: t.scheme, Host: t.host, Path: t.path, RawQuery: route.ForwardQuery(in.URL.RawQuery)},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        g.forwardHeader(in, route, len(body) > 0, ip),
		Host:          t.host,
		ContentLength: int64(len(body)),
		Body:          http.NoBody,
	}
	out.Header["User-Agent"] = []string{""} // net/http's transport would add its own otherwise
	if len(body) > 0 {
		b := &memBody{}
		b.Reset(body)
		out.Body = b
	}
	return out.WithContext(ctx)
}

// forwardHeader is the header of the forwarded request: keygate's own
// X-Forwarded-For and X-Forwarded-Proto (no X-Forwarded-Host: the client's
// Host is not checked, and a backend building URLs from it could be steered),
// X-Request-Id, one canonical Content-Type for a body, the client's
// Idempotency-Key, the upstream credential (or the client's one checked
// Authorization when none is configured), W3C trace context when well
// formed, Accept-Encoding: identity (keygate's own: it reads the answer
// whole, and Keymint answers are a few hundred bytes, so gzip saves nothing;
// a backend that compresses anyway is decoded if it used gzip), and the
// headers the route's policy names. Each has one value: checkHeaders refused
// duplicates before. ip is the client's address (clientIP, found once by
// ServeHTTP).
func (g *Gateway) forwardHeader(in *http.Request, route *policy.Route, hasBody bool, ip string) http.Header {
	h := make(http.Header, 8)
	h["X-Forwarded-For"] = []string{ip}
	if in.TLS != nil {
		h["X-Forwarded-Proto"] = valueHTTPS
	} else {
		h["X-Forwarded-Proto"] = valueHTTP
	}
	copyOne(h, in.Header, "X-Request-Id")
	if hasBody { // the body keygate read, whether the client framed it by length or chunked
		h["Content-Type"] = valueJSON
	}
	copyOne(h, in.Header, "Idempotency-Key")
	if route.NeedsToken() { // only the credential keygate checked; auth: none routes checked none
		copyOne(h, in.Header, "Authorization")
	}
	if g.upAuth != nil {
		g.upAuth.Apply(h)
	}
	if tp := in.Header["Traceparent"]; len(tp) == 1 && validTraceparent(tp[0]) {
		h["Traceparent"] = []string{tp[0]}
		if ts := strings.Join(in.Header["Tracestate"], ","); ts != "" && validTracestate(ts) {
			h["Tracestate"] = []string{ts}
		}
	}
	h["Accept-Encoding"] = valueIdentity
	for _, name := range route.ForwardHeaders() {
		copyOne(h, in.Header, name)
	}
	return h
}

// Constant values of the forwarded header, shared by every request: the
// header is only read once built (a credential's Apply sets its own field,
// it never edits another's values).
var (
	valueHTTP     = []string{"http"}
	valueHTTPS    = []string{"https"}
	valueJSON     = []string{"application/json"}
	valueIdentity = []string{"identity"}
)

// copyOne copies header name from src to dst when it has exactly one value.
func copyOne(dst, src http.Header, name string) {
	if v := src[name]; len(v) == 1 {
		dst[name] = []string{v[0]}
	}
}

// validTraceparent reports a W3C traceparent of version 00:
// 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, lower case.
func validTraceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] != "00" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s[3:35] != strings.Repeat("0", 32) && s[36:52] != strings.Repeat("0", 16)
}

// validTracestate reports a tracestate of at most 512 printable ASCII bytes
// (the W3C limit), the only thing keygate needs to know to pass it on.
func validTracestate(s string) bool {
	if len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

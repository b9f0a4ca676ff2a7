package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/policy"
)

// upstreamConns is the size of the upstream connection pool: enough for
// 25,000 requests a second to a backend answering in 10 ms.
const upstreamConns = 256

// Caps on what keygate reads of an upstream answer before deciding on it.
const (
	errorBodyCap     = 16 << 10  // error answers: enough for any contract body
	defaultAnswerCap = 256 << 10 // successes (Options.MaxAnswerBytes): Keymint's are a few hundred bytes
)

// NewTransport returns the upstream transport with the default idle
// handling: NewUpstreamTransport with timeout and caPEM.
func NewTransport(timeout time.Duration, caPEM []byte) *UpstreamTransport {
	return NewUpstreamTransport(TransportOptions{Timeout: timeout, CAPEM: caPEM})
}

// ParseCAFile checks that data holds at least one PEM certificate.
func ParseCAFile(data []byte) bool {
	return x509.NewCertPool().AppendCertsFromPEM(data)
}

// upstreamFailed answers a request whose upstream could not be reached or
// did not answer in time: one contract 500 for every transport failure.
func (g *Gateway) upstreamFailed(w *statusWriter, route *policy.Route, err error) {
	g.count(route.Name, "transport")
	g.log.Warn("upstream failed", "request_id", w.requestID, "route", route.Name, "err", err)
	writeError(w, policy.Errorf(500, policy.MsgServerError).Wrap(err))
}

// normalize rewrites an upstream answer into the contract: only listed
// headers stay (answerHeaders), every body is read whole within its cap and
// the request's deadline, decoded, and checked. secrets are what the answer
// must not repeat (the request's token and secret parameters); rid is the
// request id, for logs. It returns the contract code and the body of the
// answer to send, whose status and headers resp now holds; resp.Body is
// closed.
func (g *Gateway) normalize(route *policy.Route, secrets []string, rid string, resp *http.Response) (code int, body []byte) {
	enc := resp.Header.Get("Content-Encoding")
	upRetry := resp.Header.Get("Retry-After")
	resp.Header = g.answerHeaders(route, secrets, resp.Header)
	resp.Trailer = nil
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return g.normalizeSuccess(route, secrets, rid, resp, enc)
	}
	raw, truncated, err := readCapped(resp.Body, errorBodyCap, resp.ContentLength)
	resp.Body.Close()
	truncated = truncated || err != nil
	body = raw
	if !identity(enc) {
		body, truncated = decoded(enc, raw, truncated, errorBodyCap)
	}
	pass, e, kind := route.NormalizeFor(resp.StatusCode, body, truncated, isJSON(resp.Header), secrets)
	if pass {
		resp.Header.Set("Content-Type", "application/json")
		setBody(resp, body) // decoded: keygate sends identity only
		// every 429 says when to come back: 1s at least
		if resp.StatusCode == http.StatusTooManyRequests {
			resp.Header.Set("Retry-After", strconv.FormatInt(policy.RetryAfterSeconds(retryAfter(upRetry, g.now())), 10))
		}
		return policy.CodeOfContract(body), body
	}
	g.count(route.Name, kind)
	if kind == policy.RewriteLeak { // the message itself stays out of logs too: it may hold a secret
		g.log.Warn("upstream message withheld", "request_id", rid, "route", route.Name,
			"status", resp.StatusCode)
	}
	if e.Status == http.StatusTooManyRequests {
		e.RetryAfter = max(retryAfter(upRetry, g.now()), time.Second)
	}
	return replaceWith(resp, e)
}

// normalizeSuccess sends every 2xx as 200 with a JSON object body that
// VetSuccess checked. The body is read whole, up to the success cap and
// within the request's deadline: one that is larger, endless, cut off, in an
// encoding keygate does not decode, or not a JSON object (an HTML page served
// with 200) becomes a contract 500, never a stream. An empty success becomes
// {"message":"OK","code":0}. It returns the contract code of the answer.
func (g *Gateway) normalizeSuccess(route *policy.Route, secrets []string, rid string, resp *http.Response, enc string) (code int, body []byte) {
	if resp.StatusCode != http.StatusOK {
		g.count(route.Name, "status")
		resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
	}
	fail := func(kind, why string, err error) (int, []byte) {
		g.count(route.Name, kind)
		g.log.Warn("upstream success refused", "request_id", rid, "route", route.Name,
			"reason", why, "err", err)
		return replaceWith(resp, policy.Errorf(500, policy.MsgServerError))
	}
	if resp.ContentLength > g.maxResp {
		resp.Body.Close()
		return fail("oversize", "body larger than the cap", nil)
	}
	raw, truncated, err := readCapped(resp.Body, g.maxResp, resp.ContentLength)
	resp.Body.Close()
	switch {
	case err != nil:
		return fail("transport", "body could not be read", err)
	case truncated:
		return fail("oversize", "body larger than the cap", nil)
	}
	body = raw
	if !identity(enc) {
		if body, truncated = decoded(enc, raw, false, g.maxResp); truncated {
			return fail("success", "body encoding not decodable within the cap", nil)
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return replaceWith(resp, &policy.Error{Status: 200, Code: policy.CodeOK, Message: policy.MsgOK})
	}
	out, removed, ok := route.VetSuccess(body, secrets)
	if !ok {
		return fail("success", "not a contract JSON object", nil)
	}
	for _, r := range removed {
		g.count(route.Name, "field")
		g.log.Warn("upstream success field removed", "request_id", rid, "route", route.Name,
			"field", r.Path, "reason", r.Reason)
	}
	resp.Header.Set("Content-Type", "application/json")
	setBody(resp, out)
	return policy.CodeOK, out
}

func (g *Gateway) count(route, kind string) {
	if g.metrics != nil {
		g.metrics.rewrites.WithLabelValues(route, kind).Inc()
	}
}

// replaceWith makes resp carry the contract answer e and nothing of the
// upstream's headers, which may name hosts, set cookies or redirect. It
// returns e's contract code and body.
func replaceWith(resp *http.Response, e *policy.Error) (code int, body []byte) {
	body = e.Body()
	resp.StatusCode = e.Status
	resp.Status = strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	resp.Header = http.Header{
		"Content-Type":  {"application/json"},
		"Cache-Control": {"no-store"},
	}
	if e.RetryAfter > 0 {
		resp.Header.Set("Retry-After", strconv.FormatInt(policy.RetryAfterSeconds(e.RetryAfter), 10))
	}
	resp.Trailer = nil
	setBody(resp, body)
	return e.Code, body
}

// setBody makes resp describe the body b keygate will send in its place.
func setBody(resp *http.Response, b []byte) {
	resp.ContentLength = int64(len(b))
	resp.TransferEncoding = nil
	resp.Trailer = nil // filled in by the transport once the body was read: keygate sends none
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
}

// memBody is an answer body keygate holds in memory.
type memBody struct{ bytes.Reader }

func (*memBody) Close() error { return nil }

// readCapped reads at most limit bytes of an answer of size bytes (-1:
// unknown); truncated reports there was more (which stays unread in r).
func readCapped(r io.Reader, limit, size int64) (b []byte, truncated bool, err error) {
	b, err = readAll(r, limit, size)
	if err != nil || int64(len(b)) < limit {
		return b, false, err
	}
	var one [1]byte
	n, _ := io.ReadFull(r, one[:])
	if n == 0 {
		return b, false, nil
	}
	return append(b, one[0]), true, nil
}

// identity reports whether a Content-Encoding leaves the body as it is.
func identity(enc string) bool { return enc == "" || strings.EqualFold(enc, "identity") }

// decoded undoes a gzip Content-Encoding, reading at most limit decoded
// bytes. Other encodings are not read (keygate never asks for them):
// truncated is true and the answer falls back to a default.
func decoded(enc string, raw []byte, truncated bool, limit int64) ([]byte, bool) {
	if truncated || !strings.EqualFold(enc, "gzip") {
		return nil, true
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, true
	}
	zr.Multistream(false)
	b, trunc, err := readCapped(zr, limit, -1)
	if err != nil {
		return nil, true
	}
	return b, trunc
}

func isJSON(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "application/json" { // the common case, without ParseMediaType's allocations
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
}

// maxRetryAfter is the longest upstream Retry-After keygate repeats.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads an upstream Retry-After, delay-seconds or an HTTP date
// (relative to now), bounded to maxRetryAfter in either form: a number too
// large for int64 counts as the maximum. It returns 0 when there is none or
// it makes no sense (a negative number); callers sending a 429 raise that to
// one second.
func retryAfter(s string, now time.Time) time.Duration {
	if s == "" || len(s) > 64 {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if n <= 0 { // negative, or an overflow below the smallest int64
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return min(max(t.Sub(now), time.Second), maxRetryAfter)
	}
	return 0
}

package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/policy"
)

// ServeHTTP answers one API request. It runs the checks in order (route,
// body, token, parameters, token scope, limits), forwards what passes, and
// guarantees a contract answer whatever happens on the way.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, requestID: requestID(r)}
	idLines := len(r.Header["X-Request-Id"])
	r.Header.Set("X-Request-Id", sw.requestID)
	ip := clientIP(r, g.trusted)
	a := &attempt{ip: ip.String(), limitIP: limitIP(ip, g.v6Bits), header: r.Header}
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("panic serving request", "request_id", sw.requestID, "panic", fmt.Sprint(p))
			if sw.status == 0 {
				writeError(sw, policy.Errorf(500, policy.MsgServerError))
			}
		}
		g.finish(sw, r, a, start)
	}()
	a.route = g.policy.Match(r.Method, r.URL.Path)
	if a.route == nil {
		writeError(sw, policy.Errorf(404, policy.MsgNotFound))
		return
	}
	e := checkHeaders(r.Header, a.route, idLines)
	if e == nil {
		e = g.serve(sw, r, a)
	}
	if e != nil {
		if e.Err != nil {
			g.log.Warn("request failed", "request_id", sw.requestID, "route", a.route.Name, "status", e.Status, "err", e.Err)
		}
		writeError(sw, e)
	}
}

// serve runs the checks and forwards the request; it returns the contract
// error to answer with instead, if any.
func (g *Gateway) serve(w *statusWriter, r *http.Request, a *attempt) *policy.Error {
	route := a.route
	if r.Header.Get("Upgrade") != "" {
		return policy.Errorf(400, "Protocol upgrades are not supported")
	}
	body, e := g.readBody(r, route)
	if e != nil {
		return e
	}
	ctx := r.Context()
	var tok *policy.Token
	if route.NeedsToken() {
		a.token = bearer(r)
		if e := g.peekBeforeRemote(ctx, a, r, body, w.Header()); e != nil {
			return e
		}
		if tok, e = g.checkToken(ctx, a); e != nil {
			return g.failedToken(ctx, a, body, r, w.Header(), e)
		}
		a.tokenID = tok.Identity()
	}
	if a.values, e = g.parse(r, route, body); e == nil {
		e = a.values.Validate()
	}
	if e != nil {
		return g.failed(ctx, a, body, r, w.Header(), e)
	}
	if tok != nil {
		if ok, reason := tok.Allows(route, a.values.Product()); !ok {
			g.rejectToken(a, reason)
			return g.failed(ctx, a, body, r, w.Header(), policy.Errorf(401, policy.MsgInvalidToken))
		}
	}
	claim, e, done := g.beginIdempotent(ctx, w, r, a, body)
	if done {
		return e
	}
	if claim != nil {
		w.capture, w.captureMax = make([]byte, 0, 512), g.idem.MaxBody
		defer g.finishIdempotent(ctx, w, a, claim)
	}
	if e := g.checkLimits(ctx, a, w.Header()); e != nil {
		return e
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	g.forward(ctx, w, r, a, body)
	g.settle(context.WithoutCancel(ctx), w, a)
	return nil
}

// failed charges the route's failure-counting limits for keygate's own 400
// or 401, and turns the answer into a 429 once they have run out.
func (g *Gateway) failed(ctx context.Context, a *attempt, body []byte, r *http.Request, wh http.Header, e *policy.Error) *policy.Error {
	if a.values == nil { // keys may name parameters: read them if the body allows
		a.values, _ = g.parse(r, a.route, body)
	}
	if deny := g.chargeFailure(ctx, a, e.Status, wh); deny != nil {
		return deny
	}
	return e
}

func (g *Gateway) parse(r *http.Request, route *policy.Route, body []byte) (*policy.Values, *policy.Error) {
	if route.ParamsInQuery() {
		return route.ParseQuery(r.URL.RawQuery)
	}
	if name, bad := route.QueryNames(r.URL.RawQuery); bad {
		if name == "" {
			return nil, policy.Errorf(400, "Invalid query string")
		}
		return nil, policy.Errorf(400, "Parameter %s belongs in the JSON body, not the query string", name)
	}
	return route.ParseBody(body)
}

// readBody reads the request body within the cap. Routes that read their
// parameters from the query string take no body.
func (g *Gateway) readBody(r *http.Request, route *policy.Route) ([]byte, *policy.Error) {
	hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	if route.ParamsInQuery() {
		if hasBody {
			return nil, policy.Errorf(400, "Request body not allowed on this route")
		}
		return nil, nil
	}
	if !hasBody {
		return nil, nil
	}
	// "application/json" itself, by far the most common, parses to itself
	// without parameters: no need to allocate what ParseMediaType returns.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, policy.Errorf(400, "Content-Type must be application/json")
		}
		// keygate reads UTF-8; a backend honouring another charset would read other values
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, policy.Errorf(400, "Content-Type charset must be utf-8")
		}
	}
	if r.ContentLength > g.maxBody {
		return nil, g.tooLarge()
	}
	body, err := readAll(r.Body, g.maxBody+1, r.ContentLength)
	if err != nil {
		return nil, policy.Errorf(400, "Could not read request body").Wrap(err)
	}
	if int64(len(body)) > g.maxBody {
		return nil, g.tooLarge()
	}
	return body, nil
}

// presizeMax bounds the buffer readAll allocates before reading.
const presizeMax = 4 << 10

func (g *Gateway) tooLarge() *policy.Error {
	return policy.Errorf(400, "Request body too large (limit %d bytes)", g.maxBody)
}

// readAll is io.ReadAll(io.LimitReader(r, limit)) with the buffer sized for
// size bytes when the size is known and small: one allocation of the right
// size instead of a 512-byte one grown as the body comes in. Larger sizes
// are not trusted ahead of the bytes: a client announcing a large body and
// sending nothing must not make keygate allocate it.
func readAll(r io.Reader, limit, size int64) ([]byte, error) {
	n := int64(512)
	if size >= 0 && size < min(limit, presizeMax) {
		n = size + 1 // room for the read that reports the end
	}
	b := make([]byte, 0, n)
	lr := io.LimitedReader{R: r, N: limit}
	for {
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append pick the growth
		}
	}
}

// checkToken decides the request's token: a missing, unknown, expired or
// otherwise invalid one is a 401; one that could not be checked (a token
// store or an identity provider is down) is a 500, which tells the client
// to retry rather than to drop its token, and charges no limit that counts
// 401s.
func (g *Gateway) checkToken(ctx context.Context, a *attempt) (*policy.Token, *policy.Error) {
	if a.token == "" {
		g.rejectToken(a, policy.ReasonMissing)
		return nil, policy.Errorf(401, policy.MsgInvalidToken)
	}
	tok, reason, err := g.auth.Authenticate(ctx, a.token)
	if tok != nil && err == nil {
		return tok, nil
	}
	if reason == "" {
		reason = policy.ReasonUnknown
	}
	g.rejectToken(a, reason)
	if err != nil {
		return nil, policy.Errorf(500, policy.MsgServerError).Wrap(err)
	}
	return nil, policy.Errorf(401, policy.MsgInvalidToken)
}

func (g *Gateway) rejectToken(a *attempt, reason string) {
	if g.metrics != nil {
		g.metrics.rejections.WithLabelValues(a.route.Name, reason).Inc()
	}
	if a.token != "" {
		g.log.Info("token rejected", "route", a.route.Name, "reason", reason, "token_hash", policy.HashToken(a.token))
	} else {
		g.log.Info("token rejected", "route", a.route.Name, "reason", reason)
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// requestID returns the client's X-Request-Id when it is short and plain,
// else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && plainID(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// finish records the answer in metrics and the access log.
func (g *Gateway) finish(w *statusWriter, r *http.Request, a *attempt, start time.Time) {
	route := "unmatched"
	if a.route != nil {
		route = a.route.Name
	}
	status := w.status
	if g.metrics != nil && status != 0 {
		g.metrics.requests.WithLabelValues(route, statusLabel(status), w.codeLabel()).Inc()
	}
	if !g.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	now := time.Now()
	durationMS := float64(now.Sub(start).Microseconds()) / 1000
	if g.access != nil {
		g.access.request(now, w, a, route, durationMS)
		return
	}
	attrs := make([]slog.Attr, 0, 8) // room for the hashes: no growth
	attrs = append(attrs,
		slog.String("request_id", w.requestID), slog.String("route", route), slog.Int("status", status),
		slog.String("code", w.codeLabel()), slog.Float64("duration_ms", durationMS),
		slog.String("ip", a.ip),
	)
	for _, p := range a.route.SecretParams() { // the policy says which values are secret: log their hashes only
		if v, ok := a.values.Get(p.Name); ok {
			attrs = append(attrs, slog.String(p.LogKey(), policy.HashToken(v)))
		}
	}
	if a.token != "" {
		attrs = append(attrs, slog.String("token_hash", policy.HashToken(a.token)))
	}
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

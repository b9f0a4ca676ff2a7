package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/policy"
)

// IdempotencyStore keeps the answers of requests sent with an
// Idempotency-Key, shared by every replica that uses the same store.
type IdempotencyStore interface {
	// Begin claims key with rec (in flight, carrying its owner and
	// fingerprint) for lease. When the key is taken already it returns the
	// record there and started false.
	Begin(ctx context.Context, key string, rec *IdempotencyRecord, lease time.Duration) (existing *IdempotencyRecord, started bool, err error)
	// Complete replaces the claim of rec.Owner with the final answer, kept
	// for ttl. A claim that is no longer rec.Owner's is left alone.
	Complete(ctx context.Context, key string, rec *IdempotencyRecord, ttl time.Duration) error
	// Abort drops the claim of owner so that a retry can go through.
	Abort(ctx context.Context, key, owner string) error
}

// IdempotencyRecord is what a store holds under a key: a claim while the
// first request is in flight, then its answer.
type IdempotencyRecord struct {
	Owner  string `json:"o,omitempty"` // who claimed the key; empty once done
	FP     string `json:"f"`           // SHA-256 of the request (route, query, body)
	Done   bool   `json:"d,omitempty"`
	Status int    `json:"s,omitempty"`
	Code   string `json:"c,omitempty"` // contract code, for metrics
	Type   string `json:"t,omitempty"` // Content-Type
	Body   []byte `json:"b,omitempty"`
	// Header holds the answer's other replayable headers (see replayable).
	Header http.Header `json:"h,omitempty"`
}

// IdempotencyOptions configure Idempotency-Key handling.
type IdempotencyOptions struct {
	Store      IdempotencyStore
	TTL        time.Duration // how long answers are kept; 0: 24h
	Refuse     bool          // when the store fails: true answers 500, false forwards unprotected
	MaxBody    int           // largest answer stored; 0: 64 KiB
	WaitPeriod time.Duration // poll interval while a twin is in flight; 0: 25ms
}

// Messages of Idempotency-Key answers.
const (
	msgIdemInvalid  = "Invalid Idempotency-Key: it must be 1 to 255 printable characters"
	msgIdemMismatch = "Idempotency-Key reused with a different request"
	msgIdemBusy     = "Request with this Idempotency-Key is in progress"
	msgIdemFull     = "Too many stored Idempotency-Keys for this client. Please try again later."
)

// ReplayHeader marks an answer replayed from the idempotency store.
const ReplayHeader = "Idempotent-Replayed"

// idemClaim is a key this request claimed; its answer is stored at the end.
type idemClaim struct {
	key   string
	owner string
	fp    string
}

// beginIdempotent handles the Idempotency-Key of a request that passed every
// check. It returns a claim when the request should go on to the backend, or
// done when the answer has been written (a replay, or a contract error).
func (g *Gateway) beginIdempotent(ctx context.Context, w *statusWriter, r *http.Request, a *attempt, body []byte) (claim *idemClaim, e *policy.Error, done bool) {
	o := g.idem
	if o == nil || !a.route.Idempotent {
		return nil, nil, false
	}
	values := r.Header.Values("Idempotency-Key")
	if len(values) == 0 {
		return nil, nil, false
	}
	if len(values) > 1 || !validIdemKey(values[0]) {
		return nil, policy.Errorf(400, msgIdemInvalid), true
	}
	h := sha256.New()
	for _, part := range []string{policy.HashToken(a.tokenKey()), a.route.Name, values[0]} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	key := "idem:{" + idemScope(a) + "}" + hex.EncodeToString(h.Sum(nil)[:16])
	fpSum := sha256.Sum256(append([]byte(a.route.Name+"\x00"+r.URL.RawQuery+"\x00"), body...))
	fp := hex.EncodeToString(fpSum[:])
	var ownerID [12]byte
	_, _ = rand.Read(ownerID[:])
	c := &idemClaim{key: key, owner: hex.EncodeToString(ownerID[:]), fp: fp}
	lease := g.timeout + 5*time.Second

	deadline := time.Now().Add(g.timeout + time.Second)
	for {
		rec, started, err := o.Store.Begin(ctx, key, &IdempotencyRecord{Owner: c.owner, FP: fp}, lease)
		var full *IdempotencyFullError
		switch {
		case errors.As(err, &full):
			g.countIdem(a.route.Name, "full")
			return nil, &policy.Error{Status: 429, Code: policy.CodeRateLimit, Message: msgIdemFull, RetryAfter: max(full.RetryAfter, time.Second)}, true
		case err != nil:
			g.countIdem(a.route.Name, "unavailable")
			g.log.Warn("idempotency store failed", "route", a.route.Name, "err", err, "refuse", o.Refuse)
			if o.Refuse {
				return nil, policy.Errorf(500, policy.MsgServerError).Wrap(err), true
			}
			return nil, nil, false // forward without protection
		case started:
			return c, nil, false
		case rec.FP != fp:
			g.countIdem(a.route.Name, "mismatch")
			return nil, policy.Errorf(400, msgIdemMismatch), true
		case rec.Done:
			g.countIdem(a.route.Name, "replayed")
			replay(w, rec, a.route)
			return nil, nil, true
		}
		// the first request is still in flight: wait for its answer
		if time.Now().After(deadline) {
			g.countIdem(a.route.Name, "conflict")
			return nil, policy.Errorf(409, msgIdemBusy), true
		}
		select {
		case <-ctx.Done():
			return nil, policy.Errorf(409, msgIdemBusy).Wrap(ctx.Err()), true
		case <-time.After(o.WaitPeriod):
		}
	}
}

// finishIdempotent stores the answer of a claimed request, or drops the
// claim when the answer must not be replayed. Stored: 200 and the backend's
// decisions 403, 404 and 409, which a retry would get again. Not stored: 500
// and transport failures (a retry may succeed), 400/401/429 (keygate's own or
// passing), and answers too large to keep.
func (g *Gateway) finishIdempotent(ctx context.Context, w *statusWriter, a *attempt, c *idemClaim) {
	ctx = context.WithoutCancel(ctx)
	storable := w.status == 200 || w.status == 403 || w.status == 404 || w.status == 409
	if !storable || w.capture == nil || w.captureOver {
		if err := g.idem.Store.Abort(ctx, c.key, c.owner); err != nil {
			g.log.Warn("idempotency abort failed", "route", a.route.Name, "err", err)
		}
		return
	}
	rec := &IdempotencyRecord{Owner: c.owner, FP: c.fp, Done: true, Status: w.status, Code: w.codeLabel(),
		Type: w.Header().Get("Content-Type"), Body: w.capture, Header: replayable(w.Header())}
	if err := g.idem.Store.Complete(ctx, c.key, rec, g.idem.TTL); err != nil {
		g.log.Warn("idempotency store failed; a retry will reach the backend", "route", a.route.Name, "err", err)
		g.countIdem(a.route.Name, "unavailable")
		return
	}
	g.countIdem(a.route.Name, "stored")
}

// replay writes a stored answer byte for byte, with the headers it had.
func replay(w *statusWriter, rec *IdempotencyRecord, route *policy.Route) {
	w.extra = route.AnswerHeaders()
	h := w.Header()
	for k, v := range rec.Header {
		if replayableHeader(k) {
			h[k] = v
		}
	}
	if route.NeedsToken() { // a record stored before keygate kept these answers private
		tokenRouteCache(h)
	}
	if rec.Type != "" {
		h.Set("Content-Type", rec.Type)
	}
	h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	h.Set(ReplayHeader, "true")
	if code, err := strconv.Atoi(rec.Code); err == nil {
		w.setCode(code)
	}
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

// replayableHeader reports whether a header of a first answer is stored for
// its replays: all that answers carry but Content-Type and Content-Length
// (stored apart) and what belongs to each request (its id, its limits).
func replayableHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "X-Request-Id", "Retry-After", ReplayHeader:
		return false
	}
	return !slices.Contains(rateHeaderNames, name)
}

// replayable returns the replayable headers of an answer; nil when none.
func replayable(h http.Header) http.Header {
	var out http.Header
	for k, v := range h {
		if replayableHeader(k) {
			if out == nil {
				out = http.Header{}
			}
			out[k] = v
		}
	}
	return out
}

func validIdemKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (g *Gateway) countIdem(route, result string) {
	if g.metrics != nil {
		g.metrics.idempotency.WithLabelValues(route, result).Inc()
	}
}

// idemScope names whose records a key counts against
// (IdempotencyBounds.MaxPerScope): the token's, or on routes without
// tokens the client IP's (IPv6 masked to its prefix, like per-IP limits),
// hashed. A token counts by its canonical identity, so that two spellings of
// one token share one bound.
func idemScope(a *attempt) string {
	if a.token != "" {
		return "t" + policy.HashToken(a.tokenKey())
	}
	return "i" + policy.HashToken(a.limitIP)
}

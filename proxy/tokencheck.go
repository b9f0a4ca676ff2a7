package proxy

import (
	"context"
	"net/http"
	"slices"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// remoteAuthenticator is implemented by Authenticators whose check may cost
// a call off the machine (policy/auth.Chain with a token store, a JWKS or an
// introspection endpoint).
type remoteAuthenticator interface {
	Remote() bool
}

// tokenKey is what limits keyed by token and Idempotency-Key answers are
// scoped by: the accepted token's canonical identity, so that two spellings
// of one token (two signatures of one JWT) share one bucket; the raw token
// before it is accepted.
func (a *attempt) tokenKey() string {
	if a.tokenID != "" {
		return a.tokenID
	}
	return a.token
}

// peekBeforeRemote looks at the route's failure-counting limits that are not
// keyed by token before a token check that may cost a remote call, and
// denies at once when one has run out: a client over its budget costs no
// introspection call or token-store lookup. Rules keyed by token are left to
// the usual checks, since the token's identity is not known yet. Limiter
// errors are left to the later checks too.
func (g *Gateway) peekBeforeRemote(ctx context.Context, a *attempt, r *http.Request, body []byte, wh http.Header) *policy.Error {
	rc, ok := g.auth.(remoteAuthenticator)
	if !ok || a.token == "" || !rc.Remote() {
		return nil
	}
	sc := getScratch()
	defer putScratch(sc)
	for _, l := range a.route.Limits {
		if len(l.On) > 0 && !slices.ContainsFunc(l.Dims, func(d policy.Dim) bool { return d.Kind == policy.DimToken }) {
			sc.limits = append(sc.limits, l)
		}
	}
	if len(sc.limits) == 0 {
		return nil
	}
	if a.values == nil { // keys may name parameters: read them if the body allows
		a.values, _ = g.parse(r, a.route, body)
	}
	for _, l := range sc.limits {
		sc.reqs = append(sc.reqs, ratelimit.Request{Key: a.bucketKey(l), Limit: toLimit(l), Peek: true, Shadow: l.Shadow})
	}
	sc.res = slices.Grow(sc.res[:0], len(sc.reqs))[:len(sc.reqs)]
	if allowed, err := g.limiter.Allow(ctx, sc.reqs, sc.res); err != nil || allowed {
		return nil
	}
	return g.decide(ctx, a, sc.limits, sc, wh) // counts the denial and sets the headers
}

// failedToken answers a token that was refused (401, charged as failed
// does) or that no source could check (500). Unless the route has rules
// that count 500s, the 500 is charged to its rules that count refused
// tokens (401), so that a client sending
// tokens a source cannot check spends its own budget and cannot keep the
// source busy for everyone.
func (g *Gateway) failedToken(ctx context.Context, a *attempt, body []byte, r *http.Request, wh http.Header, e *policy.Error) *policy.Error {
	if e.Status != http.StatusInternalServerError || charges(a.route, http.StatusInternalServerError) {
		return g.failed(ctx, a, body, r, wh, e)
	}
	if a.values == nil {
		a.values, _ = g.parse(r, a.route, body)
	}
	if deny := g.chargeFailure(ctx, a, http.StatusUnauthorized, wh); deny != nil {
		return deny
	}
	return e
}

package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// Limiter decides a request's rate-limit rules together: allowed only when
// every rule that is not Shadow admits it, and nothing consumed otherwise.
// It writes one result per request into res, and keeps neither slice once it
// returns.
type Limiter interface {
	Allow(ctx context.Context, reqs []ratelimit.Request, res []ratelimit.Result) (bool, error)
}

// attempt is what keygate knows of one request when it builds limit keys.
type attempt struct {
	route   *policy.Route
	ip      string // the client address, in full: for the access log
	limitIP string // the address limits count by (see limitIP): IPv6 masked to its prefix
	token   string
	tokenID string // the accepted token's canonical identity (policy.Token.Identity); "" before
	values  *policy.Values
	header  http.Header

	// reserved are the failure-budget rules checkLimits consumed ahead of
	// the answer; settle refunds those the answer does not spend.
	reserved []reservation
}

// reservation is one failure-budget rule consumed before forwarding.
type reservation struct {
	req  ratelimit.Request
	rule *policy.Limit
}

// bucketKey names a limit's bucket for this request: the limit's name and a
// hash of its dimensions, so that no token or license key is ever stored and
// limits of one name share buckets across routes.
func (a *attempt) bucketKey(l *policy.Limit) string {
	h := sha256.New()
	var sep = []byte{0}
	for _, d := range l.Dims {
		var v string
		switch d.Kind {
		case policy.DimIP:
			v = a.limitIP // every address of one IPv6 prefix shares a bucket
		case policy.DimToken:
			v = a.tokenKey()
		case policy.DimProduct: // normal forms: every spelling of one key shares its bucket
			v = a.values.BucketProduct()
		case policy.DimRoute:
			v = a.route.Name
		case policy.DimHeader:
			v = a.header.Get(d.Name)
		case policy.DimParam:
			v, _ = a.values.BucketValue(d.Name)
		}
		h.Write([]byte(v))
		h.Write(sep)
	}
	var sum [sha256.Size]byte
	var buf [64 + 1 + 32]byte // a limit name has at most 64 bytes
	key := append(append(buf[:0], l.Name...), ':')
	return string(hex.AppendEncode(key, h.Sum(sum[:0])[:16]))
}

// charges reports whether an answer with status spends any of route's
// failure-counting limits.
func charges(route *policy.Route, status int) bool {
	for _, l := range route.Limits {
		if slices.Contains(l.On, status) {
			return true
		}
	}
	return false
}

func toLimit(l *policy.Limit) ratelimit.Limit {
	return ratelimit.Limit{Rate: l.Rate, Period: time.Duration(l.Per), Burst: l.Burst}
}

// checkLimits applies the route's limits before the request goes upstream,
// in one limiter call. Rules without `on` are consumed. Rules with `on` are
// reserved, consumed like the others, when the limiter can refund (see
// settle): concurrent requests then cannot all pass a failure budget with
// one unit left. With a limiter that cannot refund they are only looked at,
// and charged after the answer.
func (g *Gateway) checkLimits(ctx context.Context, a *attempt, h http.Header) *policy.Error {
	limits := a.route.Limits
	if len(limits) == 0 {
		return nil
	}
	sc := getScratch()
	defer putScratch(sc)
	reserve := g.refund != nil
	for _, l := range limits {
		sc.reqs = append(sc.reqs, ratelimit.Request{Key: a.bucketKey(l), Limit: toLimit(l), Peek: len(l.On) > 0 && !reserve, Shadow: l.Shadow})
	}
	e := g.decide(ctx, a, limits, sc, h)
	if e != nil || !reserve {
		return e
	}
	n := 0
	for _, l := range limits {
		if len(l.On) > 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	a.reserved = make([]reservation, 0, n)
	for i, l := range limits {
		if len(l.On) > 0 && sc.res[i].Allowed { // consumed: a shadow rule that denied was not
			a.reserved = append(a.reserved, reservation{sc.reqs[i], l})
		}
	}
	return nil
}

// chargeFailure consumes the route's rules whose `on` lists status. When one
// of them has run out, the answer becomes a 429; otherwise it stays as it is.
// h receives the rate-limit headers; nil when the answer has left already.
func (g *Gateway) chargeFailure(ctx context.Context, a *attempt, status int, h http.Header) *policy.Error {
	if !charges(a.route, status) {
		return nil
	}
	sc := getScratch()
	defer putScratch(sc)
	for _, l := range a.route.Limits {
		if slices.Contains(l.On, status) {
			sc.limits = append(sc.limits, l)
			sc.reqs = append(sc.reqs, ratelimit.Request{Key: a.bucketKey(l), Limit: toLimit(l), Shadow: l.Shadow})
		}
	}
	return g.decide(ctx, a, sc.limits, sc, h)
}

// scratch holds the rules of one decision and their results. It is reused
// across requests: limiters do not keep what they are given.
type scratch struct {
	limits []*policy.Limit
	reqs   []ratelimit.Request
	res    []ratelimit.Result
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	clear(sc.limits)
	clear(sc.reqs)
	sc.limits, sc.reqs, sc.res = sc.limits[:0], sc.reqs[:0], sc.res[:0]
	scratchPool.Put(sc)
}

func (g *Gateway) decide(ctx context.Context, a *attempt, limits []*policy.Limit, sc *scratch, h http.Header) *policy.Error {
	reqs := sc.reqs
	sc.res = slices.Grow(sc.res[:0], len(reqs))[:len(reqs)]
	res := sc.res
	clear(res)
	allowed, err := g.limiter.Allow(ctx, reqs, res)
	if err != nil {
		if g.metrics != nil {
			g.metrics.limitErrs.Inc()
		}
		return &policy.Error{Status: 500, Code: policy.CodeInvalid, Message: policy.MsgServerError, Err: err}
	}
	var deny *policy.Error
	for i, l := range limits {
		result := "allowed"
		switch {
		case res[i].Allowed:
		case l.Shadow:
			result = "shadow_denied"
			g.log.Info("shadow limit exceeded", "route", a.route.Name, "rule", l.Name, "retry_after", res[i].RetryAfter)
		default:
			result = "denied"
			if deny == nil {
				deny = &policy.Error{Status: 429, Code: policy.CodeRateLimit, Message: l.Message}
			}
			deny.RetryAfter = max(deny.RetryAfter, res[i].RetryAfter)
		}
		if g.metrics != nil {
			g.metrics.decisions.WithLabelValues(a.route.Name, l.Name, result).Inc()
		}
	}
	if !allowed && deny == nil { // a limiter that denies without saying which rule
		deny = &policy.Error{Status: 429, Code: policy.CodeRateLimit, Message: policy.MsgTooMany, RetryAfter: time.Second}
	}
	if h != nil && g.headers != HeadersNone {
		g.setRateHeaders(h, limits, reqs, res, !allowed)
	}
	return deny
}

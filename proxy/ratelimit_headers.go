package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/ratelimit"
)

// HeaderMode says which rate-limit header fields keygate sends.
type HeaderMode string

// Header modes.
const (
	// HeadersDraft sends the IETF draft's RateLimit-Policy and RateLimit
	// fields (draft-ietf-httpapi-ratelimit-headers): one named policy per rule,
	// with q (quota), w (window in seconds), r (remaining) and t (seconds until
	// the quota is back, or until a denied request may be retried).
	HeadersDraft HeaderMode = "draft"
	// HeadersLegacy sends RateLimit-Limit, RateLimit-Remaining and
	// RateLimit-Reset for the most restrictive rule.
	HeadersLegacy HeaderMode = "legacy"
	// HeadersBoth sends both sets.
	HeadersBoth HeaderMode = "both"
	// HeadersNone sends none; 429s still carry Retry-After.
	HeadersNone HeaderMode = "none"
)

// ParseHeaderMode checks a header mode name.
func ParseHeaderMode(s string) (HeaderMode, error) {
	switch m := HeaderMode(s); m {
	case HeadersDraft, HeadersLegacy, HeadersBoth, HeadersNone:
		return m, nil
	}
	return "", fmt.Errorf("%q must be draft, legacy, both or none", s)
}

// rateHeaderNames are the fields keygate owns; an upstream's are dropped.
var rateHeaderNames = []string{"Ratelimit", "Ratelimit-Policy", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"}

// setRateHeaders describes the rules that decided a request. Failure
// budgets (rules with `on`, peeked or reserved) are described only when
// they deny, shadow rules never.
func (g *Gateway) setRateHeaders(h http.Header, limits []*policy.Limit, reqs []ratelimit.Request, res []ratelimit.Result, denied bool) {
	// the two fields' values, one item per rule; room for a few rules
	policies, states := make([]byte, 0, 128), make([]byte, 0, 128)
	tightest := -1
	for i, l := range limits {
		if l.Shadow || ((reqs[i].Peek || len(l.On) > 0) && res[i].Allowed) || (denied && res[i].Allowed) {
			continue
		}
		remaining := min(res[i].Remaining, l.Rate)
		if tightest >= 0 {
			policies, states = append(policies, ", "...), append(states, ", "...)
		}
		policies = appendItem(policies, l.Name, "q", int64(l.Rate), "w", ceilSeconds(time.Duration(l.Per)))
		states = appendItem(states, l.Name, "r", int64(remaining), "t", ceilSeconds(waitOf(res[i])))
		if tightest < 0 || remaining < min(res[tightest].Remaining, limits[tightest].Rate) {
			tightest = i
		}
	}
	if tightest < 0 {
		return
	}
	if g.headers == HeadersDraft || g.headers == HeadersBoth {
		h.Set("Ratelimit-Policy", string(policies)) // names in canonical form: Set keeps them as they are
		h.Set("Ratelimit", string(states))
	}
	if g.headers == HeadersLegacy || g.headers == HeadersBoth {
		r, l := res[tightest], limits[tightest]
		h.Set("Ratelimit-Limit", strconv.Itoa(l.Rate))
		h.Set("Ratelimit-Remaining", strconv.Itoa(min(r.Remaining, l.Rate)))
		h.Set("Ratelimit-Reset", strconv.FormatInt(ceilSeconds(waitOf(r)), 10))
	}
}

// appendItem appends one structured-field item, "name";k1=v1;k2=v2, as
// fmt's %q and %d would write it (fmt.Appendf costs three allocations per
// item here, on every request that a rule describes).
func appendItem(b []byte, name, k1 string, v1 int64, k2 string, v2 int64) []byte {
	b = strconv.AppendQuote(b, name)
	b = append(append(append(b, ';'), k1...), '=')
	b = strconv.AppendInt(b, v1, 10)
	b = append(append(append(b, ';'), k2...), '=')
	return strconv.AppendInt(b, v2, 10)
}

// waitOf is how long until a rule's quota is back, or, when it denied, until
// a retry may pass.
func waitOf(r ratelimit.Result) time.Duration {
	if !r.Allowed {
		return r.RetryAfter
	}
	return r.ResetAfter
}

// ceilSeconds rounds up to whole seconds, never below 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

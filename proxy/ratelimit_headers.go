package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// setRateHeaders describes the rules that decided a request. Peek rules
// (failure budgets) are described only when they deny, shadow rules never.
func (g *Gateway) setRateHeaders(h http.Header, limits []*policy.Limit, reqs []ratelimit.Request, res []ratelimit.Result, denied bool) {
	var pol, state []string
	tightest := -1
	for i, l := range limits {
		if l.Shadow || (reqs[i].Peek && res[i].Allowed) || (denied && res[i].Allowed) {
			continue
		}
		t := res[i].ResetAfter
		if !res[i].Allowed {
			t = res[i].RetryAfter
		}
		secs := strconv.FormatInt(ceilSeconds(t), 10)
		remaining := min(res[i].Remaining, l.Rate)
		pol = append(pol, fmt.Sprintf("%q;q=%d;w=%d", l.Name, l.Rate, ceilSeconds(time.Duration(l.Per))))
		state = append(state, fmt.Sprintf("%q;r=%d;t=%s", l.Name, remaining, secs))
		if tightest < 0 || remaining < min(res[tightest].Remaining, limits[tightest].Rate) {
			tightest = i
		}
	}
	if tightest < 0 {
		return
	}
	if g.headers == HeadersDraft || g.headers == HeadersBoth {
		h.Set("RateLimit-Policy", strings.Join(pol, ", "))
		h.Set("RateLimit", strings.Join(state, ", "))
	}
	if g.headers == HeadersLegacy || g.headers == HeadersBoth {
		r, l := res[tightest], limits[tightest]
		t := r.ResetAfter
		if !r.Allowed {
			t = r.RetryAfter
		}
		h.Set("RateLimit-Limit", strconv.Itoa(l.Rate))
		h.Set("RateLimit-Remaining", strconv.Itoa(min(r.Remaining, l.Rate)))
		h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(t), 10))
	}
}

// ceilSeconds rounds up to whole seconds, never below 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

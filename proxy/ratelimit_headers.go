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
	// Both fields are built in one buffer on the stack and become one
	// string: fmt.Sprintf and strings.Join cost a dozen allocations here.
	var buf [256]byte
	pol, state := buf[:0], make([]byte, 0, 128)
	tightest := -1
	for i, l := range limits {
		if l.Shadow || ((reqs[i].Peek || len(l.On) > 0) && res[i].Allowed) || (denied && res[i].Allowed) {
			continue
		}
		t := res[i].ResetAfter
		if !res[i].Allowed {
			t = res[i].RetryAfter
		}
		remaining := min(res[i].Remaining, l.Rate)
		if tightest >= 0 {
			pol = append(pol, ", "...)
			state = append(state, ", "...)
		}
		// "name";q=rate;w=window and "name";r=remaining;t=seconds, as
		// fmt's %q and %d write them
		pol = strconv.AppendQuote(pol, l.Name)
		pol = append(pol, ";q="...)
		pol = strconv.AppendInt(pol, int64(l.Rate), 10)
		pol = append(pol, ";w="...)
		pol = strconv.AppendInt(pol, ceilSeconds(time.Duration(l.Per)), 10)
		state = strconv.AppendQuote(state, l.Name)
		state = append(state, ";r="...)
		state = strconv.AppendInt(state, int64(remaining), 10)
		state = append(state, ";t="...)
		state = strconv.AppendInt(state, ceilSeconds(t), 10)
		if tightest < 0 || remaining < min(res[tightest].Remaining, limits[tightest].Rate) {
			tightest = i
		}
	}
	if tightest < 0 {
		return
	}
	if g.headers == HeadersDraft || g.headers == HeadersBoth {
		n := len(pol)
		both := string(append(pol, state...))
		vals := []string{both[:n], both[n:]}
		h["Ratelimit-Policy"] = vals[:1:1] // h.Set, without canonicalizing a canonical name
		h["Ratelimit"] = vals[1:2:2]
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

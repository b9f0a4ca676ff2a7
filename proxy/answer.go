package proxy

import (
	"net/http"
	"slices"

	"github.com/keygate/keygate/policy"
)

// answerHeader reports whether a header (canonical name) may be on any
// answer keygate sends: the contract's own fields, keygate's rate-limit
// fields, the request id and the replay mark. Everything else is dropped,
// whatever the status, unless the route's policy lists it.
func answerHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Cache-Control", "Retry-After", "X-Request-Id", ReplayHeader:
		return true
	}
	return slices.Contains(rateHeaderNames, name)
}

// upstreamHeader reports whether an upstream's header may reach the client:
// Cache-Control and the headers the route lists. Content-Type, Content-Length
// and Retry-After are keygate's to set from the body it checked, rate-limit
// fields and the request id are keygate's own.
func upstreamHeader(route *policy.Route, name string) bool {
	return name == "Cache-Control" || slices.Contains(route.AnswerHeaders(), name)
}

// answerHeaders returns the headers of an upstream answer that may reach the
// client, each value checked by the leak detector; every other one is
// dropped and counted. On a route that needs a token the answer is kept out
// of shared caches (tokenRouteCache).
func (g *Gateway) answerHeaders(route *policy.Route, secrets []string, up http.Header) http.Header {
	out := make(http.Header, 4)
	for name, vs := range up {
		switch name {
		case "Content-Type": // read by isJSON; keygate sets its own before sending
			out[name] = vs
			continue
		case "Content-Length", "Content-Encoding", "Retry-After":
			continue // describe the body as the upstream sent it; keygate decides
		}
		if !upstreamHeader(route, name) {
			g.count(route.Name, "header")
			continue
		}
		clean := true
		for _, v := range vs {
			if policy.Leak(v, secrets...) != "" {
				clean = false
			}
		}
		if !clean || len(vs) != 1 {
			g.count(route.Name, "header")
			continue
		}
		out[name] = vs
	}
	if route.NeedsToken() {
		tokenRouteCache(out)
	}
	return out
}

// forward sends the checked request upstream through the route's proxy,
// with the answer vetted against this request's secrets. The proxy is a copy
// of the route's with its own ModifyResponse and ErrorHandler: the hooks see
// the request's values and its writer without a context value, and hand the
// contract code of the answer they decided to the writer as a value.
func (g *Gateway) forward(w *statusWriter, r *http.Request, a *attempt) {
	w.keep(a.route)
	rp := *g.proxies[a.route]
	route, secrets := a.route, a.route.Secrets(a.values, a.token)
	rp.ModifyResponse = func(resp *http.Response) error {
		w.setCode(g.normalize(route, secrets, resp))
		return nil
	}
	rp.ErrorHandler = func(_ http.ResponseWriter, r *http.Request, err error) { g.upstreamFailed(w, r, route, err) }
	rp.ServeHTTP(w, r)
}

package proxy

import (
	"context"
	"net/http"
	"slices"
	"time"

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

// forward sends the checked request upstream and writes the vetted answer:
// the outbound request is built from what keygate checked (outbound, or an
// outRequest for keygate's own lean client), the transport is called
// directly in this goroutine, and the answer, read
// whole within its cap and normalized, is written by keygate itself with
// its status, the allowlisted headers, Content-Length and the checked body.
// A transport failure or timeout is one contract 500 (upstreamFailed). ctx
// bounds the exchange and ends it when the client goes away.
func (g *Gateway) forward(ctx context.Context, w *statusWriter, r *http.Request, a *attempt, body []byte) {
	w.keep(a.route)
	route, target := a.route, g.targets[a.route]
	start := time.Now()
	var resp *http.Response
	var err error
	if lean, ok := g.transport.(*UpstreamTransport); ok {
		o := outRequest{
			method: route.Method, scheme: target.scheme, addr: target.host, host: target.host,
			path: target.uri, query: route.ForwardQuery(r.URL.RawQuery), header: g.forwardHeader(r, route, len(body) > 0, a.ip), body: body,
		}
		resp, err = lean.send(ctx, &o)
	} else {
		resp, err = g.transport.RoundTrip(g.outbound(ctx, r, route, target, body, a.ip))
	}
	if g.metrics != nil {
		g.metrics.upstream.WithLabelValues(route.Name).Observe(time.Since(start).Seconds())
	}
	if err != nil {
		g.upstreamFailed(w, route, err)
		return
	}
	defer resp.Body.Close() // normalize closes it; this frees the connection should it not get there
	code, answer := g.normalize(route, route.Secrets(a.values, a.token), w.requestID, resp)
	w.setCode(code)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

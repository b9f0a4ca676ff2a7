package proxy

import (
	"context"
	"slices"

	"github.com/keygate/keygate/ratelimit"
)

// refunder is a Limiter that can give back a unit it consumed
// (ratelimit.Redis, Memory and Fallback can).
type refunder interface {
	Refund(ctx context.Context, reqs []ratelimit.Request) error
}

// settle ends the failure budgets of a forwarded request once its answer is
// known. With reservations, the units of rules whose `on` does not list the
// answer's status are refunded, in one limiter call (which costs the Redis
// limiter no round trip of its own: see ratelimit.Redis.Refund); the others
// stay spent. An answer that never got a status (the exchange broke) keeps
// its units. Without reservations (a limiter that cannot refund), the
// failure is charged now, as before.
func (g *Gateway) settle(ctx context.Context, w *statusWriter, a *attempt) {
	status := w.status
	if status == 0 {
		return
	}
	if g.refund == nil {
		if charges(a.route, status) {
			_ = g.chargeFailure(ctx, a, status, nil)
		}
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	for _, r := range a.reserved {
		if !slices.Contains(r.rule.On, status) {
			sc.reqs = append(sc.reqs, r.req)
		}
	}
	if len(sc.reqs) == 0 {
		return
	}
	if err := g.refund.Refund(ctx, sc.reqs); err != nil {
		if g.metrics != nil {
			g.metrics.limitErrs.Inc()
		}
		g.log.Warn("refund of a failure budget failed; the unit stays spent", "route", a.route.Name, "err", err)
	}
}

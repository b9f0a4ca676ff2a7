package ratelimit

import (
	"context"
	"time"
)

// sharedLocal enforces 1/n of every limit on base: what one of n replicas
// enforces in ModeLocal, so that together they admit about the shared limit
// during an outage rather than n times it. A burst is divided rounding
// down, but never below one request, and the rate by stretching its period
// n times. The price: a client whose requests all land on one replica gets
// only 1/n of its limit until Redis is back, and a limit with a burst below
// n still admits n requests across n replicas.
type sharedLocal struct {
	base Limiter
	n    int
}

// share returns l as one of n replicas enforces it.
func share(l Limit, n int) Limit {
	return Limit{Rate: l.Rate, Period: l.Period * time.Duration(n), Burst: max(1, l.Burst/n)}
}

func (s *sharedLocal) scaled(reqs []Request) []Request {
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		r.Limit = share(r.Limit, s.n)
		out[i] = r
	}
	return out
}

func (s *sharedLocal) Allow(ctx context.Context, reqs []Request, res []Result) (bool, error) {
	if err := check(reqs, res); err != nil {
		return false, err
	}
	return s.base.Allow(ctx, s.scaled(reqs), res)
}

func (s *sharedLocal) Refund(ctx context.Context, reqs []Request) error {
	if err := checkRefund(reqs); err != nil {
		return err
	}
	if r, ok := s.base.(refunder); ok {
		return r.Refund(ctx, s.scaled(reqs))
	}
	return nil
}

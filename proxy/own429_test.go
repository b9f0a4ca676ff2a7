package proxy

import (
	"context"
	"testing"

	"github.com/keygate/keygate/ratelimit"
)

// denyNoWait is a limiter that denies every request without saying when to
// come back, as a limiter with a bug or a rule of zero period might.
type denyNoWait struct{}

func (denyNoWait) Allow(_ context.Context, reqs []ratelimit.Request, res []ratelimit.Result) (bool, error) {
	for i := range reqs {
		res[i] = ratelimit.Result{Allowed: false}
	}
	return false, nil
}

// TestOwn429HasRetryAfter: keygate's own 429s carry Retry-After of at least
// a second even when the limiter gives no wait.
func TestOwn429HasRetryAfter(t *testing.T) {
	g := newGateway(t, func(o *Options) { o.Limiter = denyNoWait{} })
	a := g.do(t, call{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)})
	if a.status != 429 || a.header.Get("Retry-After") != "1" {
		t.Errorf("denied request = %d Retry-After %q, want 429 Retry-After \"1\"", a.status, a.header.Get("Retry-After"))
	}
}

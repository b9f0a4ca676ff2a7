package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how Fallback answers while its primary is failing. The zero value
// is ModeLocal.
type Mode string

// The failure modes.
const (
	// ModeLocal decides with the local limiter: limits hold per replica.
	ModeLocal Mode = "local"
	// ModeOpen admits every request: no limits at all.
	ModeOpen Mode = "open"
	// ModeClosed returns an error wrapping ErrUnavailable for every request.
	ModeClosed Mode = "closed"
)

// ErrUnavailable is wrapped by the errors Fallback returns in ModeClosed,
// and by Ping's, when the shared limiter cannot be reached.
var ErrUnavailable = errors.New("ratelimit: shared limiter unavailable")

// Limiter is what Fallback needs of the limiters it wraps. *Redis and
// *Memory satisfy it.
type Limiter interface {
	Allow(ctx context.Context, reqs []Request, res []Result) (bool, error)
}

const (
	defaultCooldown    = 500 * time.Millisecond
	defaultMaxCooldown = time.Second
)

// FallbackOptions configures a Fallback. The zero value uses the defaults.
type FallbackOptions struct {
	// Mode is how to answer while the primary fails; "" means ModeLocal.
	Mode Mode
	// Cooldown is how long the primary is left alone after it first
	// fails; 0 means 500ms. Each failed trial doubles it, up to
	// MaxCooldown; a success resets it.
	Cooldown time.Duration
	// MaxCooldown caps the cooldown; 0 means 1s, so that the prober notices
	// a returning primary within a second however long the outage.
	MaxCooldown time.Duration
	// TrialWait bounds how long a request that arrives while a trial of
	// the primary is in flight waits for its outcome before it is decided
	// in Mode; 0 means 50ms, the default Redis timeout. Set it to the
	// primary's timeout.
	TrialWait time.Duration
	// LocalShare, in ModeLocal, divides every limit the local limiter
	// enforces: with N replicas that each see about 1/N of the traffic,
	// LocalShare N keeps their sum near the shared limit during an outage
	// instead of N times it. 0 and 1 mean each replica enforces the whole
	// limit.
	LocalShare int
	// OnStateChange, when not nil, is called once per change, in order,
	// with true when Fallback starts answering in failure mode and false
	// when the primary is back. It is called with Fallback's lock held: it
	// must be quick and may call Degraded and Stats but not Allow or Ping.
	OnStateChange func(degraded bool)
}

// FallbackStats counts what metrics need to know about a Fallback.
type FallbackStats struct {
	Errors    uint64 // calls to the primary that failed, timeouts included
	Trips     uint64 // times the breaker opened
	Fallbacks uint64 // requests answered in failure mode
	// Calls and RoundTrips are the primary's RedisStats, zero when the
	// primary is not a *Redis: Calls/RoundTrips is how many decisions
	// share one round trip.
	Calls, RoundTrips uint64
}

// Fallback is a limiter that asks a primary (Redis) and, while the primary
// fails, answers in its Mode instead. It is a circuit breaker: after a
// failure it stops calling the primary for a cooldown, so that a dead Redis
// adds no latency to requests, then lets one trial through: a ping by its
// background prober when the primary can be pinged, traffic or not, or
// else the next request. The trial's success returns it to the primary, its
// failure doubles the cooldown. Requests that arrive while a trial is in
// flight wait for its outcome (TrialWait at most). Fallback is safe for
// concurrent use; Close stops its prober. The zero value is not usable;
// call NewFallback.
type Fallback struct {
	ask  func(context.Context, []Request, []Result) (allowed, asked bool, err error)
	ping func(context.Context) error // nil when the primary cannot be pinged
	// refund is the primary's Refund; nil when it has none
	refund func(context.Context, []Request) error
	// stats is the primary's Stats; nil when it has none
	stats func() RedisStats
	local Limiter
	opt   FallbackOptions
	now   func() time.Time // replaced in tests

	degraded               atomic.Bool
	errs, trips, fallbacks atomic.Uint64

	mu       sync.Mutex
	cooldown time.Duration // current; 0 while healthy
	retryAt  time.Time     // while degraded, when the next trial may go
	trial    chan struct{} // while a trial is under way; closed when it ends
	prober   bool          // the background prober runs
	closed   bool          // Close was called
	stop     chan struct{} // closed by Close
	waiting  atomic.Int64  // requests waiting for a trial (for tests)
}

// NewFallback returns a limiter that asks primary and falls back to local
// (used in ModeLocal; it should be a *Memory) while primary fails. When
// primary has a Ping(context.Context) error method, as *Redis does,
// Fallback.Ping and the background prober use it.
func NewFallback(primary, local Limiter, opt FallbackOptions) (*Fallback, error) {
	var errs []error
	if primary == nil {
		errs = append(errs, errors.New("primary limiter is nil"))
	}
	switch opt.Mode {
	case "":
		opt.Mode = ModeLocal
	case ModeLocal, ModeOpen, ModeClosed:
	default:
		errs = append(errs, fmt.Errorf("Mode %q must be %q, %q or %q", opt.Mode, ModeLocal, ModeOpen, ModeClosed))
	}
	if opt.Mode == ModeLocal && local == nil {
		errs = append(errs, errors.New("local limiter is nil in mode local"))
	}
	if opt.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("Cooldown %s must be >= 0", opt.Cooldown))
	}
	if opt.TrialWait < 0 {
		errs = append(errs, fmt.Errorf("TrialWait %s must be >= 0", opt.TrialWait))
	}
	if opt.LocalShare < 0 {
		errs = append(errs, fmt.Errorf("LocalShare %d must be >= 0", opt.LocalShare))
	}
	if opt.MaxCooldown < 0 {
		errs = append(errs, fmt.Errorf("MaxCooldown %s must be >= 0", opt.MaxCooldown))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ratelimit: NewFallback: %w", err)
	}
	if opt.Cooldown == 0 {
		opt.Cooldown = defaultCooldown
	}
	if opt.MaxCooldown == 0 {
		opt.MaxCooldown = max(defaultMaxCooldown, opt.Cooldown)
	}
	opt.MaxCooldown = max(opt.MaxCooldown, opt.Cooldown)
	if opt.TrialWait == 0 {
		opt.TrialWait = defaultTrialWait
	}
	if opt.LocalShare > 1 && local != nil {
		local = &sharedLocal{base: local, n: opt.LocalShare}
	}
	f := &Fallback{local: local, opt: opt, now: time.Now, stop: make(chan struct{})}
	if p, ok := primary.(interface {
		allow(context.Context, []Request, []Result) (bool, bool, error)
	}); ok {
		f.ask = p.allow
	} else {
		f.ask = func(ctx context.Context, reqs []Request, res []Result) (bool, bool, error) {
			ok, err := primary.Allow(ctx, reqs, res)
			return ok, true, err
		}
	}
	if p, ok := primary.(interface{ Ping(context.Context) error }); ok {
		f.ping = p.Ping
	}
	if p, ok := primary.(refunder); ok {
		f.refund = p.Refund
	}
	if p, ok := primary.(interface{ Stats() RedisStats }); ok {
		f.stats = p.Stats
	}
	return f, nil
}

// Allow decides reqs with the primary, or in the failure mode while the
// primary is failing or its breaker is open. It returns an error only in
// ModeClosed, for a request the caller cancelled, and for ErrInvalid.
func (f *Fallback) Allow(ctx context.Context, reqs []Request, res []Result) (bool, error) {
	probe := false
	if f.degraded.Load() {
		var local bool
		if probe, local = f.enter(ctx); local {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return f.fallBack(ctx, reqs, res, nil)
		}
	}
	allowed, asked, err := f.ask(ctx, reqs, res)
	switch {
	case err == nil:
		if asked && (probe || f.degraded.Load()) {
			f.succeeded()
		} else if probe {
			f.endTrial()
		}
		return allowed, nil
	case errors.Is(err, ErrInvalid) || ctx.Err() != nil:
		// Not the primary's fault: nothing learnt about its health.
		if probe {
			f.endTrial()
		}
		return false, err
	}
	f.failed(probe)
	return f.fallBack(ctx, reqs, res, err)
}

// Ping asks the primary once whether it answers, within the primary's own
// timeout, so that it never holds up start-up for long. When it does not,
// Fallback starts out degraded, answering in its Mode without first paying
// a timeout per request, and returns to the primary by itself after a
// trial succeeds. The error, wrapping ErrUnavailable, is for logs.
func (f *Fallback) Ping(ctx context.Context) error {
	if f.ping == nil {
		return nil
	}
	if err := f.ping(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		f.failed(false)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if f.degraded.Load() {
		f.succeeded()
	}
	return nil
}

// Degraded reports whether requests are answered in failure mode.
func (f *Fallback) Degraded() bool { return f.degraded.Load() }

// Stats returns the counters since NewFallback.
func (f *Fallback) Stats() FallbackStats {
	st := FallbackStats{Errors: f.errs.Load(), Trips: f.trips.Load(), Fallbacks: f.fallbacks.Load()}
	if f.stats != nil {
		r := f.stats()
		st.Calls, st.RoundTrips = r.Calls, r.RoundTrips
	}
	return st
}

// fallBack answers in failure mode; cause is the primary's error, or nil
// when the breaker kept the request from it.
func (f *Fallback) fallBack(ctx context.Context, reqs []Request, res []Result, cause error) (bool, error) {
	if err := check(reqs, res); err != nil {
		return false, err
	}
	f.fallbacks.Add(1)
	switch f.opt.Mode {
	case ModeOpen:
		for i := range reqs {
			res[i] = Result{Allowed: true}
		}
		return true, nil
	case ModeClosed:
		if cause == nil {
			return false, ErrUnavailable
		}
		return false, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	default:
		return f.local.Allow(ctx, reqs, res)
	}
}

// endTrial ends a trial that taught nothing.
func (f *Fallback) endTrial() {
	f.mu.Lock()
	f.finishTrial()
	f.mu.Unlock()
}

// succeeded closes the breaker: the primary answered.
func (f *Fallback) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cooldown = 0
	if f.degraded.Load() {
		f.degraded.Store(false)
		f.notify(false)
	}
	f.finishTrial() // after the state: waiters read it when they wake
}

// failed opens the breaker, or keeps it open for longer when a trial
// failed. A failure of a request sent before the breaker opened changes
// nothing but the count.
func (f *Fallback) failed(probe bool) {
	f.errs.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.degraded.Load():
		f.cooldown = f.opt.Cooldown
		f.retryAt = f.now().Add(f.cooldown)
		f.trips.Add(1)
		f.degraded.Store(true)
		f.notify(true)
		f.startProber()
	case probe:
		f.finishTrial()
		f.cooldown = min(2*f.cooldown, f.opt.MaxCooldown)
		f.retryAt = f.now().Add(f.cooldown)
	}
}

func (f *Fallback) notify(degraded bool) {
	if f.opt.OnStateChange != nil {
		f.opt.OnStateChange(degraded)
	}
}

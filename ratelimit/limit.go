// Package ratelimit decides whether requests are within their rate limits,
// with the generic cell rate algorithm (GCRA) that redis_rate uses: a limit
// of Rate per Period admits Burst requests at once and then one every
// Period/Rate. It knows nothing of HTTP.
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Limit is a rate: Rate requests per Period, Burst of them at once. The zero
// value is invalid.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Interval returns the emission interval, Period/Rate: how often one more
// request is earned.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// Validate reports a limit that cannot be enforced.
func (l Limit) Validate() error {
	var errs []error
	if l.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %d must be > 0", l.Rate))
	}
	if l.Period <= 0 {
		errs = append(errs, fmt.Errorf("period %s must be > 0", l.Period))
	}
	if l.Burst <= 0 {
		errs = append(errs, fmt.Errorf("burst %d must be > 0", l.Burst))
	}
	if l.Rate > 0 && l.Period > 0 && l.Interval() < time.Microsecond {
		errs = append(errs, fmt.Errorf("%d per %s is faster than one a microsecond", l.Rate, l.Period))
	}
	return errors.Join(errs...)
}

// Request is one rule to apply to one request.
type Request struct {
	Key    string // bucket key; the caller hashes anything secret in it
	Limit  Limit
	Peek   bool // only ask whether one more would be admitted; consume nothing
	Shadow bool // its denial is reported but does not deny the request
}

// Result is the state of one rule's bucket after a decision.
type Result struct {
	Allowed    bool          // this rule admits the request
	Remaining  int           // requests the bucket still admits at once
	RetryAfter time.Duration // when denied: how long until one more is admitted
	ResetAfter time.Duration // how long until the bucket is full again
}

// gcra applies one request of cost 1 to a bucket whose theoretical arrival
// time is tat, at now (both in nanoseconds on one clock). It returns the
// result and the new tat to store when the request is admitted.
func gcra(l Limit, tat, now int64) (Result, int64) {
	em := int64(l.Interval())
	if tat < now {
		tat = now
	}
	newTAT := tat + em
	diff := now - (newTAT - em*int64(l.Burst))
	if diff < 0 {
		return Result{RetryAfter: time.Duration(-diff), ResetAfter: time.Duration(tat - now)}, tat
	}
	return Result{Allowed: true, Remaining: int(diff / em), ResetAfter: time.Duration(newTAT - now)}, newTAT
}

package ratelimit

import (
	"context"
	"time"
)

// How Fallback returns to its primary. Two things kept limits loose right
// after Redis came back: a replica without traffic never tried Redis again,
// and while one request tried it, every other request was decided by the
// local limiter, on buckets that knew nothing of the shared ones. So a
// prober pings the primary on the breaker's schedule, traffic or not, and a
// request that arrives while a trial is in flight waits for its outcome
// (within TrialWait) rather than deciding locally. Between trials the
// breaker answers at once, as before: a dead Redis adds no latency then.

const defaultTrialWait = 50 * time.Millisecond

// enter is Allow's way in while degraded: probe reports that this request
// is the trial; local that it is to be decided in the failure mode. When
// both are false the breaker closed meanwhile: ask the primary.
func (f *Fallback) enter(ctx context.Context) (probe, local bool) {
	f.mu.Lock()
	switch {
	case !f.degraded.Load():
		f.mu.Unlock()
		return false, false
	case f.trial != nil:
		ch := f.trial
		f.mu.Unlock()
		if !f.await(ctx, ch) {
			return false, true
		}
		return false, f.degraded.Load()
	case f.now().Before(f.retryAt):
		f.mu.Unlock()
		return false, true
	}
	f.trial = make(chan struct{})
	f.mu.Unlock()
	return true, false
}

// await waits for the trial that ends when ch is closed, at most TrialWait
// and while ctx lasts; it reports whether the trial ended.
func (f *Fallback) await(ctx context.Context, ch chan struct{}) bool {
	f.waiting.Add(1)
	defer f.waiting.Add(-1)
	t := time.NewTimer(f.opt.TrialWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// finishTrial ends the trial under way, if any, and wakes its waiters. The
// caller holds f.mu.
func (f *Fallback) finishTrial() {
	if f.trial != nil {
		close(f.trial)
		f.trial = nil
	}
}

// startProber starts the background prober unless it runs, the primary
// cannot be pinged, or Fallback is closed. The caller holds f.mu.
func (f *Fallback) startProber() {
	if f.ping == nil || f.prober || f.closed {
		return
	}
	f.prober = true
	go f.probe()
}

// probe pings the primary whenever a trial is due until one succeeds, so
// that a replica without traffic returns to the primary too. It is the
// only trial when it comes first; when a request's trial is under way, it
// waits for that one's outcome instead.
func (f *Fallback) probe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		if !f.degraded.Load() || f.closed {
			f.prober = false
			f.mu.Unlock()
			return
		}
		var wait <-chan struct{}
		due := f.retryAt.Sub(f.now())
		mine := false
		switch {
		case f.trial != nil:
			wait = f.trial
		case due <= 0:
			f.trial = make(chan struct{})
			mine = true
		}
		f.mu.Unlock()

		switch {
		case mine:
			if err := f.ping(ctx); err == nil {
				f.succeeded()
			} else if ctx.Err() != nil {
				f.endTrial()
			} else {
				f.failed(true)
			}
		case wait != nil:
			select {
			case <-wait:
			case <-ctx.Done():
			}
		default:
			timer.Reset(due)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
	}
}

// Close stops the background prober. Fallback still answers afterwards,
// without returning to the primary by itself.
func (f *Fallback) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.stop)
	}
}

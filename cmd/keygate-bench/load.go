package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sample is what one run of load against one target measured.
type sample struct {
	sent     int64           // answers received (any status)
	ok       int64           // 200 answers
	statuses map[int]int64   // answers by status
	errors   int64           // transport failures
	firstErr string          // the first transport failure, for the report
	elapsed  time.Duration   // from the first send to the last answer
	lat      []time.Duration // per answer: closed loop from send, open loop from the intended send time
	lag      []time.Duration // open loop: how late each request left after its intended time
}

func (s *sample) merge(o *sample) {
	s.sent += o.sent
	s.ok += o.ok
	s.errors += o.errors
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	if s.statuses == nil {
		s.statuses = map[int]int64{}
	}
	for k, v := range o.statuses {
		s.statuses[k] += v
	}
	s.elapsed += o.elapsed
	s.lat = append(s.lat, o.lat...)
	s.lag = append(s.lag, o.lag...)
}

func (s *sample) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.sent) / s.elapsed.Seconds()
}

// statusSummary lists the answers that were not 200, and transport failures.
func (s *sample) statusSummary() string {
	var parts []string
	keys := make([]int, 0, len(s.statuses))
	for k := range s.statuses {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		switch k {
		case 200:
		case statusWrkError:
			parts = append(parts, fmt.Sprintf("%d×≥400", s.statuses[k]))
		default:
			parts = append(parts, fmt.Sprintf("%d×%d", s.statuses[k], k))
		}
	}
	if s.errors > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors (first: %s)", s.errors, s.firstErr))
	}
	return strings.Join(parts, ", ")
}

// percentile returns the p-quantile (0..1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// hooks run once every connection is up and the clock is about to start,
// and once the last answer is in, before the connections close: what they
// measure covers exactly the requests counted.
type hooks struct{ Begin, End func() }

func (h hooks) begin() {
	if h.Begin != nil {
		h.Begin()
	}
}

func (h hooks) end() {
	if h.End != nil {
		h.End()
	}
}

// worker is one connection's share of a run.
type worker struct {
	c        *client
	out      sample
	last     time.Time      // when its last answer came in
	inflight chan time.Time // open loop: the due time of the request sent
}

func (w *worker) record(status int, err error, lat time.Duration) {
	if err != nil {
		w.out.errors++
		if w.out.firstErr == "" {
			w.out.firstErr = err.Error()
		}
		return
	}
	w.out.sent++
	if status == 200 {
		w.out.ok++
	}
	if w.out.statuses == nil {
		w.out.statuses = map[int]int64{}
	}
	w.out.statuses[status]++
	w.out.lat = append(w.out.lat, lat)
}

// startWorkers dials conns connections to addr. With warm, each sends it
// first, all at once, so that a connection is fully set up on both sides
// before the clock starts; without, it is only dialled.
func startWorkers(addr string, conns int, warm []byte) ([]*worker, error) {
	ws := make([]*worker, conns)
	errc := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &worker{c: newClient(addr)}
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			var err error
			if warm != nil {
				_, err = w.c.do(warm)
			} else {
				err = w.c.dial()
			}
			if err != nil {
				errc <- err
			}
		}(ws[i])
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		for _, w := range ws {
			w.c.close()
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return ws, nil
}

func collect(ws []*worker, start time.Time) *sample {
	s := &sample{statuses: map[int]int64{}}
	end := start
	for _, w := range ws {
		w.c.close()
		s.merge(&w.out)
		if w.last.After(end) {
			end = w.last
		}
	}
	s.elapsed = end.Sub(start)
	slices.Sort(s.lat)
	slices.Sort(s.lag)
	return s
}

// closedLoop keeps conns requests in flight for d: each connection sends the
// next request as soon as the previous answer is in. reqs are used in turn.
func closedLoop(ctx context.Context, addr string, reqs [][]byte, conns int, d time.Duration, h hooks) (*sample, error) {
	ws, err := startWorkers(addr, conns, reqs[0])
	if err != nil {
		return nil, err
	}
	h.begin()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func(i int, w *worker) {
			defer wg.Done()
			w.out.lat = make([]time.Duration, 0, 4096)
			for n := i * 7919; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				status, err := w.c.do(reqs[n%len(reqs)])
				t1 := time.Now()
				w.record(status, err, t1.Sub(t0))
				if err != nil {
					time.Sleep(time.Millisecond) // do not spin on a dead target
				}
				w.last = t1
			}
		}(i, w)
	}
	wg.Wait()
	h.end()
	return collect(ws, start), ctx.Err()
}

// openLoop sends rate requests a second for d over at most conns
// connections, whatever the target does: request i is due at start + i/rate,
// and its latency counts from then, so a stalled target is charged for every
// request it delayed (no coordinated omission). One pacer sends every
// request itself as soon as it is due and a connection is free, sleeping in
// between with nanosleep(2), which keeps time to tens of microseconds where
// Go's timers, waiting in epoll with millisecond timeouts, can be a
// millisecond late; each connection's reader takes the answer. With every
// connection busy, due requests wait for one and their wait counts.
func openLoop(ctx context.Context, addr string, reqs [][]byte, conns int, rate float64, d time.Duration, h hooks) (*sample, error) {
	return openLoopWarm(ctx, addr, reqs, conns, rate, d, h, reqs[0])
}

// openLoopWarm is openLoop with the first request of every connection, sent
// on all at once before the clock starts, given: nil connects only.
func openLoopWarm(ctx context.Context, addr string, reqs [][]byte, conns int, rate float64, d time.Duration, h hooks, warm []byte) (*sample, error) {
	ws, err := startWorkers(addr, conns, warm)
	if err != nil {
		return nil, err
	}
	interval := float64(time.Second) / rate
	total := int(rate * d.Seconds())
	free := make(chan *worker, conns)
	var wg sync.WaitGroup
	for _, w := range ws {
		w.out.lat = make([]time.Duration, 0, total/conns+64)
		w.inflight = make(chan time.Time, 1)
		free <- w
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for due := range w.inflight {
				status, err := w.c.recv()
				t1 := time.Now()
				w.record(status, err, t1.Sub(due))
				w.last = t1
				free <- w
			}
		}(w)
	}
	pacer := &worker{}
	pacer.out.lag = make([]time.Duration, 0, total)
	h.begin()
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(float64(i) * interval))
		sleepUntil(due)
		w := <-free
		t0 := time.Now()
		if err := w.c.send(reqs[i%len(reqs)]); err != nil {
			pacer.record(0, err, 0)
			free <- w
			continue
		}
		pacer.out.lag = append(pacer.out.lag, t0.Sub(due))
		w.inflight <- due
	}
	for _, w := range ws {
		close(w.inflight)
	}
	wg.Wait()
	h.end()
	s := collect(ws, start)
	s.merge(&pacer.out)
	slices.Sort(s.lag)
	return s, ctx.Err()
}

// sleepUntil sleeps with nanosleep(2) until t.
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

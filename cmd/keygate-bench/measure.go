package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// check sends one activation and expects a contract success.
func check(t *target) error {
	c := newClient(t.addr)
	c.keep = true
	defer c.close()
	status, err := c.do(t.reqs[0])
	if err != nil {
		return fmt.Errorf("check %s: %w", t.name, err)
	}
	if status != 200 || !strings.Contains(string(c.body), `"code":0`) {
		return fmt.Errorf("check %s: status %d, body %q; want 200 with code 0", t.name, status, c.body)
	}
	return nil
}

// checkKeygate makes sure keygate really checks: no token is a 401, a short
// license key a 400.
func checkKeygate(addr string) error {
	c := newClient(addr)
	c.keep = true
	defer c.close()
	for _, tc := range []struct {
		req    []byte
		status int
	}{
		{request(addr, "/activate-key", "", fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"h"}`, benchProduct, licenseKey(1))), 401},
		{request(addr, "/activate-key", benchToken, fmt.Sprintf(`{"productId":%q,"licenseKey":"short","hostId":"h"}`, benchProduct)), 400},
	} {
		status, err := c.do(tc.req)
		if err != nil {
			return fmt.Errorf("check keygate: %w", err)
		}
		if status != tc.status {
			return fmt.Errorf("check keygate: status %d, body %q; want %d", status, c.body, tc.status)
		}
	}
	return nil
}

// floodResult is a flood of over-limit requests for one license key.
type floodResult struct {
	s                     *sample
	scripts, others, all  int64 // round trips of the requests, and every command (see redisCalls.split)
	rejected, admitted    int64
	perRejected, allPerRj float64
}

func flood(ctx context.Context, rdb *redis.Client, kg *target, o *options) (*floodResult, error) {
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, benchProduct, licenseKey(4242))
	reqs := [][]byte{request(kg.addr, "/get-key", benchToken, body)}
	var before, after redisCalls
	var statsErr error
	s, err := closedLoop(ctx, kg.addr, reqs, o.conns, o.floodD, hooks{
		Begin: func() { before, statsErr = commandStats(ctx, rdb) },
		End: func() {
			if statsErr == nil {
				after, statsErr = commandStats(ctx, rdb)
			}
		},
	})
	if err == nil {
		err = statsErr
	}
	if err != nil {
		return nil, err
	}
	f := &floodResult{s: s, rejected: s.statuses[429], admitted: s.statuses[200]}
	f.scripts, f.others, _, f.all = after.sub(before).split()
	if f.rejected > 0 {
		f.perRejected = float64(f.scripts+f.others) / float64(f.rejected)
		f.allPerRj = float64(f.all) / float64(f.rejected)
	}
	return f, nil
}

// memResult is keygate's memory with many keep-alive clients, measured on a
// keygate process started for it (a process that served other loads before
// keeps memory it no longer needs for a while).
type memResult struct {
	conns    int
	rate     float64 // requests a second of the fixed-rate phase
	startRSS int64   // KiB: VmRSS of the fresh process before any client
	rateRSS  int64   // KiB: highest VmRSS sampled with every client connected, at rate in total
	busyRSS  int64   // KiB: highest VmRSS sampled with every client sending without pause
	hwm      int64   // KiB: VmHWM at the end
	rateP99  time.Duration
	busyRPS  float64
	busyP99  time.Duration
	nonOK    string
}

// measureRSS starts a fresh keygate and keeps rssConns keep-alive
// connections on it: first sending rate requests a second in all (an open
// loop spread over every connection), then each sending without pause (a
// closed loop), for rssD each, sampling VmRSS every 20ms.
func measureRSS(ctx context.Context, p *proc, addr string, reqs [][]byte, rate float64, o *options) (*memResult, error) {
	pid := p.pid()
	m := &memResult{conns: o.rssConns, rate: rate, startRSS: memKB(pid, "VmRSS")}
	peakRSS := func(run func(hooks) (*sample, error)) (*sample, int64, error) {
		stop := make(chan struct{})
		peak := make(chan int64, 1)
		go func() {
			var m int64
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					peak <- m
					return
				case <-t.C:
					m = max(m, memKB(pid, "VmRSS"))
				}
			}
		}()
		s, err := run(hooks{End: func() { close(stop) }})
		if err != nil {
			return nil, 0, err
		}
		return s, <-peak, nil
	}
	s, peak, err := peakRSS(func(h hooks) (*sample, error) {
		// connected, not sent a request all at once: that is the next phase
		return openLoopWarm(ctx, addr, reqs, o.rssConns, rate, o.rssD, h, nil)
	})
	if err != nil {
		return nil, err
	}
	m.rateRSS, m.rateP99 = peak, percentile(s.lat, 0.99)
	nonOK := s.statusSummary()
	s, peak, err = peakRSS(func(h hooks) (*sample, error) {
		return closedLoop(ctx, addr, reqs, o.rssConns, o.rssD, h)
	})
	if err != nil {
		return nil, err
	}
	m.busyRSS, m.busyRPS, m.busyP99 = peak, s.rps(), percentile(s.lat, 0.99)
	m.hwm = memKB(pid, "VmHWM")
	m.nonOK = strings.Trim(nonOK+", "+s.statusSummary(), ", ")
	return m, nil
}

func countLog(path string) (lines, bytes int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	return int64(strings.Count(string(b), "\n")), int64(len(b))
}

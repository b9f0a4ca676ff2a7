package ratelimit

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/internal/redistest"
)

// redisServer is a real redis-server started by the test that needs it.
type redisServer = redistest.Server

func startRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	return redistest.Start(tb, extra...)
}

func startRedisAt(tb testing.TB, port int, extra ...string) *redisServer {
	tb.Helper()
	return redistest.StartAt(tb, port, extra...)
}

func freePort(tb testing.TB) int { tb.Helper(); return redistest.FreePort(tb) }

// patient is how long tests that are not about timeouts let a call take,
// so that a machine starved by other jobs does not fail them.
const patient = 5 * time.Second

// newClient returns a client of s made by redisconn.New, closed at
// cleanup, with patient socket timeouts: the tests that are about timeouts
// set them with RedisOptions.Timeout, which the client honours.
func newClient(tb testing.TB, s *redisServer) redis.UniversalClient {
	tb.Helper()
	c, err := redisconn.New(redisconn.Config{URL: s.URL(), DialTimeout: patient, ReadTimeout: patient, WriteTimeout: patient})
	if err != nil {
		tb.Fatalf("redisconn.New: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// newRedis returns a Redis limiter on its own client of s.
func newRedis(tb testing.TB, s *redisServer, opt RedisOptions) *Redis {
	tb.Helper()
	return mustRedis(tb, newClient(tb, s), opt)
}

// mustRedis returns a Redis limiter on client. Unless opt says otherwise,
// calls are patient, not cut at 50ms: tests of what Redis decides should
// not fail because a busy machine was slow.
func mustRedis(tb testing.TB, client redis.UniversalClient, opt RedisOptions) *Redis {
	tb.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = patient
	}
	r, err := NewRedis(client, opt)
	if err != nil {
		tb.Fatalf("NewRedis: %v", err)
	}
	return r
}

// commandCalls returns how many times the server ran cmd (lower case), from
// INFO commandstats.
func commandCalls(tb testing.TB, c redis.UniversalClient, cmd string) int {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	prefix := "cmdstat_" + cmd + ":calls="
	for line := range strings.SplitSeq(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, _, _ := strings.Cut(rest, ",")
			calls, err := strconv.Atoi(n)
			if err != nil {
				tb.Fatalf("INFO commandstats: %q: %v", line, err)
			}
			return calls
		}
	}
	return 0
}

// countHook counts the commands and pipelines a client sends, its round
// trips, and apart the scripts it runs, which leave out the handshake of
// each new connection.
type countHook struct{ n, scripts atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.scripts.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

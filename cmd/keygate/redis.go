package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redisconn"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/ratelimit"
)

// redisConfigured reports whether any way to reach Redis is set.
func (c *Config) redisConfigured() bool {
	return c.RedisURL != "" || len(c.RedisSentinels) > 0 || c.RedisSentinel != "" || len(c.RedisCluster) > 0
}

func (c *Config) redisConfig() redisconn.Config {
	return redisconn.Config{
		URL: c.RedisURL, Username: c.RedisUsername, Password: c.RedisPassword,
		SentinelMaster: c.RedisSentinel, SentinelAddrs: c.RedisSentinels, SentinelPassword: c.RedisSentinelPW,
		ClusterAddrs: c.RedisCluster, DB: c.RedisDB, TLS: c.RedisTLS, CAFile: c.RedisCAFile,
	}
}

// newRedisClient builds keygate's Redis client, the one place that does: the
// server shares it between rate limits, Idempotency-Key answers and the token
// store; the token CLI, which may wait, passes a patient socket timeout
// (0 keeps redisconn's short defaults).
func (c *Config) newRedisClient(timeout time.Duration) (redis.UniversalClient, error) {
	rc := c.redisConfig()
	if timeout > 0 {
		rc.DialTimeout, rc.ReadTimeout, rc.WriteTimeout = timeout, timeout, timeout
	}
	client, err := redisconn.New(rc)
	if err != nil {
		return nil, fmt.Errorf("%sREDIS_URL: %w", envPrefix, err)
	}
	return client, nil
}

// redisVars maps redisconn.Config's field names to the variables that
// set them, so that a problem names what the user wrote.
var redisVars = map[string]string{
	"URL": "REDIS_URL", "Username": "REDIS_USERNAME", "Password": "REDIS_PASSWORD",
	"SentinelMaster": "REDIS_SENTINEL_MASTER", "SentinelAddrs": "REDIS_SENTINEL_ADDRS",
	"SentinelPassword": "REDIS_SENTINEL_PASSWORD", "ClusterAddrs": "REDIS_CLUSTER_ADDRS",
	"DB": "REDIS_DB", "TLS": "REDIS_TLS", "CAFile": "REDIS_CA_FILE",
}

// redisVar names a redisconn.Config field by its KEYGATE_REDIS_* variable; a
// field no variable sets keeps its own name.
func redisVar(field string) string {
	if v, ok := redisVars[field]; ok {
		return envPrefix + v
	}
	return field
}

// redisErrors turns redisconn.Config's problems into one error each, naming the
// KEYGATE_REDIS_* variables.
func redisErrors(err error) []error {
	var ce *redisconn.ConfigError
	if !errors.As(err, &ce) {
		return []error{fmt.Errorf("%sREDIS_URL: %w", envPrefix, err)}
	}
	out := make([]error, len(ce.Problems))
	for i, p := range ce.Problems {
		out[i] = errors.New(p.Text(redisVar))
	}
	return out
}

// sharedState is what keygate keeps in Redis, or in memory without it.
type sharedState struct {
	client  redis.UniversalClient // nil without Redis; also serves the token store
	limiter proxy.Limiter
	idem    proxy.IdempotencyStore
	close   func()
}

// newSharedState connects the limiter and the idempotency store to Redis
// when one is configured. Redis may be down at start: keygate then serves in
// KEYGATE_REDIS_FAILURE_MODE and returns to Redis by itself.
func newSharedState(ctx context.Context, cfg *Config, log *slog.Logger, m *proxy.Metrics) (*sharedState, error) {
	if !cfg.redisConfigured() {
		log.Warn("KEYGATE_REDIS_URL is not set: rate limits and Idempotency-Key answers are kept in memory and apply per replica, not across replicas")
		idem, err := proxy.NewMemoryIdempotencyBounded(proxy.IdempotencyBounds{MaxPerScope: cfg.IdemMaxPerToken})
		if err != nil {
			return nil, err
		}
		return &sharedState{limiter: ratelimit.NewMemory(), idem: idem, close: func() {}}, nil
	}
	redis.SetLogger(redisLogger{log})
	client, err := cfg.newRedisClient(0)
	if err != nil {
		return nil, err
	}
	shared, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{Prefix: cfg.RedisPrefix, Timeout: cfg.RedisTimeout})
	if err != nil {
		client.Close()
		return nil, err
	}
	var fb *ratelimit.Fallback
	fb, err = ratelimit.NewFallback(shared, ratelimit.NewMemory(), ratelimit.FallbackOptions{
		Mode:       ratelimit.Mode(cfg.RedisFailure),
		TrialWait:  cfg.RedisTimeout,
		LocalShare: cfg.RedisLocalShare,
		OnStateChange: func(degraded bool) {
			if degraded {
				m.RateLimitFallback.Set(1)
				log.Error("Redis unreachable: rate limits follow KEYGATE_REDIS_FAILURE_MODE", "mode", cfg.RedisFailure)
				return
			}
			m.RateLimitFallback.Set(0)
			log.Info("Redis reachable again: rate limits are shared")
		},
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	m.WatchRedis(func() proxy.RedisCounts {
		st := fb.Stats()
		return proxy.RedisCounts{Errors: st.Errors, Calls: st.Calls, RoundTrips: st.RoundTrips}
	})
	pingCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := fb.Ping(pingCtx); err != nil {
		log.Error("Redis unreachable at start; serving in the failure mode until it answers", "mode", cfg.RedisFailure, "err", err)
	} else {
		log.Info("Redis connected", "prefix", cfg.RedisPrefix)
	}
	idem, err := proxy.NewRedisIdempotencyBounded(client, cfg.RedisPrefix, 10*cfg.RedisTimeout, proxy.IdempotencyBounds{MaxPerScope: cfg.IdemMaxPerToken})
	if err != nil {
		fb.Close()
		client.Close()
		return nil, err
	}
	return &sharedState{client: client, limiter: fb, idem: idem, close: func() { fb.Close(); client.Close() }}, nil
}

// redisLogger sends go-redis's own messages (dial failures and the like) to
// the debug log: keygate reports Redis trouble itself, once per change.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis: " + fmt.Sprintf(format, v...))
}

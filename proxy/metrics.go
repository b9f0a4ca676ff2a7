package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are keygate's Prometheus series. Build them with NewMetrics; a nil
// *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.CounterVec
	upstream   *prometheus.HistogramVec
	rewrites   *prometheus.CounterVec
	rejections *prometheus.CounterVec
	decisions  *prometheus.CounterVec
	limitErrs  prometheus.Counter
	tokenLoads *prometheus.CounterVec

	idempotency *prometheus.CounterVec
	// RateLimitFallback is 1 while the shared limiter is away and the
	// failure mode is in force. The caller that owns the limiter sets it.
	RateLimitFallback prometheus.Gauge
}

// RedisCounts are the shared limiter's counters of its work with Redis.
type RedisCounts struct {
	Errors     uint64 // calls that failed or timed out
	Calls      uint64 // rate-limit script calls sent to Redis: decisions, and refunds sent alone
	RoundTrips uint64 // writes to Redis carrying one or more of those calls
}

// WatchRedis exports the counters counts returns, read at each scrape:
// keygate_redis_errors_total, keygate_redis_calls_total and
// keygate_redis_round_trips_total (calls ÷ round trips is how many
// decisions share one pipeline).
func (m *Metrics) WatchRedis(counts func() RedisCounts) {
	for _, c := range []struct {
		name, help string
		get        func(RedisCounts) uint64
	}{
		{"keygate_redis_errors_total", "Calls to Redis for rate limits that failed or timed out.", func(c RedisCounts) uint64 { return c.Errors }},
		{"keygate_redis_calls_total", "Rate-limit script calls sent to Redis: decisions, and refunds sent on their own.", func(c RedisCounts) uint64 { return c.Calls }},
		{"keygate_redis_round_trips_total", "Round trips to Redis for rate limits: each carries one or more calls in one pipeline.", func(c RedisCounts) uint64 { return c.RoundTrips }},
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.get(counts())) }))
	}
}

// NewMetrics registers keygate's series, plus the Go runtime and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_requests_total",
			Help: "Answers sent on API routes, by route, HTTP status and contract code.",
		}, []string{"route", "status", "code"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keygate_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		rewrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_upstream_rewrites_total",
			Help: "Upstream answers rewritten into the contract, by route and kind (status, body, code, leak, success, oversize, transport; header and field count each upstream header and success field dropped).",
		}, []string{"route", "kind"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_token_rejections_total",
			Help: "Requests refused for their access token, by route and reason (missing, unknown, expired, operation, product).",
		}, []string{"route", "reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_ratelimit_decisions_total",
			Help: "Rate-limit rule outcomes, by route, rule and result (allowed, denied, shadow_denied).",
		}, []string{"route", "rule", "result"}),
		limitErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keygate_ratelimit_errors_total",
			Help: "Rate-limit decisions that failed (the limiter was unreachable).",
		}),
		tokenLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_tokens_reloads_total",
			Help: "Tokens file reloads, by result (ok, error).",
		}, []string{"result"}),
		idempotency: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_idempotency_total",
			Help: "Idempotency-Key outcomes, by route and result (stored, replayed, conflict, mismatch, unavailable).",
		}, []string{"route", "result"}),
		RateLimitFallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keygate_ratelimit_fallback_active",
			Help: "1 while Redis is unreachable and KEYGATE_REDIS_FAILURE_MODE is in force.",
		}),
	}
	m.Registry.MustRegister(m.requests, m.upstream, m.rewrites, m.rejections, m.decisions, m.limitErrs, m.tokenLoads,
		m.idempotency, m.RateLimitFallback,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// TokensReloaded counts a tokens reload that changed the set (err nil) or
// failed.
func (m *Metrics) TokensReloaded(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.tokenLoads.WithLabelValues("error").Inc()
		return
	}
	m.tokenLoads.WithLabelValues("ok").Inc()
}

package proxy

import "github.com/prometheus/client_golang/prometheus"

// WatchUpstream exports what t did to keep keep-alive races from failing
// requests: the pooled connections it would not reuse, and the requests it
// sent again because not one byte of them had been written.
func (m *Metrics) WatchUpstream(t *UpstreamTransport) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_upstream_retired_total",
			Help: "Pooled upstream connections not reused: idle past the backend's timeout (setting, Keep-Alive hint or learned) or already closed by the backend.",
		}, func() float64 { return float64(t.retired.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_upstream_resent_total",
			Help: "Requests sent again on another upstream connection because not one byte of them had been written on the first.",
		}, func() float64 { return float64(t.replays.Load()) }),
	)
}

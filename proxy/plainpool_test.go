package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// newHTTPTransport is the plain pooled net/http transport keygate used
// before its lean client, kept for comparisons (BenchmarkServeHTTPPlainPool,
// TestKeepAliveHarness): upstreamConns keep-alive connections, a
// response-header timeout, and for https the system roots plus caPEM.
func newHTTPTransport(timeout time.Duration, caPEM []byte) *http.Transport {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          upstreamConns,
		MaxIdleConnsPerHost:   upstreamConns,
		MaxConnsPerHost:       upstreamConns,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 5*time.Second),
		ResponseHeaderTimeout: timeout,
	}
	if len(caPEM) > 0 {
		t.TLSClientConfig = &tls.Config{RootCAs: rootsWith(caPEM), MinVersion: tls.VersionTLS12}
	}
	return t
}

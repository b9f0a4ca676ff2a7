package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/keygate/keygate/proxy"
)

// An UpstreamTransport in front of a backend that closes idle keep-alive
// connections after 2 s (gunicorn's default): IdleTimeout retires pooled
// connections before that, and a request is resent only when none of it was
// written.
func ExampleNewUpstreamTransport() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"message":"License valid","code":0}`)
	}))
	defer backend.Close()
	tr := proxy.NewUpstreamTransport(proxy.TransportOptions{Timeout: 10 * time.Second, IdleTimeout: 1500 * time.Millisecond})
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	resp, err := client.Post(backend.URL+"/get-key", "application/json", strings.NewReader(`{}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

package proxy_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/ratelimit"
)

// An AccessLog on the sink and in the format of the Logger: the access line
// of each request is written as slog's text handler would write it.
func ExampleNewAccessLog() {
	var sink bytes.Buffer // keygate serve gives both its batching writer of standard error
	g, err := proxy.New(proxy.Options{
		Upstream:  &url.URL{Scheme: "http", Host: "127.0.0.1:9"},
		Policy:    policy.Default(),
		Limiter:   ratelimit.NewMemory(),
		Logger:    slog.New(slog.NewTextHandler(&sink, nil)),
		AccessLog: proxy.NewAccessLog(&sink, "text"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("POST", "/no-such-route", strings.NewReader(`{}`))
	r.Header.Set("X-Request-Id", "example-1")
	g.ServeHTTP(httptest.NewRecorder(), r)
	// the time and the duration differ from run to run
	fmt.Print(regexp.MustCompile(`time=\S+ | duration_ms=\S+`).ReplaceAllString(sink.String(), ""))
	// Output: level=INFO msg=request request_id=example-1 route=unmatched status=404 code=1 ip=192.0.2.1
}

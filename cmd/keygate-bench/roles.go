package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

// backendBody is the fast backend's answer: a contract success of the size
// of a Keymint activation answer.
const backendBody = `{"message":"License valid","code":0,"license":{"status":"active","activations":1,` +
	`"maxActivations":5,"expires":"2027-01-31T00:00:00Z"}}`

// runRole runs one of the servers the harness starts as a copy of itself, so
// that each has its own process (its own CPU time and its own Go runtime). It
// listens on a free loopback port and prints its address as the first line
// of stdout. It serves until killed.
func runRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	upstream := fs.String("upstream", "", "reverseproxy-*: the backend URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch role {
	case "backend":
		h = backendHandler()
	case "reverseproxy-pooled", "reverseproxy-default":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%s: -upstream %q must be a URL", role, *upstream)
		}
		h = bareProxy(role, u)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(ln)
}

// backendHandler answers every request with backendBody after reading the
// request body, as a backend must.
func backendHandler() http.Handler {
	body := []byte(backendBody)
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"application/json"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = ctype
		h["Content-Length"] = length
		_, _ = w.Write(body)
	})
}

// roles are the servers runRole can be.
var roles = []string{"backend", "reverseproxy-pooled", "reverseproxy-default"}

// bareProxy is the Go baseline: httputil.ReverseProxy with nothing but the
// upstream URL and X-Forwarded-* set. reverseproxy-pooled gets the transport
// a proxy for one busy upstream is given, a keep-alive pool as large as the
// load, and nothing else; reverseproxy-default keeps http.DefaultTransport,
// whose 2 idle connections per host make it dial for most requests under
// load (an extra: nobody runs a busy proxy like that).
func bareProxy(role string, u *url.URL) *httputil.ReverseProxy {
	p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
	}}
	if role == "reverseproxy-pooled" {
		p.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	}
	return p
}

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
	"sync"
	"time"
)

// copyPool is a ReverseProxy BufferPool.
type copyPool struct{ p sync.Pool }

func (c *copyPool) Get() []byte {
	if b, ok := c.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyPool) Put(b []byte) { c.p.Put(&b) }

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
	upstream := fs.String("upstream", "", "bare: the backend URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch role {
	case "backend":
		h = backendHandler()
	case "bare":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("bare: -upstream %q must be a URL", *upstream)
		}
		// The stock reverse proxy: no BufferPool, the default transport.
		h = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		}}
	case "bare-tuned":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("bare-tuned: -upstream %q must be a URL", *upstream)
		}
		// The stock reverse proxy with what a proxy for one busy upstream
		// needs: a pool of keep-alive connections and of copy buffers.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 512
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			Transport:  t,
			BufferPool: &copyPool{},
		}
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

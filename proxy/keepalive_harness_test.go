//go:build keepaliveharness

package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeepAliveHarness measures the keep-alive race the tests above rule
// out, against servers that close connections idle for 100ms: Go's net/http
// (IdleTimeout), Node.js (keepAliveTimeout) when node is installed, a load
// balancer that forgets idle flows silently and drops the next request on
// them ("lb", idleBackend), and a server whose idle timer may fire late,
// after a request arrived ("slow", idleBackend with Active). Requests go every 90 to 110ms, one at a time, through
// keygate with the plain pool it had before (no retirement, no replays),
// through keygate now, and through nginx with upstream keepalive. It prints
// the failures and the requests the backend read twice. It takes about
// 25 s per row, so it is built only with -tags keepaliveharness (with
// KEYGATE_KEEPALIVE_N requests per row, default 243, and
// KEYGATE_KEEPALIVE_BACKENDS, default go,node,lb,slow): a measurement, not a
// test, it is not part of the suite.
func TestKeepAliveHarness(t *testing.T) {
	n := 243
	if v, err := strconv.Atoi(os.Getenv("KEYGATE_KEEPALIVE_N")); err == nil && v > 0 {
		n = v
	}
	emulated := func(active bool) func(t *testing.T) (string, func() int) {
		return func(t *testing.T) (string, func() int) {
			b := startIdleBackend(t, &idleBackend{Idle: 100 * time.Millisecond, Active: active})
			return b.URL(), func() int { d, _, _ := b.stats(); return d }
		}
	}
	backends := map[string]func(t *testing.T) (string, func() int){
		"go": goIdleBackend, "lb": emulated(false), "slow": emulated(true),
	}
	if _, err := exec.LookPath("node"); err == nil {
		backends["node"] = nodeIdleBackend
	}
	kinds := []string{"go", "node", "lb", "slow"}
	if v := os.Getenv("KEYGATE_KEEPALIVE_BACKENDS"); v != "" {
		kinds = strings.Split(v, ",")
	}
	for _, kind := range kinds {
		start, ok := backends[kind]
		if !ok {
			continue
		}
		for _, via := range []string{"keygate-before", "keygate", "nginx"} {
			url, dups := start(t)
			var send func(i int) int
			switch via {
			case "nginx":
				front := startNginx(t, strings.TrimPrefix(url, "http://"))
				client := &http.Client{}
				send = func(i int) int {
					resp, err := client.Post(front+"/activate-key", "application/json", strings.NewReader(activateBody(licenseN(i))))
					if err != nil {
						return 0
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					return resp.StatusCode
				}
			default:
				var tr http.RoundTripper = NewUpstreamTransport(TransportOptions{Timeout: 2 * time.Second})
				if via == "keygate-before" {
					tr = newHTTPTransport(2*time.Second, nil)
				}
				g := newGateway(t, withUpstreamURL(url), func(o *Options) { o.Transport = tr })
				send = func(i int) int { return activateVia(t, g, i) }
			}
			failed := 0
			for i := range n {
				if send(i) != 200 {
					failed++
				}
				time.Sleep(90*time.Millisecond + rand.N(20*time.Millisecond))
			}
			t.Logf("backend %-4s via %-14s: %3d of %d failed (%.1f%%), %d read twice", kind, via, failed, n, 100*float64(failed)/float64(n), dups())
		}
	}
}

// goIdleBackend is net/http closing connections idle for 100ms.
func goIdleBackend(t *testing.T) (string, func() int) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"License valid","code":0}`)
	}))
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, func() int {
		mu.Lock()
		defer mu.Unlock()
		d := 0
		for _, n := range seen {
			d += n - 1
		}
		return d
	}
}

const nodeBackend = `
const http = require('http');
const seen = {};
const s = http.createServer((req, res) => {
  let b = '';
  req.on('data', d => b += d);
  req.on('end', () => {
    if (req.url === '/stats') {
      let d = 0; for (const k in seen) d += seen[k] - 1;
      res.setHeader('Connection', 'close'); res.end(String(d)); return;
    }
    seen[b] = (seen[b] || 0) + 1;
    res.setHeader('Content-Type', 'application/json');
    res.end('{"message":"License valid","code":0}');
  });
});
s.keepAliveTimeout = 100;
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`

// nodeIdleBackend is Node.js closing connections idle for 100ms.
func nodeIdleBackend(t *testing.T) (string, func() int) {
	cmd := exec.Command("node", "-e", nodeBackend)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("node backend: %v", err)
	}
	url := "http://127.0.0.1:" + strings.TrimSpace(line)
	return url, func() int {
		resp, err := http.Post(url+"/stats", "text/plain", nil)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var d int
		json.NewDecoder(resp.Body).Decode(&d)
		return d
	}
}

// startNginx runs nginx in front of addr with upstream keepalive, and
// returns its URL.
func startNginx(t *testing.T, addr string) string {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream backend { server %[2]s; keepalive 16; }
  server {
    listen 127.0.0.1:%[3]d;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`, dir, addr, port)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not start")
		}
	}
}

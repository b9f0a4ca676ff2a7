package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request values: the formats the built-in policy accepts.
const (
	productID = "prod_imagecheck_00000001"
	fastKey   = "IMGCHECK-FAST-0000-0000-0001"
	slowKey   = "IMGCHECK-SLOW-0000-0000-0001" // held until the check releases it
	htmlKey   = "IMGCHECK-HTML-0000-0000-0001" // answered with an HTML 404 keygate must rewrite
	token     = "imagecheck-token-0123456789abcdef"
	drain     = 30 * time.Second // KEYGATE_DRAIN_TIMEOUT
)

// backend is a license backend on the host that records what reached it.
type backend struct {
	srv  *http.Server
	port int
	// closedPort had a listener on every interface, now closed: a Redis
	// address that refuses connections.
	closedPort int
	arrived    chan struct{} // a slow request has arrived
	release    chan struct{} // closed: slow requests may answer

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// startBackend listens on every interface: the container reaches the host
// through its network's gateway (host.containers.internal), not loopback.
func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, err
	}
	closed, err := net.Listen("tcp", ":0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	closed.Close()
	b := &backend{port: ln.Addr().(*net.TCPAddr).Port, closedPort: closed.Addr().(*net.TCPAddr).Port,
		arrived: make(chan struct{}, 1), release: make(chan struct{})}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	b.mu.Lock()
	b.seen = append(b.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	b.mu.Unlock()
	var req struct{ LicenseKey string }
	_ = json.Unmarshal(body, &req)
	if req.LicenseKey == slowKey {
		select {
		case b.arrived <- struct{}{}:
		default:
		}
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
	}
	if req.LicenseKey == htmlKey {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/activate-key" {
		fmt.Fprint(w, `{"message":"License valid","code":0}`)
		return
	}
	fmt.Fprintf(w, `{"message":"License key fetched","code":0,"data":{"licenseKey":%q,"productId":%q}}`, req.LicenseKey, productID)
}

func (b *backend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.seen...)
}

// answer is one keygate answer.
type answer struct {
	status int
	body   string
	err    error
}

func post(ctx context.Context, base, key string) answer {
	body := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, productID, key)
	return send(ctx, base, "/get-key", token, body)
}

// send posts body to path with a bearer token and, as header pairs, more.
func send(ctx context.Context, base, path, bearer, body string, header ...string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+base+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A fresh connection each time, as from a load balancer.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(raw), err: err}
}

func (a answer) ok() error {
	if a.err != nil {
		return a.err
	}
	var b struct{ Code *int }
	if a.status != 200 || json.Unmarshal([]byte(a.body), &b) != nil || b.Code == nil || *b.Code != 0 {
		return fmt.Errorf("answer %d %s, want 200 code 0", a.status, a.body)
	}
	return nil
}

// readyz is the status of /readyz, 0 when it does not answer.
func readyz(ctx context.Context, admin string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// poll calls cond until it holds, the container stops, or d passes.
func (c *checker) poll(ctx context.Context, name, what string, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		if state, err := c.eng.inspect(ctx, name, "{{.State.Running}}"); err == nil && state != "true" {
			logs, _ := c.eng.logs(ctx, name)
			return fmt.Errorf("%s: %w while waiting for %s; log:\n%s", name, errStopped, what, logs)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logs, _ := c.eng.logs(ctx, name)
			return fmt.Errorf("%s: no %s within %s; log:\n%s", name, what, d, logs)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serve runs keygate against the backend, checks the process and a
// request, then its shutdown.
func (c *checker) serve(ctx context.Context) error {
	b, err := startBackend()
	if err != nil {
		return err
	}
	defer b.srv.Close()
	defer func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	}()

	// The tokens file, mounted read-only like the chart's Secret.
	dir, err := os.MkdirTemp("", "imagecheck-tokens")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sum := sha256.Sum256([]byte(token))
	tokens := fmt.Sprintf("tokens:\n  - name: imagecheck\n    sha256: %s\n    products: [\"*\"]\n", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte(tokens), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	run := restricted()
	if c.eng.name == "docker" { // podman names the host's gateway itself
		run = append(run, "--add-host=host.containers.internal:host-gateway")
	}
	name, err := c.eng.start(ctx, "serve", append(run,
		"-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090",
		"-v", dir+":/etc/keygate/tokens:ro",
		"-e", "KEYGATE_UPSTREAM_URL=http://host.containers.internal:"+strconv.Itoa(b.port),
		"-e", "KEYGATE_TOKENS_FILE=/etc/keygate/tokens/tokens.yaml",
		"-e", "KEYGATE_DRAIN_TIMEOUT="+drain.String(),
		"-e", "KEYGATE_SHUTDOWN_DELAY=5m", // only the second SIGTERM below ends it
		// A Redis that refuses connections: the limits fall back, and the
		// Redis metrics the dashboard and alerts read are exported.
		"-e", "KEYGATE_REDIS_URL=redis://host.containers.internal:"+strconv.Itoa(b.closedPort),
		c.o.image)...)
	if err != nil {
		return err
	}
	api, err := c.eng.hostPort(ctx, name, 8080)
	if err != nil {
		return err
	}
	admin, err := c.eng.hostPort(ctx, name, 9090)
	if err != nil {
		return err
	}
	if err := c.poll(ctx, name, "/readyz 200", time.Minute, func() bool { return readyz(ctx, admin) == 200 }); err != nil {
		return err
	}
	c.logf("ready: API %s, admin %s", api, admin)

	// What the kernel says of the process.
	pidText, err := c.eng.inspect(ctx, name, "{{.State.Pid}}")
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return fmt.Errorf("container pid %q", pidText)
	}
	ps, err := readProc(pid)
	if err == nil {
		err = ps.check()
	}
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	c.logf("process: uid/gid 65532, no capabilities, no_new_privs, a seccomp filter, read-only /")

	// A request through to the backend, which reads what the client sent.
	if err := post(ctx, api, fastKey).ok(); err != nil {
		return fmt.Errorf("POST /get-key: %w", err)
	}
	seen := b.requests()
	wantBody := fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, productID, fastKey)
	if len(seen) != 1 || seen[0].method != "POST" || seen[0].path != "/get-key" || string(seen[0].body) != wantBody {
		return fmt.Errorf("backend saw %+v, want one POST /get-key with %s", seen, wantBody)
	}
	c.logf("POST /get-key: 200 code 0; the backend read the client's body byte for byte")

	if err := c.exercise(ctx, name, api, admin, filepath.Join(dir, "tokens.yaml"), tokens); err != nil {
		return err
	}
	if c.o.metricsOut != "" {
		if err := saveMetrics(ctx, admin, c.o.metricsOut); err != nil {
			return err
		}
		c.logf("metrics: %s", c.o.metricsOut)
	}
	return c.shutdown(ctx, name, api, admin, b)
}

// shutdown: a request in flight, SIGTERM, /readyz 503 while the API still
// serves (shutdown delay), a second SIGTERM, the drain, exit 0.
func (c *checker) shutdown(ctx context.Context, name, api, admin string, b *backend) error {
	inflight := make(chan answer, 1)
	go func() { inflight <- post(ctx, api, slowKey) }()
	select {
	case <-b.arrived:
	case a := <-inflight:
		return fmt.Errorf("slow request answered before the backend released it: %d %s %v", a.status, a.body, a.err)
	case <-time.After(time.Minute):
		return errors.New("slow request did not reach the backend within 1m")
	}
	if err := c.eng.signal(ctx, name, "TERM"); err != nil {
		return err
	}
	if err := c.poll(ctx, name, "/readyz 503 after SIGTERM", time.Minute, func() bool { return readyz(ctx, admin) == 503 }); err != nil {
		return err
	}
	if err := post(ctx, api, fastKey).ok(); err != nil {
		return fmt.Errorf("POST /get-key during the shutdown delay: %w", err)
	}
	c.logf("SIGTERM: /readyz 503, new requests still served (KEYGATE_SHUTDOWN_DELAY)")
	if err := c.eng.signal(ctx, name, "TERM"); err != nil {
		return err
	}
	if err := c.poll(ctx, name, "the drain to start", time.Minute, func() bool {
		logs, _ := c.eng.logs(ctx, name)
		return strings.Contains(logs, "draining in-flight requests")
	}); err != nil {
		return err
	}
	close(b.release)
	select {
	case a := <-inflight:
		if err := a.ok(); err != nil {
			return fmt.Errorf("in-flight request during the drain: %w", err)
		}
	case <-time.After(time.Minute):
		return errors.New("in-flight request got no answer within 1m of its release")
	}
	code, err := c.eng.wait(ctx, name, drain)
	if err != nil {
		return fmt.Errorf("after the drain: %w", err)
	}
	logs, _ := c.eng.logs(ctx, name)
	if code != 0 {
		return fmt.Errorf("exit code %d, want 0; log:\n%s", code, logs)
	}
	if strings.Contains(logs, token) || strings.Contains(logs, fastKey) || strings.Contains(logs, slowKey) {
		return fmt.Errorf("the log carries a token or a full license key:\n%s", logs)
	}
	c.logf("second SIGTERM: in-flight request answered 200, exit 0 within the drain timeout (%s)", drain)
	return nil
}

func saveMetrics(ctx context.Context, admin, file string) error {
	text, err := getMetrics(ctx, admin)
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(text), 0o644)
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
)

// keygateBin is the keygate binary built once for the end-to-end tests.
var keygateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keygateBin = filepath.Join(dir, "keygate")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", keygateBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keygate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Keys the legacy test backend treats specially, beyond the demo backend's.
const (
	resetKey = "LEGACY-RESET-000-0000-0000-0001" // connection reset before any answer
	slowKey  = "LEGACY-SLOW-0000-0000-0000-0001" // answers after 1s
	hangKey  = "LEGACY-HANG-0000-0000-0000-0001" // never answers
	heldKey  = "LEGACY-HELD-0000-0000-0000-0001" // answers once the test releases it (legacyBackendHeld)
)

// legacyBackend is the demo backend plus transport-level failures.
func legacyBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv, _ := legacyBackendWith(t)
	return srv
}

// legacyBackendWith also returns the demo backend, to count its calls.
func legacyBackendWith(t *testing.T) (*httptest.Server, *backend.Backend) {
	t.Helper()
	srv, demo, _ := legacyBackendSignalling(t)
	return srv, demo
}

// legacyBackendSignalling also returns a channel that receives a value as
// each slow-key request arrives, before the backend starts taking its time:
// tests order events on it instead of sleeping.
func legacyBackendSignalling(t *testing.T) (*httptest.Server, *backend.Backend, <-chan struct{}) {
	t.Helper()
	demo := backend.New()
	slow := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		switch {
		case bytes.Contains(body, []byte(resetKey)):
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		case bytes.Contains(body, []byte(slowKey)):
			select {
			case slow <- struct{}{}:
			default:
			}
			time.Sleep(time.Second)
			r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte(slowKey), []byte(backend.LicenseKey), 1)))
		case bytes.Contains(body, []byte(hangKey)):
			<-r.Context().Done()
			return
		}
		demo.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, demo, slow
}

// legacyBackendHeld is the demo backend where a heldKey request signals its
// arrival on arrived, then waits until release is called (or its client
// gives up) and answers as for backend.LicenseKey: tests decide when the
// backend answers instead of guessing with a delay.
func legacyBackendHeld(t *testing.T) (srv *httptest.Server, demo *backend.Backend, arrived <-chan struct{}, release func()) {
	t.Helper()
	demo = backend.New()
	in := make(chan struct{}, 64)
	held := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte(heldKey)) {
			demo.ServeHTTP(w, r)
			return
		}
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte(heldKey), []byte(backend.LicenseKey), 1)))
		demo.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // a test that stops early must not leave a handler waiting
	return srv, demo, in, release
}

// instance is a running `keygate serve` process.
type instance struct {
	cmd    *exec.Cmd
	api    string
	admin  string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (i *instance) Write(p []byte) (int, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stderr.Write(p)
}

func (i *instance) logs() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stderr.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startKeygate runs `keygate serve` with env and waits until it is ready.
func startKeygate(t *testing.T, env ...string) *instance {
	t.Helper()
	i := &instance{api: freeAddr(t), admin: freeAddr(t), done: make(chan error, 1)}
	i.cmd = exec.Command(keygateBin, "serve")
	i.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "KEYGATE_LISTEN_ADDR=" + i.api, "KEYGATE_ADMIN_ADDR=" + i.admin}, env...)
	i.cmd.Stderr = i
	if err := i.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { i.done <- i.cmd.Wait() }()
	t.Cleanup(func() {
		i.cmd.Process.Kill()
		<-i.done
		if t.Failed() {
			t.Logf("keygate logs:\n%s", i.logs())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + i.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return i
			}
		}
		select {
		case err := <-i.done:
			i.done <- err // for the cleanup, which waits on it
			t.Fatalf("keygate exited before ready: %v\n%s", err, i.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("keygate not ready after 10s\n%s", i.logs())
	return nil
}

func (i *instance) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := i.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// writeTokens writes a tokens file granting each token all products.
func writeTokens(t *testing.T, path string, tokens ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for n, tok := range tokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "  - name: t%d\n    sha256: %s\n    products: [\"*\"]\n", n, hex.EncodeToString(sum[:]))
	}
	writeAtomic(t, path, b.String())
}

// writeAtomic replaces a file by rename, as Kubernetes updates mounted Secrets.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	msg    string
	code   *int
}

// post sends a request and fails the test when no answer comes; from a
// goroutine, use send.
func post(t *testing.T, base, path, token, body string, header ...string) reply {
	t.Helper()
	r, err := send(base, path, token, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is post for goroutines: it returns the failure instead of ending the
// test.
func send(base, path, token, body string, header ...string) (reply, error) {
	return sendTraced(base, path, token, body, nil, header...)
}

// sendTraced is send that, when wrote is not nil, signals on it once the
// request has been written to the connection.
func sendTraced(base, path, token, body string, wrote chan<- struct{}, header ...string) (reply, error) {
	ctx := context.Background()
	if wrote != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote <- struct{}{} },
		})
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+base+path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	var b struct {
		Message string `json:"message"`
		Code    *int   `json:"code"`
	}
	_ = json.Unmarshal(raw, &b)
	r.msg, r.code = b.Message, b.Code
	return r, nil
}

var contract = map[int][]int{200: {0}, 400: {1}, 401: {1}, 403: {2}, 404: {1, 2}, 409: {2}, 429: {3}, 500: {1}}

// inContract reports what is wrong with an answer, or "" when it is within
// the contract.
func inContract(r reply) string {
	codes, ok := contract[r.status]
	if !ok {
		return fmt.Sprintf("status %d outside the contract", r.status)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		return fmt.Sprintf("Content-Type %q", r.header.Get("Content-Type"))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.raw, &m); err != nil {
		return fmt.Sprintf("body %q is not a JSON object", r.raw)
	}
	if r.code == nil {
		return fmt.Sprintf("body %q has no code", r.raw)
	}
	found := false
	for _, c := range codes {
		found = found || c == *r.code
	}
	if !found {
		return fmt.Sprintf("code %d with status %d", *r.code, r.status)
	}
	if r.status >= 400 && (r.msg == "" || len(m) != 2) {
		return fmt.Sprintf("error body %q is not exactly {message, code}", r.raw)
	}
	return ""
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

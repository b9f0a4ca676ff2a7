package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/keygate/keygate/cmd/keygate/internal/backend"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/ratelimit"
)

const demoUsage = `usage: keygate demo [-selftest]

Runs keygate with the built-in policy in front of an embedded demo backend,
with limits kept in memory: no Redis, no network. It prints a token and curl
commands to try. It binds 127.0.0.1:8080 (API) and 127.0.0.1:9090 (admin)
unless KEYGATE_LISTEN_ADDR or KEYGATE_ADMIN_ADDR say otherwise. Logs go to
stderr; only warnings unless KEYGATE_LOG_LEVEL says otherwise.

  -selftest   send the demo requests on free ports, report what came back, exit
              (status 1 when an answer is not the expected one)
`

// demo runs keygate with the built-in policy in front of an embedded,
// in-memory Keymint-like backend that also misbehaves like a legacy server.
// It needs no Redis and no network. With -selftest it sends the printed
// requests itself, reports what came back and exits.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	selftest := fs.Bool("selftest", false, "send the demo requests, check the answers and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	env := slices.Clone(environ)
	if !hasVar(environ, "LISTEN_ADDR") {
		env = append(env, envPrefix+"LISTEN_ADDR=127.0.0.1:8080")
	}
	if !hasVar(environ, "ADMIN_ADDR") {
		env = append(env, envPrefix+"ADMIN_ADDR=127.0.0.1:9090")
	}
	if !hasVar(environ, "LOG_LEVEL") { // the banner or the report is the output; logs only when something is wrong
		env = append(env, envPrefix+"LOG_LEVEL=warn")
	}
	if *selftest { // free ports, so a running demo does not get in the way
		env = append(env, envPrefix+"LISTEN_ADDR=127.0.0.1:0", envPrefix+"ADMIN_ADDR=127.0.0.1:0")
	}
	cfg, err := loadConfig(env, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	backendSrv := &http.Server{Handler: backend.New(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = backendSrv.Serve(backendLn) }()
	defer backendSrv.Close()

	token, tokens, err := demoToken()
	if err != nil {
		return err
	}
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	apiAddr := lns.api.Addr().String()
	g, err := proxy.New(proxy.Options{
		Upstream:        &url.URL{Scheme: "http", Host: backendLn.Addr().String()},
		UpstreamTimeout: cfg.UpstreamTimeout,
		Policy:          policy.Default(),
		Tokens:          tokens,
		Limiter:         ratelimit.NewMemory(),
		MaxBodyBytes:    cfg.MaxBodyBytes,
		MaxAnswerBytes:  cfg.MaxAnswerBytes,
		Logger:          log,
		Metrics:         proxy.NewMetrics(),
		RateHeaders:     proxy.HeaderMode(cfg.RateHeaders),
		Idempotency:     &proxy.IdempotencyOptions{Store: proxy.NewMemoryIdempotency(), TTL: cfg.IdemTTL},
		IPv6Prefix:      cfg.IPv6Prefix,
	})
	if err != nil {
		return err
	}
	reqs := demoRequests("http://"+apiAddr, token)
	if *selftest {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- runServers(ctx, g, lns, cfg, log, nil) }()
		err := runSelftest(stdout, "http://"+apiAddr, token, reqs)
		cancel()
		return errors.Join(err, <-done)
	}
	if err := banner.Execute(stdout, map[string]any{"Addr": apiAddr, "Token": token, "Reqs": reqs}); err != nil {
		return err
	}
	return runServers(ctx, g, lns, cfg, log, nil)
}

func hasVar(environ []string, key string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, envPrefix+key+"=") {
			return true
		}
	}
	return false
}

// demoToken makes a fresh global token and a token set holding only its hash.
func demoToken() (string, *policy.Tokens, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	token := "kg_demo_" + hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	doc := fmt.Sprintf("tokens:\n  - name: demo\n    sha256: %q\n    products: [\"*\"]\n", hex.EncodeToString(sum[:]))
	tokens, err := policy.ParseTokens("demo tokens", []byte(doc), policy.Default())
	return token, tokens, err
}

// demoRequest is one request the demo prints as curl and the self-test sends.
type demoRequest struct {
	Title  string
	Path   string
	Body   string
	Repeat int    // send this many times; the last answer counts
	Want   int    // expected status of the last answer
	Code   int    // expected contract code
	Curl   string // the command line
	Result string // what came back, for the self-test report
}

func demoRequests(base, token string) []*demoRequest {
	valid := fmt.Sprintf(`{"productId":%q,"licenseKey":%q,"hostId":"laptop-1"}`, backend.ProductID, backend.LicenseKey)
	reqs := []*demoRequest{
		{Title: "A success: activate a license on a host", Path: "/activate-key", Body: valid, Repeat: 1, Want: 200, Code: 0},
		{Title: "A legacy error normalized: the backend answers 502 with an HTML page, the client gets the contract",
			Path: "/get-key", Body: fmt.Sprintf(`{"productId":%q,"licenseKey":%q}`, backend.ProductID, backend.HTMLErrorKey),
			Repeat: 1, Want: 500, Code: 1},
		{Title: "A rate limit: more than 10 activations of one license in a minute get 429 with Retry-After",
			Path: "/activate-key", Body: valid, Repeat: 11, Want: 429, Code: 3},
	}
	for _, r := range reqs {
		curl := fmt.Sprintf("curl -s -w ' -> HTTP %%{http_code}\\n' -X POST %s%s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s'",
			base, r.Path, token, r.Body)
		if r.Repeat > 1 {
			curl = fmt.Sprintf("for i in $(seq %d); do %s; done", r.Repeat, curl)
		}
		r.Curl = curl
	}
	return reqs
}

var banner = template.Must(template.New("banner").Parse(`
keygate demo: the built-in Keymint policy in front of an embedded demo backend.
No Redis and no network: limits are kept in memory.

  API:        http://{{.Addr}}
  Token:      {{.Token}}

Try it from another terminal:
{{range $i, $r := .Reqs}}
{{$r.Title}}:
  {{$r.Curl}}
{{end}}
Stop with Ctrl-C.
`))

// runSelftest sends the demo requests and checks each final answer.
func runSelftest(w io.Writer, base, token string, reqs []*demoRequest) error {
	client := &http.Client{Timeout: 10 * time.Second}
	var failed []string
	for _, r := range reqs {
		var status int
		var body []byte
		var header http.Header
		for i := 0; i < r.Repeat; i++ {
			req, _ := http.NewRequest(http.MethodPost, base+r.Path, bytes.NewReader([]byte(r.Body)))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("selftest: %s: %w", r.Path, err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			status, header = resp.StatusCode, resp.Header
		}
		var got struct {
			Message string `json:"message"`
			Code    *int   `json:"code"`
		}
		ok := json.Unmarshal(body, &got) == nil && got.Code != nil && *got.Code == r.Code && status == r.Want &&
			(status != 429 || header.Get("Retry-After") != "")
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, r.Title)
		}
		fmt.Fprintf(w, "%s %s\n     HTTP %d %s\n", mark, r.Title, status, bytes.TrimSpace(body))
	}
	if len(failed) > 0 {
		return fmt.Errorf("selftest: %d of %d demo requests did not get the expected answer", len(failed), len(reqs))
	}
	fmt.Fprintf(w, "%d passed, 0 failed\n", len(reqs))
	return nil
}

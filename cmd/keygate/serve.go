package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/policy/auth"
	"github.com/keygate/keygate/proxy"
)

const serveUsage = `usage: keygate serve

Runs the proxy until SIGTERM or SIGINT, then drains. It takes no arguments:
every setting is one of the environment variables below (an empty value counts
as unset). keygate check validates them, and the files they name, without
starting; serve warns about KEYGATE_* variables it does not know.

`

// serve runs the proxy until ctx ends (SIGTERM), then drains.
func serve(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	if len(args) > 0 {
		return usagef("serve takes no arguments; configure it with KEYGATE_* variables (got %q; see keygate serve -h)", args[0])
	}
	cfg, err := loadConfig(environ, true)
	if err != nil {
		for _, w := range unknownVars(environ) { // perhaps the reason a variable seems missing
			fmt.Fprintln(stderr, "keygate: warning:", w)
		}
		return err
	}
	log, accessLog, flushLog := newServerLogger(cfg, stderr)
	defer flushLog()
	for _, w := range unknownVars(environ) {
		log.Warn(w)
	}
	pol, err := loadPolicy(cfg.PolicyFile)
	if err != nil {
		return err
	}
	if err := requireTokenSource(cfg, pol); err != nil {
		return err
	}
	var tokenFile *auth.TokenFile
	if cfg.TokensFile != "" {
		if tokenFile, err = auth.OpenTokenFile(cfg.TokensFile, pol); err != nil {
			return fmt.Errorf("%sTOKENS_FILE: %w", envPrefix, err)
		}
		if toks, err := policy.LoadTokens(cfg.TokensFile, pol); err == nil { // what check warns about
			for _, w := range tokenWarnings(cfg.TokensFile, toks, time.Now()) {
				log.Warn(w)
			}
		}
	}
	metrics := proxy.NewMetrics()
	shared, err := newSharedState(ctx, cfg, log, metrics)
	if err != nil {
		return err
	}
	defer shared.close()
	ta, err := newAuth(cfg, tokenFile, shared.client, log)
	if err != nil {
		return err
	}
	ta.warmUp(ctx, log)
	upstream, _ := url.Parse(cfg.UpstreamURL) // validated
	var ca []byte
	if cfg.UpstreamCAFile != "" {
		if ca, err = os.ReadFile(cfg.UpstreamCAFile); err != nil {
			return fmt.Errorf("%sUPSTREAM_CA_FILE: %w", envPrefix, err)
		}
	}
	transport := proxy.NewUpstreamTransport(proxy.TransportOptions{Timeout: cfg.UpstreamTimeout, CAPEM: ca, IdleTimeout: cfg.UpstreamIdle})
	metrics.WatchUpstream(transport)
	g, err := proxy.New(proxy.Options{
		Upstream:        upstream,
		Transport:       transport,
		UpstreamTimeout: cfg.UpstreamTimeout,
		Policy:          pol,
		Auth:            ta.chain,
		UpstreamAuth:    ta.upstream,
		Limiter:         shared.limiter,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		MaxAnswerBytes:  cfg.MaxAnswerBytes,
		TrustedProxies:  cfg.trusted,
		IPv6Prefix:      cfg.IPv6Prefix,
		Logger:          log,
		AccessLog:       accessLog,
		Metrics:         metrics,
		RateHeaders:     proxy.HeaderMode(cfg.RateHeaders),
		Idempotency: &proxy.IdempotencyOptions{
			Store:  shared.idem,
			TTL:    cfg.IdemTTL,
			Refuse: cfg.IdemFailure == "refuse",
		},
	})
	if err != nil {
		return err
	}
	reload := func() {
		if changed, err := ta.upstream.Reload(); err != nil {
			log.Error("upstream credential reload failed; keeping the last good one", "err", err)
		} else if changed {
			log.Info("upstream credential reloaded", "upstream_auth", ta.upstream.String())
		}
	}
	if tokenFile != nil {
		report := func(changed bool, err error) {
			metrics.TokensReloaded(err)
			if err != nil {
				log.Error("tokens reload failed; keeping the last good set", "file", tokenFile.Path(), "err", err)
				return
			}
			log.Info("tokens reloaded", "file", tokenFile.Path(), "tokens", tokenFile.Len())
		}
		reloadUpstream := reload
		reload = func() {
			changed, err := tokenFile.Reload()
			if changed || err != nil {
				report(changed, err)
			}
			reloadUpstream()
		}
		go tokenFile.Watch(ctx, cfg.TokensReload, report)
	}
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	log.Info("keygate starting", "version", versionString(), "upstream", upstream.Redacted(), "routes", len(pol.Routes),
		"upstream_auth", ta.upstream.String())
	return runServers(ctx, g, lns, cfg, log, reload)
}

func loadPolicy(file string) (*policy.Policy, error) {
	if file == "" {
		return policy.Default(), nil
	}
	p, err := policy.Load(file)
	if err != nil {
		return nil, fmt.Errorf("%sPOLICY_FILE: %w", envPrefix, err)
	}
	return p, nil
}

func needsTokens(p *policy.Policy) bool {
	for _, r := range p.Routes {
		if r.NeedsToken() {
			return true
		}
	}
	return false
}

// listeners are the API and admin sockets.
type listeners struct{ api, admin net.Listener }

// listen opens both sockets, so that an address in use is reported before
// anything starts.
func listen(cfg *Config) (listeners, error) {
	api, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return listeners{}, fmt.Errorf("%sLISTEN_ADDR: %w", envPrefix, err)
	}
	admin, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		api.Close()
		return listeners{}, fmt.Errorf("%sADMIN_ADDR: %w", envPrefix, err)
	}
	return listeners{api, admin}, nil
}

// runServers serves the API and admin listeners until ctx ends, then turns
// readiness off, keeps serving for SHUTDOWN_DELAY and drains in-flight
// requests for at most DRAIN_TIMEOUT.
// reload, if not nil, runs on SIGHUP.
func runServers(ctx context.Context, g *proxy.Gateway, lns listeners, cfg *Config, log *slog.Logger, reload func()) error {
	apiLn, adminLn := lns.api, lns.admin
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug) // client resets and TLS noise
	api := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: cfg.HeaderTimeout, // slow-header clients are cut off
		ReadTimeout:       cfg.ReadTimeout,   // and slow-body ones
		WriteTimeout:      cfg.UpstreamTimeout + 30*time.Second,
		IdleTimeout:       cfg.IdleTimeout, // keep-alive connections between requests
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          errLog,
	}
	conns, cerr := proxy.NewConnLimiter(cfg.MaxConns)
	if cerr != nil { // validated already
		return cerr
	}
	api.ConnState = conns.ConnState
	admin := &http.Server{Handler: g.AdminHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(proxy.ContractListener(conns.Listener(apiLn))) }()
	go func() { errc <- admin.Serve(adminLn) }()
	g.SetReady(true)
	log.Info("keygate ready", "listen", apiLn.Addr().String(), "admin", adminLn.Addr().String())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if reload != nil {
				reload()
			}
			continue
		case err := <-errc:
			api.Close()
			admin.Close()
			return fmt.Errorf("server stopped: %w", err)
		case <-ctx.Done():
		}
		break
	}
	shutdownDelay(cfg.ShutdownDelay, log, func() {
		g.SetReady(false)
		// Answers now say Connection: close, so that clients holding a
		// connection open reconnect, through endpoints that no longer list
		// this pod, instead of waiting for the drain to cut it.
		api.SetKeepAlivesEnabled(false)
	})
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.DrainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	err := api.Shutdown(drainCtx)
	admin.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("drain timed out; closing remaining connections", "err", err)
		api.Close()
	}
	log.Info("keygate stopped")
	return nil
}

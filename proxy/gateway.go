// Package proxy is keygate's request path: the http.Handler that checks each
// API request against the policy (route, token, parameters, limits), the
// upstream path that forwards it, the normalization of what comes back, and
// the admin endpoints.
package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/policy"
)

// TokenSource finds the record of an access token; nil means unknown.
type TokenSource interface {
	Lookup(token string) *policy.Token
}

// Authenticator decides whether an access token is valid (policy/auth.Chain
// is one). A nil token with err == nil is a rejection, reason says why, for
// logs and metrics; a nil token with an error means the check could not be
// made (a token store, JWKS or introspection endpoint is down).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (tok *policy.Token, reason string, err error)
}

// UpstreamCredential sets the Authorization header of a request about to go
// upstream (policy/auth.UpstreamAuth is one).
type UpstreamCredential interface {
	Apply(h http.Header)
}

// Options configure a Gateway. Upstream, Policy and Limiter are required.
type Options struct {
	Upstream        *url.URL          // backend base URL; route paths are appended to its path
	Transport       http.RoundTripper // nil: NewTransport(UpstreamTimeout, nil); an *UpstreamTransport is called without an http.Request
	UpstreamTimeout time.Duration     // whole upstream exchange; 0: 10s
	Policy          *policy.Policy
	Tokens          TokenSource        // used when Auth is nil; nil: every token is unknown
	Auth            Authenticator      // nil: Tokens alone
	UpstreamAuth    UpstreamCredential // nil: the client's Authorization is forwarded
	Limiter         Limiter
	MaxBodyBytes    int64               // request body cap; 0: 64 KiB
	MaxAnswerBytes  int64               // upstream success body cap, decoded; larger ones become 500s; 0: 256 KiB
	TrustedProxies  []netip.Prefix      // peers whose X-Forwarded-For is believed
	Logger          *slog.Logger        // nil: slog.Default()
	AccessLog       *AccessLog          // access lines, on Logger's sink in its format; nil: through Logger
	Metrics         *Metrics            // nil: none
	RateHeaders     HeaderMode          // rate-limit header fields; "": HeadersDraft
	Idempotency     *IdempotencyOptions // nil: Idempotency-Key is passed through, not enforced
	IPv6Prefix      int                 // prefix length per-IP limits count IPv6 clients by, 48 to 128; 0: DefaultIPv6Prefix
}

// Gateway is keygate's API handler. It is safe for concurrent use.
type Gateway struct {
	policy  *policy.Policy
	tokens  TokenSource
	auth    Authenticator
	upAuth  UpstreamCredential
	limiter Limiter
	refund  refunder // limiter, when it can refund: failure budgets are then reserved
	// targets are where each route's requests go, transport how: forward
	// calls it directly, without a reverse proxy in between.
	targets   map[*policy.Route]target
	transport http.RoundTripper
	timeout   time.Duration
	maxBody   int64
	maxResp   int64 // upstream success body cap
	trusted   []netip.Prefix
	log       *slog.Logger
	access    *AccessLog // nil: access lines go through log
	metrics   *Metrics
	headers   HeaderMode
	idem      *IdempotencyOptions
	v6Bits    int // IPv6 prefix length per-IP limits count by
	ready     atomic.Bool
	now       func() time.Time
}

// New builds a Gateway. It starts not ready; call SetReady once everything
// it depends on is loaded.
func New(o Options) (*Gateway, error) {
	var errs []error
	if o.Upstream == nil || (o.Upstream.Scheme != "http" && o.Upstream.Scheme != "https") || o.Upstream.Host == "" {
		errs = append(errs, errors.New("proxy: upstream must be an http or https URL with a host"))
	}
	if o.Policy == nil {
		errs = append(errs, errors.New("proxy: a policy is required"))
	}
	if o.Limiter == nil {
		errs = append(errs, errors.New("proxy: a limiter is required"))
	}
	if o.RateHeaders != "" {
		if _, err := ParseHeaderMode(string(o.RateHeaders)); err != nil {
			errs = append(errs, fmt.Errorf("proxy: rate-limit headers: %w", err))
		}
	}
	if o.UpstreamTimeout < 0 || o.MaxBodyBytes < 0 || o.MaxAnswerBytes < 0 {
		errs = append(errs, errors.New("proxy: timeout and body caps must not be negative"))
	}
	if err := validIPv6Prefix(o.IPv6Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &Gateway{
		policy:  o.Policy,
		tokens:  o.Tokens,
		auth:    o.Auth,
		upAuth:  o.UpstreamAuth,
		limiter: o.Limiter,
		timeout: o.UpstreamTimeout,
		maxBody: o.MaxBodyBytes,
		maxResp: o.MaxAnswerBytes,
		trusted: o.TrustedProxies,
		log:     o.Logger,
		access:  o.AccessLog,
		metrics: o.Metrics,
		headers: o.RateHeaders,
		now:     time.Now,
	}
	g.v6Bits = cmp.Or(o.IPv6Prefix, DefaultIPv6Prefix)
	if g.headers == "" {
		g.headers = HeadersDraft
	}
	g.refund, _ = o.Limiter.(refunder)
	if o.Idempotency != nil {
		if o.Idempotency.Store == nil {
			return nil, errors.New("proxy: idempotency needs a store")
		}
		idem := *o.Idempotency
		idem.TTL = cmpOr(idem.TTL, 24*time.Hour)
		idem.WaitPeriod = cmpOr(idem.WaitPeriod, 25*time.Millisecond)
		if idem.MaxBody == 0 {
			idem.MaxBody = 64 << 10
		}
		g.idem = &idem
	}
	if g.timeout == 0 {
		g.timeout = 10 * time.Second
	}
	if g.maxBody == 0 {
		g.maxBody = 64 << 10
	}
	if g.maxResp == 0 {
		g.maxResp = defaultAnswerCap
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.tokens == nil {
		g.tokens = noTokens{}
	}
	if g.auth == nil {
		g.auth = lookupAuth{g}
	}
	transport := o.Transport
	if transport == nil {
		transport = NewTransport(g.timeout, nil)
	}
	g.transport = transport
	g.targets = make(map[*policy.Route]target, len(o.Policy.Routes))
	for _, r := range o.Policy.Routes {
		g.targets[r] = newTarget(o.Upstream, r)
	}
	return g, nil
}

type noTokens struct{}

func (noTokens) Lookup(string) *policy.Token { return nil }

// lookupAuth is the Authenticator of a TokenSource alone.
type lookupAuth struct{ g *Gateway }

func (l lookupAuth) Authenticate(_ context.Context, token string) (*policy.Token, string, error) {
	tok := l.g.tokens.Lookup(token)
	switch {
	case tok == nil:
		return nil, policy.ReasonUnknown, nil
	case tok.Expired(l.g.now()):
		return nil, policy.ReasonExpired, nil
	}
	return tok, "", nil
}

// SetReady sets what /readyz answers.
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready) }

// Ready reports whether the gateway is ready for traffic.
func (g *Gateway) Ready() bool { return g.ready.Load() }

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/policy"
)

// Introspection defaults.
const (
	DefaultIntrospectTimeout     = 2 * time.Second
	DefaultIntrospectCacheTTL    = 30 * time.Second
	DefaultIntrospectNegativeTTL = 5 * time.Second
	DefaultIntrospectCacheSize   = 10000
	DefaultIntrospectMaxBytes    = 64 << 10
	DefaultIntrospectBackoff     = time.Second
)

// IntrospectionConfig says where the RFC 7662 endpoint is and how its
// answers are used.
type IntrospectionConfig struct {
	// URL is the introspection endpoint, http:// or https:// (use https
	// outside tests). Required.
	URL string
	// ClientID and ClientSecret, when set, authenticate keygate to the
	// endpoint with HTTP Basic (client_secret_basic, RFC 6749 2.3.1).
	ClientID, ClientSecret string
	// TokenTypeHint is sent as token_type_hint; "" sends none.
	TokenTypeHint string
	// Timeout bounds one call; 0 means DefaultIntrospectTimeout (2s).
	Timeout time.Duration
	// CacheTTL is how long an active answer is reused, never past the
	// token's exp: a token revoked at the authorization server keeps
	// working for up to this long. 0 means DefaultIntrospectCacheTTL.
	CacheTTL time.Duration
	// NegativeTTL is how long an inactive or rejected answer is reused;
	// 0 means DefaultIntrospectNegativeTTL.
	NegativeTTL time.Duration
	// CacheSize bounds the cached answers; 0 means the default (10000).
	CacheSize int
	// MaxBytes bounds an answer; 0 means 64 KiB.
	MaxBytes int64
	// Backoff: after a call that got no answer (a transport failure or a
	// timeout), tokens not in the cache are answered unavailable at once for
	// this long, instead of each waiting for a dead endpoint; cached answers
	// keep serving. An HTTP answer that is an error or not a usable
	// introspection answer concerns the token asked about only: that token
	// is answered unavailable for this long, and nothing else changes. 0
	// means DefaultIntrospectBackoff (1s).
	Backoff time.Duration
	// Issuers, when set, are the accepted "iss" values of answers.
	Issuers []string
	// Audiences, when set, must meet the answer's "aud": an authorization
	// server says active: true for tokens meant for other services too.
	Audiences []string
	// Claims says where products, operations and the name are.
	Claims ClaimMapping
	// Client makes the requests; nil means a client that follows no
	// redirect. Timeout applies either way.
	Client *http.Client
}

// Introspector is a Source that asks an OAuth 2.0 token introspection
// endpoint (RFC 7662) about opaque tokens. It recognizes every token it is
// shown, so it comes last in a Chain. Answers are cached by the token's
// hash; concurrent lookups of one token make one call. Make one with
// NewIntrospector; the zero value is not usable. It is safe for concurrent
// use.
type Introspector struct {
	cfg         IntrospectionConfig
	claims      ClaimMapping
	client      *http.Client
	cache       *cache
	flight      flight[answer]
	now         func() time.Time
	lastFailure atomic.Int64 // unix nanoseconds
}

// errIntrospectionBackoff is returned while a recent transport failure
// holds calls back.
var errIntrospectionBackoff = errors.New("introspection endpoint unreachable recently; not calling it")

// answerError is an HTTP answer of the endpoint that is not a usable
// introspection answer (a status other than 200, a body too large, not a
// JSON object, no boolean active). It is the endpoint's word about one
// token, so it opens no breaker: another client's token could make it.
type answerError struct{ err error }

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// NewIntrospector checks cfg and returns an Introspector.
func NewIntrospector(cfg IntrospectionConfig) (*Introspector, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	if cfg.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("URL: must be an http:// or https:// URL"))
	}
	if (cfg.ClientID == "") != (cfg.ClientSecret == "") {
		errs = append(errs, errors.New("ClientID, ClientSecret: set both or neither"))
	}
	if cfg.Timeout < 0 || cfg.CacheTTL < 0 || cfg.NegativeTTL < 0 || cfg.CacheSize < 0 || cfg.MaxBytes < 0 || cfg.Backoff < 0 {
		errs = append(errs, errors.New("Timeout, CacheTTL, NegativeTTL, CacheSize, MaxBytes, Backoff: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: introspection: %w", err)
	}
	cfg.Timeout = orDefault(cfg.Timeout, DefaultIntrospectTimeout)
	cfg.CacheTTL = orDefault(cfg.CacheTTL, DefaultIntrospectCacheTTL)
	cfg.NegativeTTL = orDefault(cfg.NegativeTTL, DefaultIntrospectNegativeTTL)
	cfg.CacheSize = cmp.Or(cfg.CacheSize, DefaultIntrospectCacheSize)
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, DefaultIntrospectMaxBytes)
	cfg.Backoff = orDefault(cfg.Backoff, DefaultIntrospectBackoff)
	c := cfg.Client
	if c == nil {
		// A redirect would re-send the token (307, 308) somewhere else:
		// it is a failed call instead.
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Introspector{
		cfg: cfg, claims: cfg.Claims.withDefaults(), client: c,
		cache: newCache(cfg.CacheSize), now: time.Now,
	}, nil
}

// Authenticate implements Source: it decides every token, from the cache
// or by one call shared with concurrent lookups of the same token. An
// endpoint that fails, times out or answers nonsense gives
// ReasonUnavailable and an error; nothing is cached then.
func (in *Introspector) Authenticate(ctx context.Context, token string) (*policy.Token, string, error) {
	key := sha256.Sum256([]byte(token))
	now := in.now()
	if a, ok := in.cache.get(key, now); ok {
		return a.result()
	}
	if last := in.lastFailure.Load(); last != 0 && now.Sub(time.Unix(0, last)) < in.cfg.Backoff {
		return nil, ReasonUnavailable, errIntrospectionBackoff
	}
	a, err := in.flight.do(ctx, string(key[:]), func() (answer, error) { return in.introspect(key, token) })
	if err != nil {
		return nil, ReasonUnavailable, fmt.Errorf("introspection: %w", err)
	}
	return a.result()
}

// introspect makes one call and caches its answer.
func (in *Introspector) introspect(key tokenKey, token string) (answer, error) {
	claims, err := in.call(token)
	now := in.now()
	var ae *answerError
	switch {
	case errors.As(err, &ae):
		a := answer{reason: ReasonUnavailable, err: fmt.Errorf("introspection: %w", err)}
		in.cache.put(key, a, in.cfg.Backoff, now)
		return a, nil
	case err != nil:
		in.lastFailure.Store(now.UnixNano())
		return answer{}, err
	}
	in.lastFailure.Store(0)
	a, exp := in.decide(key, claims, now)
	ttl := in.cfg.NegativeTTL
	if a.tok != nil {
		ttl = in.cfg.CacheTTL
		if !exp.IsZero() {
			ttl = min(ttl, exp.Sub(now))
		}
	}
	in.cache.put(key, a, ttl, now)
	return a, nil
}

// call POSTs the token and returns the answer's members. The token travels
// in the body only, never in a URL or a log.
func (in *Introspector) call(token string) (map[string]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.Timeout)
	defer cancel()
	form := url.Values{"token": {token}}
	if in.cfg.TokenTypeHint != "" {
		form.Set("token_type_hint", in.cfg.TokenTypeHint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.cfg.ClientID != "" {
		// RFC 6749 2.3.1: form-encode the parts before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error names the URL; keep logs short
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &answerError{fmt.Errorf("status %d", resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, in.cfg.MaxBytes+1))
	if err != nil {
		return nil, err // cut off mid-answer: a transport failure
	}
	if int64(len(body)) > in.cfg.MaxBytes {
		return nil, &answerError{fmt.Errorf("answer larger than %d bytes", in.cfg.MaxBytes)}
	}
	claims, err := members(body)
	if err != nil {
		return nil, &answerError{fmt.Errorf("answer: %w", err)}
	}
	if raw, ok := claims["active"]; !ok || (string(raw) != "true" && string(raw) != "false") {
		return nil, &answerError{errors.New(`answer has no boolean "active"`)}
	}
	return claims, nil
}

// decide turns an introspection answer about the token of hash key into a
// decision, and returns the token's exp when it has one.
func (in *Introspector) decide(key tokenKey, claims map[string]json.RawMessage, now time.Time) (answer, time.Time) {
	if string(claims["active"]) != "true" {
		return answer{reason: ReasonInactive}, time.Time{}
	}
	// RFC 7662 2.2: token_type is the type of the token asked about. Only
	// access tokens are bearer credentials for keygate: a refresh token,
	// an ID token or a sender-constrained (DPoP) token is not.
	if _, present := claims["token_type"]; present {
		if tt, ok := stringMember(claims, "token_type"); !ok || !accessTokenType(tt) {
			return answer{reason: ReasonTokenType}, time.Time{}
		}
	}
	exp, hasExp, err1 := numericDate(claims, "exp")
	nbf, hasNbf, err2 := numericDate(claims, "nbf")
	switch {
	case err1 != nil || err2 != nil:
		return answer{reason: ReasonMalformed}, time.Time{}
	case hasExp && !now.Before(exp):
		return answer{reason: ReasonExpired}, time.Time{}
	case hasNbf && now.Before(nbf):
		return answer{reason: ReasonNotYetValid}, time.Time{}
	}
	if len(in.cfg.Issuers) > 0 {
		if iss, ok := stringMember(claims, "iss"); !ok || !contains(in.cfg.Issuers, iss) {
			return answer{reason: ReasonBadIssuer}, time.Time{}
		}
	}
	if len(in.cfg.Audiences) > 0 {
		auds, _, ok := audiences(claims)
		if !ok {
			return answer{reason: ReasonMalformed}, time.Time{}
		}
		if !anyOf(auds, in.cfg.Audiences) {
			return answer{reason: ReasonBadAudience}, time.Time{}
		}
	}
	if !hasExp {
		exp = time.Time{}
	}
	tok, reason := in.claims.token("introspect", claims, exp)
	if tok != nil {
		tok.SetIdentity(introspectionIdentity(key, claims))
	}
	return answer{tok: tok, reason: reason}, exp
}

// accessTokenType reports whether an introspection token_type names a
// bearer access token: "access_token" (the RFC 7662 hint's spelling),
// "Bearer" (the RFC 6750 type most servers report) or the RFC 8693 URI.
func accessTokenType(tt string) bool {
	return strings.EqualFold(tt, "access_token") || strings.EqualFold(tt, "bearer") ||
		tt == "urn:ietf:params:oauth:token-type:access_token"
}

// introspectionIdentity is an introspected token's identity for limits,
// caches and idempotency: the issuer's own id for it (iss and jti) when the
// answer has one, else the token's hash.
func introspectionIdentity(key tokenKey, claims map[string]json.RawMessage) string {
	iss, ok1 := stringMember(claims, "iss")
	jti, ok2 := stringMember(claims, "jti")
	if ok1 && ok2 && jti != "" {
		return identity("introspect", iss, jti)
	}
	return "introspect:" + hex.EncodeToString(key[:16])
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/ratelimit"
)

// envPrefix starts every variable keygate reads.
const envPrefix = "KEYGATE_"

// Config is keygate's configuration, read from KEYGATE_* environment
// variables. The README's table of variables is checked against these tags.
type Config struct {
	ListenAddr      string        `env:"LISTEN_ADDR" envDefault:":8080"`
	AdminAddr       string        `env:"ADMIN_ADDR" envDefault:":9090"`
	UpstreamURL     string        `env:"UPSTREAM_URL"`
	UpstreamCAFile  string        `env:"UPSTREAM_CA_FILE"`
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"10s"`
	UpstreamIdle    time.Duration `env:"UPSTREAM_IDLE_TIMEOUT" envDefault:"30s"`
	PolicyFile      string        `env:"POLICY_FILE"`
	TokensFile      string        `env:"TOKENS_FILE"`
	TokensReload    time.Duration `env:"TOKENS_RELOAD_INTERVAL" envDefault:"5s"`
	RedisURL        string        `env:"REDIS_URL"`
	RedisUsername   string        `env:"REDIS_USERNAME"`
	RedisPassword   string        `env:"REDIS_PASSWORD"`
	RedisSentinel   string        `env:"REDIS_SENTINEL_MASTER"`
	RedisSentinels  []string      `env:"REDIS_SENTINEL_ADDRS" envSeparator:","`
	RedisSentinelPW string        `env:"REDIS_SENTINEL_PASSWORD"`
	RedisCluster    []string      `env:"REDIS_CLUSTER_ADDRS" envSeparator:","`
	RedisDB         int           `env:"REDIS_DB" envDefault:"0"`
	RedisTLS        bool          `env:"REDIS_TLS" envDefault:"false"`
	RedisCAFile     string        `env:"REDIS_CA_FILE"`
	RedisTimeout    time.Duration `env:"REDIS_TIMEOUT" envDefault:"50ms"`
	RedisFailure    string        `env:"REDIS_FAILURE_MODE" envDefault:"local"`
	RedisLocalShare int           `env:"REDIS_LOCAL_SHARE" envDefault:"1"`
	RedisPrefix     string        `env:"REDIS_PREFIX" envDefault:"keygate:"`
	IdemTTL         time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`
	IdemFailure     string        `env:"IDEMPOTENCY_FAILURE_MODE" envDefault:"forward"`
	IdemMaxPerToken int           `env:"IDEMPOTENCY_MAX_PER_TOKEN" envDefault:"10000"`
	RateHeaders     string        `env:"RATELIMIT_HEADERS" envDefault:"draft"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" envDefault:"65536"`
	MaxAnswerBytes  int64         `env:"MAX_ANSWER_BYTES" envDefault:"262144"`
	TrustedProxies  []string      `env:"TRUSTED_PROXIES" envSeparator:","`
	IPv6Prefix      int           `env:"IPV6_PREFIX" envDefault:"64"`
	DrainTimeout    time.Duration `env:"DRAIN_TIMEOUT" envDefault:"20s"`
	ShutdownDelay   time.Duration `env:"SHUTDOWN_DELAY" envDefault:"0s"`
	HeaderTimeout   time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"5s"`
	ReadTimeout     time.Duration `env:"READ_TIMEOUT" envDefault:"30s"`
	IdleTimeout     time.Duration `env:"IDLE_TIMEOUT" envDefault:"30s"`
	MaxConns        int           `env:"MAX_CONNS" envDefault:"4096"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"json"`

	// Token sources besides the file (policy/auth), and the upstream credential.
	TokensStore          bool          `env:"TOKENS_STORE" envDefault:"false"`
	TokensCacheTTL       time.Duration `env:"TOKENS_CACHE_TTL" envDefault:"5s"`
	TokenIssuers         []string      `env:"TOKEN_ISSUERS" envSeparator:","`
	TokenAudiences       []string      `env:"TOKEN_AUDIENCES" envSeparator:","`
	JWTSecret            string        `env:"JWT_SECRET"`
	JWTSecretFile        string        `env:"JWT_SECRET_FILE"`
	JWTPublicKeysFile    string        `env:"JWT_PUBLIC_KEYS_FILE"`
	JWKSURL              string        `env:"JWKS_URL"`
	JWKSRefresh          time.Duration `env:"JWKS_REFRESH_INTERVAL" envDefault:"15m"`
	JWTAlgorithms        []string      `env:"JWT_ALGORITHMS" envSeparator:","`
	JWTTypes             []string      `env:"JWT_TYPES" envSeparator:","`
	JWTLeeway            time.Duration `env:"JWT_LEEWAY" envDefault:"30s"`
	JWTRequireLowS       bool          `env:"JWT_REQUIRE_LOW_S" envDefault:"false"`
	ClaimProducts        string        `env:"CLAIM_PRODUCTS" envDefault:"products"`
	ClaimProductPrefix   string        `env:"CLAIM_PRODUCT_PREFIX"`
	ClaimOperations      string        `env:"CLAIM_OPERATIONS" envDefault:"operations"`
	ClaimOperationPrefix string        `env:"CLAIM_OPERATION_PREFIX"`
	ClaimName            string        `env:"CLAIM_NAME" envDefault:"sub"`
	IntrospectURL        string        `env:"INTROSPECT_URL"`
	IntrospectClientID   string        `env:"INTROSPECT_CLIENT_ID"`
	IntrospectSecret     string        `env:"INTROSPECT_CLIENT_SECRET"`
	IntrospectSecretFile string        `env:"INTROSPECT_CLIENT_SECRET_FILE"`
	IntrospectTimeout    time.Duration `env:"INTROSPECT_TIMEOUT" envDefault:"2s"`
	IntrospectCacheTTL   time.Duration `env:"INTROSPECT_CACHE_TTL" envDefault:"30s"`
	UpstreamAuth         string        `env:"UPSTREAM_AUTH"`
	UpstreamAuthFile     string        `env:"UPSTREAM_AUTH_FILE"`

	trusted []netip.Prefix
}

// loadConfig reads the configuration from environ ("KEY=value" pairs) and
// validates it. needUpstream is false for the demo, which brings its own.
// Every problem is reported, one per line, each naming its variable.
func loadConfig(environ []string, needUpstream bool) (*Config, error) {
	m := env.ToMap(environ)
	var c Config
	err := env.ParseWithOptions(&c, env.Options{Environment: m, Prefix: envPrefix})
	if err == nil {
		if err := c.validate(needUpstream); err != nil {
			return nil, err
		}
		return &c, nil
	}
	// Report the rest too: validate again with the unreadable variables at
	// their defaults, so that their own rules do not repeat the problem.
	parseErr, bad := envErrors(err, m)
	rest := map[string]string{}
	for k, v := range m {
		if !bad[k] {
			rest[k] = v
		}
	}
	c = Config{}
	if env.ParseWithOptions(&c, env.Options{Environment: rest, Prefix: envPrefix}) != nil {
		return nil, parseErr
	}
	return nil, errors.Join(parseErr, c.validate(needUpstream))
}

// envErrors turns caarlos0/env's errors, which name Go fields, into lines
// that name the variable and its value; bad holds the variables named.
func envErrors(err error, m map[string]string) (_ error, bad map[string]bool) {
	bad = map[string]bool{}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err, bad
	}
	keys := map[string]string{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		keys[t.Field(i).Name] = envPrefix + t.Field(i).Tag.Get("env")
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			key := keys[pe.Name]
			bad[key] = true
			errs = append(errs, fmt.Errorf("%s: %q is not a valid %s", key, m[key], kindOf(pe.Type)))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...), bad
}

func kindOf(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "duration (e.g. 10s, 1m)"
	case reflect.TypeOf(int64(0)), reflect.TypeOf(0):
		return "whole number"
	case reflect.TypeOf(false):
		return "boolean (true or false)"
	}
	return t.String()
}

func (c *Config) validate(needUpstream bool) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", envPrefix, key, fmt.Sprintf(format, args...)))
	}
	for key, addr := range map[string]string{"LISTEN_ADDR": c.ListenAddr, "ADMIN_ADDR": c.AdminAddr} {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port (e.g. :8080)", addr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(key, "%q has no valid port", addr)
		}
	}
	if c.ListenAddr == c.AdminAddr && !strings.HasSuffix(c.ListenAddr, ":0") {
		bad("ADMIN_ADDR", "%q is the same address as KEYGATE_LISTEN_ADDR", c.AdminAddr)
	}
	switch {
	case c.UpstreamURL == "" && needUpstream:
		bad("UPSTREAM_URL", "is required: the license backend's base URL, e.g. http://127.0.0.1:3000")
	case c.UpstreamURL != "":
		u, err := url.Parse(c.UpstreamURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("UPSTREAM_URL", "%q must be an http:// or https:// URL with a host", c.UpstreamURL)
		case u.User != nil:
			bad("UPSTREAM_URL", "must not carry credentials")
		case u.RawQuery != "" || u.Fragment != "":
			bad("UPSTREAM_URL", "must not have a query or fragment")
		}
	}
	if c.UpstreamCAFile != "" {
		if data, err := os.ReadFile(c.UpstreamCAFile); err != nil {
			bad("UPSTREAM_CA_FILE", "%v", err)
		} else if !proxy.ParseCAFile(data) {
			bad("UPSTREAM_CA_FILE", "%s holds no PEM certificate", c.UpstreamCAFile)
		}
	}
	if c.UpstreamTimeout <= 0 {
		bad("UPSTREAM_TIMEOUT", "must be > 0")
	}
	if c.UpstreamIdle < time.Millisecond {
		bad("UPSTREAM_IDLE_TIMEOUT", "must be at least 1ms")
	}
	if c.TokensReload < 100*time.Millisecond {
		bad("TOKENS_RELOAD_INTERVAL", "must be at least 100ms")
	}
	if c.DrainTimeout <= 0 {
		bad("DRAIN_TIMEOUT", "must be > 0")
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay > maxShutdownDelay {
		bad("SHUTDOWN_DELAY", "%s must be between 0s and %s", c.ShutdownDelay, maxShutdownDelay)
	}
	if c.HeaderTimeout <= 0 {
		bad("READ_HEADER_TIMEOUT", "must be > 0")
	}
	if c.ReadTimeout < c.HeaderTimeout {
		bad("READ_TIMEOUT", "%s must be at least KEYGATE_READ_HEADER_TIMEOUT (%s)", c.ReadTimeout, c.HeaderTimeout)
	}
	if c.IdleTimeout <= 0 {
		bad("IDLE_TIMEOUT", "must be > 0")
	}
	if c.IdemMaxPerToken < 1 {
		bad("IDEMPOTENCY_MAX_PER_TOKEN", "%d must be at least 1", c.IdemMaxPerToken)
	}
	if c.IPv6Prefix < proxy.MinIPv6Prefix || c.IPv6Prefix > proxy.MaxIPv6Prefix {
		bad("IPV6_PREFIX", "%d must be between %d and %d", c.IPv6Prefix, proxy.MinIPv6Prefix, proxy.MaxIPv6Prefix)
	}
	if c.MaxConns < 1 || c.MaxConns > 1<<20 {
		bad("MAX_CONNS", "%d must be between 1 and 1048576", c.MaxConns)
	}
	if msg := redisURLShape(c.RedisURL); msg != "" {
		bad("REDIS_URL", "%s", msg)
	} else if c.redisConfigured() {
		if err := c.redisConfig().Validate(); err != nil {
			errs = append(errs, redisErrors(err)...)
		}
	}
	if c.RedisTimeout <= 0 {
		bad("REDIS_TIMEOUT", "must be > 0")
	}
	switch ratelimit.Mode(c.RedisFailure) {
	case ratelimit.ModeLocal, ratelimit.ModeOpen, ratelimit.ModeClosed:
	default:
		bad("REDIS_FAILURE_MODE", "%q must be local, open or closed", c.RedisFailure)
	}
	if c.RedisLocalShare < 1 || c.RedisLocalShare > 1024 {
		bad("REDIS_LOCAL_SHARE", "%d must be between 1 and 1024", c.RedisLocalShare)
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} ") {
		bad("REDIS_PREFIX", "%q must be non-empty, without braces or spaces", c.RedisPrefix)
	}
	if c.IdemTTL < time.Second {
		bad("IDEMPOTENCY_TTL", "must be at least 1s")
	}
	if c.IdemFailure != "forward" && c.IdemFailure != "refuse" {
		bad("IDEMPOTENCY_FAILURE_MODE", "%q must be forward or refuse", c.IdemFailure)
	}
	if _, err := proxy.ParseHeaderMode(c.RateHeaders); err != nil {
		bad("RATELIMIT_HEADERS", "%v", err)
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > 16<<20 {
		bad("MAX_BODY_BYTES", "%d must be between 1 and 16777216", c.MaxBodyBytes)
	}
	if c.MaxAnswerBytes < 1 || c.MaxAnswerBytes > 16<<20 {
		bad("MAX_ANSWER_BYTES", "%d must be between 1 and 16777216", c.MaxAnswerBytes)
	}
	c.trusted = c.trusted[:0]
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				bad("TRUSTED_PROXIES", "%q is not a CIDR (e.g. 10.0.0.0/8) or an IP address", s)
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	c.validateAuth(bad)
	if _, ok := logLevels[strings.ToLower(c.LogLevel)]; !ok {
		bad("LOG_LEVEL", "%q must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT", "%q must be json or text", c.LogFormat)
	}
	return errors.Join(errs...)
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/policy/auth"
)

// jwtConfigured reports whether any JWT key is set.
func (c *Config) jwtConfigured() bool {
	return c.JWTSecret != "" || c.JWTSecretFile != "" || c.JWTPublicKeysFile != "" || c.JWKSURL != ""
}

// tokenSourceConfigured reports whether any token source is set.
func (c *Config) tokenSourceConfigured() bool {
	return c.TokensFile != "" || c.TokensStore || c.jwtConfigured() || c.IntrospectURL != ""
}

// validateAuth checks the token-source variables that need no file or
// network; newAuth reports the rest (unreadable files, bad keys).
func (c *Config) validateAuth(bad func(key, format string, args ...any)) {
	if c.TokensStore && !c.redisConfigured() {
		bad("TOKENS_STORE", "needs Redis: set KEYGATE_REDIS_URL (or the Sentinel or Cluster addresses)")
	}
	if c.TokensCacheTTL <= 0 || c.TokensCacheTTL > time.Minute {
		bad("TOKENS_CACHE_TTL", "%s must be between 1ns and 1m: it is how late a revocation may take effect", c.TokensCacheTTL)
	}
	if c.JWTSecret != "" && c.JWTSecretFile != "" {
		bad("JWT_SECRET", "set it or KEYGATE_JWT_SECRET_FILE, not both")
	}
	if c.jwtConfigured() {
		if len(c.TokenIssuers) == 0 {
			bad("TOKEN_ISSUERS", "is required with a JWT key: the accepted iss values, comma-separated")
		}
		if len(c.TokenAudiences) == 0 {
			bad("TOKEN_AUDIENCES", "is required with a JWT key: keygate's aud names, comma-separated")
		}
	} else if len(c.JWTAlgorithms) > 0 || len(c.JWTTypes) > 0 {
		bad("JWT_ALGORITHMS", "set without a JWT key (KEYGATE_JWT_SECRET, _SECRET_FILE, _PUBLIC_KEYS_FILE or KEYGATE_JWKS_URL)")
	}
	if c.JWKSRefresh < 10*time.Second {
		bad("JWKS_REFRESH_INTERVAL", "must be at least 10s")
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > 5*time.Minute {
		bad("JWT_LEEWAY", "%s must be between 0s and 5m", c.JWTLeeway)
	}
	if c.IntrospectSecret != "" && c.IntrospectSecretFile != "" {
		bad("INTROSPECT_CLIENT_SECRET", "set it or KEYGATE_INTROSPECT_CLIENT_SECRET_FILE, not both")
	}
	if c.IntrospectTimeout <= 0 {
		bad("INTROSPECT_TIMEOUT", "must be > 0")
	}
	if c.IntrospectCacheTTL <= 0 {
		bad("INTROSPECT_CACHE_TTL", "must be > 0")
	}
	if c.UpstreamAuth != "" && c.UpstreamAuthFile != "" {
		bad("UPSTREAM_AUTH", "set it or KEYGATE_UPSTREAM_AUTH_FILE, not both")
	}
}

// secret returns value, or the content of file (trimmed), naming key on
// error.
func secret(key, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s%s_FILE: %w", envPrefix, key, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// tokenAuth is what serve needs from the token sources.
type tokenAuth struct {
	chain    *auth.Chain
	upstream *auth.UpstreamAuth
	jwks     *auth.JWKS // nil without KEYGATE_JWKS_URL
}

// newAuth builds the token chain in its documented order (file, Redis
// store, JWT, introspection) and the upstream credential. client is the
// shared Redis client, nil without Redis. Every problem is reported, each
// naming its variable.
func newAuth(cfg *Config, file *auth.TokenFile, client redis.UniversalClient, log *slog.Logger) (*tokenAuth, error) {
	var errs []error
	fail := func(key string, err error) { errs = append(errs, fmt.Errorf("%s%s: %w", envPrefix, key, err)) }
	var sources []auth.Source
	ta := &tokenAuth{}
	if file != nil {
		s, err := auth.NewFileSource(file)
		if err != nil {
			fail("TOKENS_FILE", err)
		} else {
			sources = append(sources, s)
		}
	}
	if cfg.TokensStore && client != nil {
		s, err := auth.NewStore(auth.StoreConfig{Client: client, Prefix: cfg.RedisPrefix, CacheTTL: cfg.TokensCacheTTL})
		if err != nil {
			fail("TOKENS_STORE", err)
		} else {
			sources = append(sources, s)
		}
	}
	claims := auth.ClaimMapping{
		Products: cfg.ClaimProducts, ProductPrefix: cfg.ClaimProductPrefix,
		Operations: cfg.ClaimOperations, OperationPrefix: cfg.ClaimOperationPrefix, Name: cfg.ClaimName,
	}
	if cfg.jwtConfigured() {
		jc := auth.JWTConfig{
			Issuers: cfg.TokenIssuers, Audiences: cfg.TokenAudiences, Algorithms: cfg.JWTAlgorithms,
			Types: cfg.JWTTypes, Leeway: cfg.JWTLeeway, Claims: claims, RequireLowS: cfg.JWTRequireLowS,
		}
		if sec, err := secret("JWT_SECRET", cfg.JWTSecret, cfg.JWTSecretFile); err != nil {
			errs = append(errs, err)
		} else if sec != "" {
			jc.Secret = []byte(sec)
		}
		if cfg.JWTPublicKeysFile != "" {
			data, err := os.ReadFile(cfg.JWTPublicKeysFile)
			if err == nil {
				jc.PublicKeys, err = auth.ParsePEMKeys(data)
			}
			if err != nil {
				fail("JWT_PUBLIC_KEYS_FILE", err)
			}
		}
		if cfg.JWKSURL != "" {
			ks, err := auth.NewJWKS(auth.JWKSConfig{URL: cfg.JWKSURL, Refresh: cfg.JWKSRefresh, Logger: log})
			if err != nil {
				fail("JWKS_URL", err)
			}
			jc.JWKS, ta.jwks = ks, ks
		}
		if len(errs) == 0 {
			s, err := auth.NewJWT(jc)
			if err != nil {
				fail("JWT_*", err) // names the field: Issuers, Audiences, Secret, Algorithms...
			} else {
				sources = append(sources, s)
			}
		}
	}
	if cfg.IntrospectURL != "" {
		sec, err := secret("INTROSPECT_CLIENT_SECRET", cfg.IntrospectSecret, cfg.IntrospectSecretFile)
		if err != nil {
			errs = append(errs, err)
		}
		s, err := auth.NewIntrospector(auth.IntrospectionConfig{
			URL: cfg.IntrospectURL, ClientID: cfg.IntrospectClientID, ClientSecret: sec,
			Timeout: cfg.IntrospectTimeout, CacheTTL: cfg.IntrospectCacheTTL,
			Issuers: cfg.TokenIssuers, Audiences: cfg.TokenAudiences, Claims: claims,
		})
		if err != nil {
			fail("INTROSPECT_URL", err)
		} else {
			sources = append(sources, s)
		}
	}
	up, err := auth.NewUpstreamAuth(cfg.UpstreamAuth, cfg.UpstreamAuthFile)
	if err != nil {
		fail("UPSTREAM_AUTH", err)
	}
	ta.upstream = up
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ta.chain, err = auth.NewChain(sources...)
	return ta, err
}

// warmUp fetches the JWKS once at start, so that the first requests do not
// wait for it; a JWKS endpoint that is down is logged, not fatal.
func (ta *tokenAuth) warmUp(ctx context.Context, log *slog.Logger) {
	if ta.jwks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ta.jwks.Refresh(ctx); err != nil {
		log.Error("JWKS unreachable at start; JWTs are refused (500) until it answers", "err", err)
	}
}

// Package redisconn builds the one kind of Redis client keygate uses, for
// rate limits, the token store and Idempotency-Key answers alike: from a
// single node URL, Sentinel or Cluster addresses, with ACL credentials and
// TLS. It checks a Config whole and reports every problem as a typed
// FieldError on the field to fix, never quoting a password. It knows nothing
// of what the client is used for.
package redisconn

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client defaults, short because a rate limiter that waits is worse than one
// that falls back: each call is bounded by its caller's deadline anyway
// (ratelimit.RedisOptions.Timeout for each Allow), and these only bound what
// no request waits for (background dials, pings).
const (
	defaultDialTimeout  = 250 * time.Millisecond
	defaultReadTimeout  = 100 * time.Millisecond
	defaultWriteTimeout = 100 * time.Millisecond
)

// Config says how to reach Redis: set exactly one of URL (a single
// node), SentinelAddrs with SentinelMaster, or ClusterAddrs. The zero value
// is invalid.
type Config struct {
	// URL is a single node: redis://[user[:password]@]host[:port][/db], or
	// rediss:// for TLS. go-redis query parameters (dial_timeout=...) are
	// accepted.
	URL string
	// Username and Password authenticate (Redis ACL; Username "" means the
	// default user) with every mode. With URL, they may be set here or in
	// the URL, not both.
	Username, Password string
	// SentinelMaster is the master name Sentinel knows; required with
	// SentinelAddrs.
	SentinelMaster string
	// SentinelAddrs are host:port addresses of Sentinels.
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves, when they need it.
	SentinelUsername, SentinelPassword string
	// ClusterAddrs are host:port addresses of some Redis Cluster nodes.
	ClusterAddrs []string
	// DB selects a database; 0 is the default one and the only one in a
	// cluster. With URL, it may be set here or in the URL path.
	DB int
	// TLS turns TLS on; a rediss:// URL does too.
	TLS bool
	// TLSServerName is the name to verify the server's certificate
	// against; "" means the host dialled.
	TLSServerName string
	// CAFile is a PEM file of the CAs to trust instead of the system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate; for tests only.
	InsecureSkipVerify bool
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt and socket operation; 0 means 250ms, 100ms and 100ms.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per node; 0 means go-redis's
	// default, 10 per CPU.
	PoolSize int
}

// Validate reports every problem of c at once, each naming its field. It
// never reveals a password.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

// New returns a client for the Redis c describes. It does not
// connect: go-redis dials on first use and redials by itself. The client
// honours context deadlines and does not retry, so that the caller's
// deadline (ratelimit.RedisOptions.Timeout for the limiter) bounds every call
// and a failure reaches the caller's fallback at once.
func New(c Config) (redis.UniversalClient, error) {
	p, err := c.parse()
	if err != nil {
		return nil, err
	}
	switch {
	case p.node != nil:
		return redis.NewClient(p.node), nil
	case len(c.SentinelAddrs) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            c.SentinelMaster,
			SentinelAddrs:         c.SentinelAddrs,
			SentinelUsername:      c.SentinelUsername,
			SentinelPassword:      c.SentinelPassword,
			Username:              c.Username,
			Password:              c.Password,
			DB:                    c.DB,
			TLSConfig:             p.tls,
			DialTimeout:           c.dialTimeout(),
			ReadTimeout:           c.readTimeout(),
			WriteTimeout:          c.writeTimeout(),
			PoolTimeout:           c.poolTimeout(),
			PoolSize:              c.PoolSize,
			MaxRetries:            -1,
			DialerRetries:         1,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		}), nil
	default:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:        c.ClusterAddrs,
			Username:     c.Username,
			Password:     c.Password,
			TLSConfig:    p.tls,
			DialTimeout:  c.dialTimeout(),
			ReadTimeout:  c.readTimeout(),
			WriteTimeout: c.writeTimeout(),
			PoolTimeout:  c.poolTimeout(),
			PoolSize:     c.PoolSize,
			MaxRetries:   -1,
			// go-redis retries a cluster command after a network error, whose
			// reply may be all that was lost, up to MaxRedirects times: a rate
			// limit script would count its request again. -1: no second try
			// (MOVED and ASK are not followed either; the call fails, and
			// the slot map reloads for the next one).
			MaxRedirects:          -1,
			DialerRetries:         1,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		}), nil
	}
}

// parsed is a valid Config, ready for go-redis.
type parsed struct {
	node *redis.Options // set for URL
	tls  *tls.Config    // nil without TLS
}

func (c Config) parse() (parsed, error) {
	var p parsed
	var errs []*FieldError
	bad := func(field, format string, a ...any) {
		errs = append(errs, fieldProblem(field, fmt.Sprintf(format, a...)))
	}
	related := func(field string, text func(name func(string) string) string) {
		errs = append(errs, fieldRelated(field, text))
	}

	var modes []string // the ways to reach Redis that are set
	if c.URL != "" {
		modes = append(modes, "URL")
	}
	if len(c.SentinelAddrs) > 0 || c.SentinelMaster != "" {
		modes = append(modes, "SentinelAddrs")
		if len(c.SentinelAddrs) == 0 {
			related("SentinelAddrs", func(n func(string) string) string { return "required with " + n("SentinelMaster") })
		}
		if c.SentinelMaster == "" {
			related("SentinelMaster", func(n func(string) string) string { return "required with " + n("SentinelAddrs") })
		}
	}
	if len(c.SentinelAddrs) == 0 {
		for _, f := range []struct {
			name string
			set  bool
		}{{"SentinelUsername", c.SentinelUsername != ""}, {"SentinelPassword", c.SentinelPassword != ""}} {
			if f.set {
				related(f.name, func(n func(string) string) string { return "set without " + n("SentinelAddrs") })
			}
		}
	}
	if len(c.ClusterAddrs) > 0 {
		modes = append(modes, "ClusterAddrs")
		if c.DB != 0 {
			related("DB", func(n func(string) string) string {
				return "must be 0 with " + n("ClusterAddrs") + ": a Redis Cluster has database 0 only"
			})
		}
	}
	switch {
	case len(modes) == 0:
		related("URL", func(n func(string) string) string {
			return "not set, nor " + n("SentinelAddrs") + " nor " + n("ClusterAddrs") + ": set one of them"
		})
	case len(modes) > 1:
		related(modes[0], func(n func(string) string) string {
			others := make([]string, len(modes)-1)
			for i, m := range modes[1:] {
				others[i] = n(m)
			}
			return "set together with " + strings.Join(others, " and ") + ": set only one"
		})
	}
	errs = append(errs, checkAddrs("SentinelAddrs", c.SentinelAddrs)...)
	errs = append(errs, checkAddrs("ClusterAddrs", c.ClusterAddrs)...)
	if c.DB < 0 {
		bad("DB", "%d must be >= 0", c.DB)
	}
	if c.PoolSize < 0 {
		bad("PoolSize", "%d must be >= 0", c.PoolSize)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.d < 0 {
			bad(d.name, "%s must be >= 0", d.d)
		}
	}

	useTLS := c.TLS
	if c.URL != "" {
		node, urlErrs := c.parseURL()
		if urlErrs != nil {
			errs = append(errs, urlErrs...)
		} else {
			p.node = node
			useTLS = useTLS || node.TLSConfig != nil
		}
	}
	if useTLS {
		cfg, err := c.tlsConfig(p.node)
		if err != nil {
			errs = append(errs, err)
		}
		p.tls = cfg
		if p.node != nil {
			p.node.TLSConfig = cfg
		}
	} else {
		for _, f := range []struct {
			name string
			set  bool
		}{{"CAFile", c.CAFile != ""}, {"InsecureSkipVerify", c.InsecureSkipVerify}, {"TLSServerName", c.TLSServerName != ""}} {
			if f.set {
				related(f.name, func(n func(string) string) string {
					return "set but TLS is off; set " + n("TLS") + " or use a rediss:// URL"
				})
			}
		}
	}
	if len(errs) > 0 {
		return parsed{}, &ConfigError{Problems: errs}
	}
	return p, nil
}

// parseURL reads URL into options with keygate's defaults. Its errors never
// quote the URL, which may hold a password.
func (c Config) parseURL() (*redis.Options, []*FieldError) {
	u, err := url.Parse(c.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return nil, []*FieldError{fieldCause("URL", err)}
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, []*FieldError{fieldProblem("URL", fmt.Sprintf("scheme %q must be redis or rediss", u.Scheme))}
	}
	if u.Host == "" {
		return nil, []*FieldError{fieldProblem("URL", "no host")}
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, []*FieldError{fieldCause("URL", err)}
	}
	var errs []*FieldError
	twice := func(field string) {
		errs = append(errs, fieldRelated(field, func(n func(string) string) string {
			return "also set in " + n("URL") + "; set it in one place"
		}))
	}
	if c.Username != "" && o.Username != "" {
		twice("Username")
	}
	if c.Password != "" && o.Password != "" {
		twice("Password")
	}
	if c.DB != 0 && o.DB != 0 {
		twice("DB")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if c.Username != "" {
		o.Username = c.Username
	}
	if c.Password != "" {
		o.Password = c.Password
	}
	if c.DB != 0 {
		o.DB = c.DB
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = c.dialTimeout()
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = c.readTimeout()
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = c.writeTimeout()
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = c.poolTimeout()
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if c.PoolSize != 0 {
		o.PoolSize = c.PoolSize
	}
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	return o, nil
}

// tlsConfig builds the TLS settings; node, when not nil, may carry what a
// rediss:// URL asked for.
func (c Config) tlsConfig(node *redis.Options) (*tls.Config, *FieldError) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if node != nil && node.TLSConfig != nil {
		cfg = node.TLSConfig.Clone()
	}
	if c.TLSServerName != "" {
		cfg.ServerName = c.TLSServerName
	}
	if c.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fieldCause("CAFile", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fieldProblem("CAFile", "no PEM certificate in "+c.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func checkAddrs(field string, addrs []string) []*FieldError {
	var errs []*FieldError
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			e := fieldProblem(field, fmt.Sprintf("%q must be host:port", a))
			e.Index = i
			errs = append(errs, e)
		}
	}
	return errs
}

func (c Config) dialTimeout() time.Duration  { return cmp.Or(c.DialTimeout, defaultDialTimeout) }
func (c Config) readTimeout() time.Duration  { return cmp.Or(c.ReadTimeout, defaultReadTimeout) }
func (c Config) writeTimeout() time.Duration { return cmp.Or(c.WriteTimeout, defaultWriteTimeout) }

// poolTimeout bounds the wait for a pooled connection of a call without a
// deadline of its own. Every call keygate makes carries one (each Allow is
// bounded by ratelimit.RedisOptions.Timeout), and go-redis waits for the pool until the
// earlier of the two, so this is long on purpose: the caller's deadline
// governs. A short fixed wait turned local congestion (more callers than
// connections on a busy CPU) into "connection pool timeout" errors, and so
// into fallback decisions, while Redis itself was answering. Waits stay
// short anyway: a busy connection is freed within the socket timeouts.
func (c Config) poolTimeout() time.Duration { return time.Minute }

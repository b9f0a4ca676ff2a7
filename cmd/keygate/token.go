package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/suggest"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/policy/auth"
)

const tokenUsage = `usage:
  keygate token add -name NAME -products ID,ID|* [-operations ROUTE,ROUTE] [-expires RFC3339 | -ttl DURATION]
  keygate token list
  keygate token revoke NAME|HASH-PREFIX

Manage the tokens of the Redis token store (KEYGATE_TOKENS_STORE), reached
with the KEYGATE_REDIS_* variables. add prints the new token on stdout, once:
only its SHA-256 is stored.
`

// tokenCmd runs "keygate token add|list|revoke".
func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		return usagef("token needs a subcommand: add, list or revoke (see keygate help token)")
	}
	switch args[0] {
	case "add", "list", "revoke":
	default:
		msg := fmt.Sprintf("token: unknown subcommand %q", args[0])
		if s := suggest.Closest(args[0], []string{"add", "list", "revoke"}); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		return usagef("%s; subcommands: add, list, revoke", msg)
	}
	if args[0] == "list" && len(args) > 1 {
		return usagef("token list takes no arguments (got %q)", args[1])
	}
	if args[0] == "revoke" && len(args) != 2 {
		return usagef("token revoke takes one argument: the token's name or at least 8 hex digits of its SHA-256")
	}
	cfg, err := loadConfig(environ, false)
	if err != nil {
		return err
	}
	var add *tokenRequest
	if args[0] == "add" { // the flags are checked before Redis is reached
		if add, err = parseTokenAdd(args[1:], cfg); err != nil {
			return err
		}
	}
	if !cfg.redisConfigured() {
		return fmt.Errorf("%sREDIS_URL (or the Sentinel or Cluster addresses) is required: the token store lives in Redis", envPrefix)
	}
	redis.SetLogger(redisLogger{newLogger(cfg, stderr)}) // go-redis's own lines only at KEYGATE_LOG_LEVEL=debug
	// A CLI may wait longer for Redis than a request may.
	client, err := cfg.newRedisClient(2 * time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	store, err := auth.NewStore(auth.StoreConfig{Client: client, Prefix: cfg.RedisPrefix, CacheTTL: cfg.TokensCacheTTL})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch args[0] {
	case "add":
		token, err := store.Add(ctx, add.name, add.products, add.operations, add.expires)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "added token %s (token_hash %s); store it now: it is never shown again\n", add.name, policy.HashToken(token))
		return nil
	case "list":
		return tokenList(ctx, store, stdout)
	default: // revoke
		if rec, ok := findRevoked(ctx, store, args[1]); ok {
			fmt.Fprintf(stdout, "%s (sha256 %s) was already revoked on %s\n", rec.Name, rec.Hash[:12], rec.Revoked.UTC().Format(time.RFC3339))
			return nil
		}
		rec, err := store.Revoke(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (sha256 %s); every replica refuses it within %s (KEYGATE_TOKENS_CACHE_TTL)\n",
			rec.Name, rec.Hash[:12], cfg.TokensCacheTTL)
		return nil
	}
}

// findRevoked finds a revoked token by name or hash prefix: a revoked
// token keeps its record, not its name, so Revoke calls it unknown.
func findRevoked(ctx context.Context, store *auth.Store, ref string) (auth.Record, bool) {
	recs, err := store.List(ctx)
	if err != nil {
		return auth.Record{}, false // Revoke reports the store's trouble
	}
	var found auth.Record
	for _, r := range recs {
		if r.Name != ref && (len(ref) < 8 || !strings.HasPrefix(r.Hash, strings.ToLower(ref))) {
			continue
		}
		if r.Revoked.IsZero() {
			return auth.Record{}, false // a live token answers to it: revoke that one
		}
		found = r
	}
	return found, !found.Revoked.IsZero()
}

// tokenRequest is a checked "token add" command line.
type tokenRequest struct {
	name                 string
	products, operations []string
	expires              time.Time
}

// parseTokenAdd checks the flags of "token add", reporting every problem.
func parseTokenAdd(args []string, cfg *Config) (*tokenRequest, error) {
	fs := flag.NewFlagSet("token add", flag.ContinueOnError)
	name := fs.String("name", "", "token name, for logs and token list (required)")
	products := fs.String("products", "", `comma-separated product ids, or "*" for all (required)`)
	operations := fs.String("operations", "", "comma-separated route names it may call (default: all)")
	expires := fs.String("expires", "", "RFC 3339 time from which it is refused, e.g. 2027-01-01T00:00:00Z")
	ttlFlag := fs.String("ttl", "", "lifetime from now, e.g. 720h (instead of -expires)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var errs []error
	if *name == "" {
		errs = append(errs, errors.New("-name is required"))
	}
	if *products == "" {
		errs = append(errs, errors.New(`-products is required: product ids, or "*" for all`))
	}
	ttl := new(time.Duration)
	if *ttlFlag != "" {
		d, err := time.ParseDuration(*ttlFlag)
		if err != nil {
			errs = append(errs, fmt.Errorf("-ttl %q must be a duration such as 720h (hours; there is no day unit)", *ttlFlag))
		}
		*ttl = d
	}
	var exp time.Time
	switch {
	case *expires != "" && *ttl != 0:
		errs = append(errs, errors.New("-expires and -ttl: give one"))
	case *expires != "":
		var err error
		if exp, err = time.Parse(time.RFC3339, *expires); err != nil {
			errs = append(errs, fmt.Errorf("-expires %q must be an RFC 3339 time such as 2027-01-01T00:00:00Z", *expires))
		}
	case *ttl < 0:
		errs = append(errs, errors.New("-ttl must be positive"))
	case *ttl > 0:
		exp = time.Now().Add(*ttl)
	}
	ops := splitList(*operations)
	pol, err := loadPolicy(cfg.PolicyFile)
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, op := range ops {
			if !slices.ContainsFunc(pol.Routes, func(r *policy.Route) bool { return r.Name == op }) {
				errs = append(errs, fmt.Errorf("-operations: %q is not a route of the policy", op))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &tokenRequest{name: *name, products: splitList(*products), operations: ops, expires: exp}, nil
}

func tokenList(ctx context.Context, store *auth.Store, stdout io.Writer) error {
	recs, err := store.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tPRODUCTS\tOPERATIONS\tEXPIRES\tCREATED\tSHA256")
	for _, r := range recs {
		ops, exp := strings.Join(r.Operations, ","), "never"
		if ops == "" {
			ops = "all"
		}
		if !r.Expires.IsZero() {
			exp = r.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status(now), strings.Join(r.Products, ","), ops,
			exp, r.Created.UTC().Format(time.RFC3339), r.Hash[:12])
	}
	return tw.Flush()
}

// splitList splits a comma-separated flag, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

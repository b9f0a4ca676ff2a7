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

	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/policy/auth"
	"github.com/keygate/keygate/ratelimit"
)

const tokenUsage = `Usage:
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
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	cfg, err := loadConfig(environ, false)
	if err != nil {
		return err
	}
	if !cfg.redisConfigured() {
		return fmt.Errorf("%sREDIS_URL (or the Sentinel or Cluster addresses) is required: the token store lives in Redis", envPrefix)
	}
	rc := cfg.redisConfig()
	rc.DialTimeout, rc.ReadTimeout, rc.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second // a CLI may wait
	client, err := ratelimit.NewRedisClient(rc)
	if err != nil {
		return fmt.Errorf("%sREDIS_URL: %w", envPrefix, err)
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
		return tokenAdd(ctx, store, cfg, args[1:], stdout, stderr)
	case "list":
		if len(args) > 1 {
			return errors.New("token list takes no arguments")
		}
		return tokenList(ctx, store, stdout)
	case "revoke":
		if len(args) != 2 {
			return errors.New("token revoke takes one argument: the token's name or at least 8 hex digits of its SHA-256")
		}
		rec, err := store.Revoke(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (sha256 %s); every replica refuses it within %s (KEYGATE_TOKENS_CACHE_TTL)\n",
			rec.Name, rec.Hash[:12], cfg.TokensCacheTTL)
		return nil
	}
	fmt.Fprint(stderr, tokenUsage)
	return errUsage
}

func tokenAdd(ctx context.Context, store *auth.Store, cfg *Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "token name: lower case letters, digits, - or _ (required)")
	products := fs.String("products", "", `comma-separated product ids, or "*" for all (required)`)
	operations := fs.String("operations", "", "comma-separated route names it may call (default: all)")
	expires := fs.String("expires", "", "RFC 3339 time from which it is refused, e.g. 2027-01-01T00:00:00Z")
	ttl := fs.Duration("ttl", 0, "lifetime from now, e.g. 720h (instead of -expires)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token add: unexpected argument %q", fs.Arg(0))
	}
	var errs []error
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
		return err
	}
	token, err := store.Add(ctx, *name, splitList(*products), ops, exp)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "added token %s (token_hash %s); store it now: it is never shown again\n", *name, policy.HashToken(token))
	return nil
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

package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/policy"
)

// Store defaults.
const (
	DefaultStoreCacheTTL  = 5 * time.Second
	DefaultStoreCacheSize = 10000
	DefaultStoreTimeout   = 250 * time.Millisecond
	DefaultStoreRetention = 30 * 24 * time.Hour
	DefaultTokenPrefix    = "kg_"
)

// Store errors, for the CLI.
var (
	ErrNameTaken = errors.New("a token with this name exists already; revoke it first or pick another name")
	ErrNotFound  = errors.New("no such token")
	ErrAmbiguous = errors.New("hash prefix matches several tokens; give more digits")
)

// StoreConfig says where the token store lives and how lookups are cached.
type StoreConfig struct {
	// Client reaches Redis (see redisconn.New). Required.
	Client redis.UniversalClient
	// Prefix starts every key, inside braces so that it is also the
	// Redis Cluster hash tag: "{keygate:}auth/token/<sha256>". "" means
	// "keygate:"; no braces.
	Prefix string
	// TokenPrefix starts every token Add issues, and the store recognizes
	// only tokens that start with it; "" means "kg_".
	TokenPrefix string
	// CacheTTL is how long a replica reuses an answer (a record, or
	// "unknown", "revoked", "expired") without asking Redis: a revocation
	// reaches every replica within it. 0 means DefaultStoreCacheTTL (5s).
	CacheTTL time.Duration
	// NegativeTTL is CacheTTL for rejections; 0 means CacheTTL.
	NegativeTTL time.Duration
	// CacheSize bounds the cached answers; 0 means DefaultStoreCacheSize.
	CacheSize int
	// Timeout bounds each lookup in Redis; 0 means DefaultStoreTimeout.
	Timeout time.Duration
	// Retention is how long a record is kept after it expires or is
	// revoked (then lookups say revoked or expired rather than unknown,
	// and List shows it); 0 means DefaultStoreRetention (30 days).
	Retention time.Duration
}

// Store keeps access tokens in Redis, by the SHA-256 of the token: the
// token itself is shown once, by Add, and never stored. It is a Source for
// the tokens it issued, and the backend of "keygate token add|revoke|list".
// Make one with NewStore; the zero value is not usable. It is safe for
// concurrent use.
type Store struct {
	cfg    StoreConfig
	prefix string // "{Prefix}auth/"
	cache  *cache
	flight flight[answer]
	now    func() time.Time
}

// NewStore checks cfg and returns a store. It does not connect: Redis may
// be down at start.
func NewStore(cfg StoreConfig) (*Store, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client: required"))
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, "keygate:")
	if strings.ContainsAny(cfg.Prefix, "{} ") {
		errs = append(errs, fmt.Errorf("Prefix: %q must not hold braces or spaces: it is the cluster hash tag", cfg.Prefix))
	}
	cfg.TokenPrefix = cmp.Or(cfg.TokenPrefix, DefaultTokenPrefix)
	if !bearerSyntax(cfg.TokenPrefix) || strings.ContainsAny(cfg.TokenPrefix, ".=") {
		errs = append(errs, fmt.Errorf("TokenPrefix: %q must be letters, digits, - or _", cfg.TokenPrefix))
	}
	if cfg.CacheTTL < 0 || cfg.NegativeTTL < 0 || cfg.CacheSize < 0 || cfg.Timeout < 0 || cfg.Retention < 0 {
		errs = append(errs, errors.New("CacheTTL, NegativeTTL, CacheSize, Timeout, Retention: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: store: %w", err)
	}
	cfg.CacheTTL = orDefault(cfg.CacheTTL, DefaultStoreCacheTTL)
	cfg.NegativeTTL = orDefault(cfg.NegativeTTL, cfg.CacheTTL)
	cfg.CacheSize = cmp.Or(cfg.CacheSize, DefaultStoreCacheSize)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultStoreTimeout)
	cfg.Retention = orDefault(cfg.Retention, DefaultStoreRetention)
	return &Store{
		cfg: cfg, prefix: "{" + cfg.Prefix + "}auth/",
		cache: newCache(cfg.CacheSize), now: time.Now,
	}, nil
}

func (s *Store) recordKey(hash string) string { return s.prefix + "token/" + hash }
func (s *Store) nameKey(name string) string   { return s.prefix + "name/" + name }
func (s *Store) indexKey() string             { return s.prefix + "tokens" }

// Authenticate implements Source. Tokens without TokenPrefix are not the
// store's; a prefixed one with a bad checksum is malformed without asking
// Redis; the others are looked up by hash, through the cache.
func (s *Store) Authenticate(ctx context.Context, token string) (*policy.Token, string, error) {
	body, ok := strings.CutPrefix(token, s.cfg.TokenPrefix)
	if !ok {
		return nil, "", nil
	}
	if !checksumOK(body) {
		return nil, ReasonMalformed, nil
	}
	key := sha256.Sum256([]byte(token))
	if a, ok := s.cache.get(key, s.now()); ok {
		return a.tok, a.reason, nil
	}
	a, err := s.flight.do(ctx, string(key[:]), func() (answer, error) { return s.lookup(key) })
	if err != nil {
		return nil, ReasonUnavailable, fmt.Errorf("token store: %w", err)
	}
	return a.tok, a.reason, nil
}

// lookup reads one record from Redis and caches the answer.
func (s *Store) lookup(key tokenKey) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	hash := hex.EncodeToString(key[:])
	fields, err := s.cfg.Client.HGetAll(ctx, s.recordKey(hash)).Result()
	if err != nil {
		return answer{}, err
	}
	now := s.now()
	if len(fields) == 0 {
		a := answer{reason: ReasonUnknown}
		s.cache.put(key, a, s.cfg.NegativeTTL, now)
		return a, nil
	}
	rec, err := decodeRecord(hash, fields)
	if err != nil {
		return answer{}, err
	}
	var a answer
	switch rec.Status(now) {
	case "revoked":
		a.reason = ReasonRevoked
	case "expired":
		a.reason = ReasonExpired
	default:
		if a.tok, err = policy.NewToken(rec.Name, rec.Products, rec.Operations, rec.Expires); err != nil {
			return answer{}, fmt.Errorf("record %s: %w", hash[:12], err)
		}
		a.tok.SHA256 = hash
		ttl := s.cfg.CacheTTL
		if !rec.Expires.IsZero() {
			ttl = min(ttl, rec.Expires.Sub(now))
		}
		s.cache.put(key, a, ttl, now)
		return a, nil
	}
	s.cache.put(key, a, s.cfg.NegativeTTL, now)
	return a, nil
}

// nameRE is the tokens file's rule for names.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Add stores a new token and returns it: the only time it is ever shown.
// name follows the tokens file's rule and must not belong to another
// active token; products and operations follow the file's rules; a zero
// expires means never.
func (s *Store) Add(ctx context.Context, name string, products, operations []string, expires time.Time) (string, error) {
	var errs []error
	if !nameRE.MatchString(name) {
		errs = append(errs, fmt.Errorf("name %q must be lower case letters, digits, - or _ (1-64, starting with a letter)", name))
	}
	if _, err := policy.NewToken(name, products, operations, expires); err != nil {
		errs = append(errs, err)
	}
	now := s.now()
	if !expires.IsZero() && !expires.After(now) {
		errs = append(errs, fmt.Errorf("expires %s is not in the future", expires.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	token := newStoreToken(s.cfg.TokenPrefix)
	sum := sha256.Sum256([]byte(token))
	hash := hex.EncodeToString(sum[:])
	prods, _ := json.Marshal(products)
	if operations == nil {
		operations = []string{}
	}
	ops, _ := json.Marshal(operations)
	exp, expireAt := "", int64(0)
	if !expires.IsZero() {
		exp, expireAt = expires.UTC().Format(time.RFC3339), expires.Add(s.cfg.Retention).Unix()
	}
	added, err := addScript.Run(ctx, s.cfg.Client,
		[]string{s.recordKey(hash), s.nameKey(name), s.indexKey()},
		hash, name, prods, ops, exp, now.UTC().Format(time.RFC3339Nano), expireAt).Int()
	if err != nil {
		return "", fmt.Errorf("token store: %w", err)
	}
	if added == 0 {
		return "", fmt.Errorf("%q: %w", name, ErrNameTaken)
	}
	s.cache.forget(sum)
	return token, nil
}

// addScript stores a record, its name and its index entry at once, unless
// the name is taken.
var addScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'products', ARGV[3], 'operations', ARGV[4],
  'expires', ARGV[5], 'created', ARGV[6], 'revoked', '')
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if tonumber(ARGV[7]) > 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[7])
  redis.call('EXPIREAT', KEYS[2], ARGV[7])
end
return 1
`)

// Revoke revokes the active token named ref, or else the token whose hash
// starts with ref (at least 8 hex digits), and returns its record. Every
// replica refuses it within CacheTTL. Revoking a revoked token changes
// nothing. The record is kept for Retention, and the name is free at once.
func (s *Store) Revoke(ctx context.Context, ref string) (Record, error) {
	hash, err := s.resolve(ctx, ref)
	if err != nil {
		return Record{}, err
	}
	fields, err := s.cfg.Client.HGetAll(ctx, s.recordKey(hash)).Result()
	if err != nil {
		return Record{}, fmt.Errorf("token store: %w", err)
	}
	if len(fields) == 0 {
		return Record{}, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	rec, err := decodeRecord(hash, fields)
	if err != nil || !rec.Revoked.IsZero() {
		return rec, err
	}
	now := s.now().UTC()
	n, err := revokeScript.Run(ctx, s.cfg.Client, []string{s.recordKey(hash), s.nameKey(rec.Name)},
		now.Format(time.RFC3339Nano), int64(s.cfg.Retention/time.Second), hash).Int()
	if err != nil {
		return Record{}, fmt.Errorf("token store: %w", err)
	}
	if n == 0 { // gone between the read and the script
		return Record{}, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if key, err := hex.DecodeString(hash); err == nil {
		s.cache.forget(tokenKey(key))
	}
	rec.Revoked = now
	return rec, nil
}

var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
`)

// resolve finds the hash a name or a hash prefix refers to.
func (s *Store) resolve(ctx context.Context, ref string) (string, error) {
	if nameRE.MatchString(ref) {
		hash, err := s.cfg.Client.Get(ctx, s.nameKey(ref)).Result()
		if err == nil {
			return hash, nil
		}
		if !errors.Is(err, redis.Nil) {
			return "", fmt.Errorf("token store: %w", err)
		}
	}
	ref = strings.ToLower(ref)
	if _, err := hex.DecodeString(ref[:len(ref)&^1]); err != nil || len(ref) < 8 || len(ref) > 64 {
		return "", fmt.Errorf("%s: %w (give an active token's name or at least 8 hex digits of its hash)", ref, ErrNotFound)
	}
	all, err := s.cfg.Client.SMembers(ctx, s.indexKey()).Result()
	if err != nil {
		return "", fmt.Errorf("token store: %w", err)
	}
	var found []string
	for _, h := range all {
		if strings.HasPrefix(h, ref) {
			found = append(found, h)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s: %w", ref, ErrAmbiguous)
}

// List returns every record the store keeps (active, expired within
// Retention, revoked within Retention), oldest first.
func (s *Store) List(ctx context.Context) ([]Record, error) {
	hashes, err := s.cfg.Client.SMembers(ctx, s.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(hashes))
	if _, err := s.cfg.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = p.HGetAll(ctx, s.recordKey(h))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	var out []Record
	var gone []any
	for i, c := range cmds {
		if len(c.Val()) == 0 { // expired out of Redis: drop it from the index
			gone = append(gone, hashes[i])
			continue
		}
		rec, err := decodeRecord(hashes[i], c.Val())
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if len(gone) > 0 {
		_ = s.cfg.Client.SRem(ctx, s.indexKey(), gone...).Err()
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Hash, b.Hash))
	})
	return out, nil
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// JWKS defaults.
const (
	DefaultJWKSTimeout         = 5 * time.Second
	DefaultJWKSMaxBytes        = 1 << 20
	DefaultJWKSRefresh         = 15 * time.Minute
	DefaultJWKSMinRefetch      = 10 * time.Second
	maxJWKSKeys                = 100
	jwksBackgroundFetchTimeout = 30 * time.Second
)

// JWKSConfig says where a JWKS is and how it is kept fresh.
type JWKSConfig struct {
	// URL is the JWKS document, http:// or https:// (use https outside
	// tests). Required.
	URL string
	// Timeout bounds one fetch; 0 means DefaultJWKSTimeout.
	Timeout time.Duration
	// MaxBytes bounds the document; a larger one is a failed fetch. 0
	// means DefaultJWKSMaxBytes (1 MiB).
	MaxBytes int64
	// Refresh is the age after which keys are fetched again, in the
	// background, while the old ones keep serving; 0 means
	// DefaultJWKSRefresh.
	Refresh time.Duration
	// MinRefetch is the shortest time between two fetches, whatever
	// triggers them (an unknown kid, a failure, Refresh). It bounds the
	// load a stream of tokens with made-up kids can put on the JWKS
	// endpoint. 0 means DefaultJWKSMinRefetch (10s).
	MinRefetch time.Duration
	// Client makes the requests; nil means a plain client. Timeout applies
	// either way.
	Client *http.Client
	// Logger receives failed and changed fetches; nil means none.
	Logger *slog.Logger
}

// JWKS is a JSON Web Key Set fetched from a URL and cached. Keys are
// fetched on first use, again in the background once older than Refresh,
// and at once when a token names an unknown kid; never more often than
// MinRefetch. When a fetch fails, the last good keys stay in use, however
// old. A kid that a fetch found missing is remembered as unknown for
// MinRefetch, so that tokens naming it are refused without a fetch; a kid
// nobody has looked for yet while a fetch is not allowed cannot be checked
// (it may be a key published since), which the JWT source answers as
// unavailable, never as unknown. Make one with NewJWKS; the zero value is not
// usable. It is safe for concurrent use.
type JWKS struct {
	cfg    JWKSConfig
	client *http.Client
	now    func() time.Time
	cur    atomic.Pointer[keySet]
	flight singleflight.Group

	mu      sync.Mutex
	last    time.Time            // start of the last fetch
	lastErr error                // outcome of the last finished fetch
	absent  map[string]time.Time // kids a fetch started then found missing
}

// keySet is one fetched document's usable keys.
type keySet struct {
	keys    []*Key
	fetched time.Time
}

// maxAbsentKids bounds the kids remembered as unknown; past it, further
// unknown kids are not remembered (and cost a fetch or an unavailable
// answer, as before).
const maxAbsentKids = 4096

// errJWKSUnavailable means no key set could be had: never fetched, and the
// last attempt failed or is too recent to retry.
var errJWKSUnavailable = errors.New("JWKS unavailable")

// errJWKSTooSoon means a kid could not be looked for: the last fetch started
// less than MinRefetch ago.
var errJWKSTooSoon = errors.New("JWKS fetched less than MinRefetch ago; unknown kid not checked")

// NewJWKS checks cfg and returns a JWKS. It fetches nothing: call Refresh
// at start to warm it up and log a failure; a JWKS endpoint that is down at
// start does not stop keygate.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	if cfg.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("URL: must be an http:// or https:// URL"))
	}
	if cfg.Timeout < 0 || cfg.MaxBytes < 0 || cfg.Refresh < 0 || cfg.MinRefetch < 0 {
		errs = append(errs, errors.New("Timeout, MaxBytes, Refresh, MinRefetch: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	cfg.Timeout = orDefault(cfg.Timeout, DefaultJWKSTimeout)
	cfg.Refresh = orDefault(cfg.Refresh, DefaultJWKSRefresh)
	cfg.MinRefetch = orDefault(cfg.MinRefetch, DefaultJWKSMinRefetch)
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultJWKSMaxBytes
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &JWKS{cfg: cfg, client: c, now: time.Now}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Refresh fetches the keys now, unless a fetch started less than MinRefetch
// ago; then it waits for that one, or returns the last outcome.
func (j *JWKS) Refresh(ctx context.Context) error {
	_, err := j.fetch(ctx)
	return err
}

// Len returns the number of keys in use.
func (j *JWKS) Len() int {
	if s := j.cur.Load(); s != nil {
		return len(s.keys)
	}
	return 0
}

// keys returns the keys to check a token with kid ("" for none) against.
// An unknown kid triggers a fetch, unless a fetch found it missing less than
// MinRefetch ago; a set older than Refresh triggers one in the background.
// The error is set when the keys returned could not be brought up to date
// for kid: none at all, or kid unknown and the fetch failed or was not
// allowed yet.
func (j *JWKS) keys(ctx context.Context, kid string) ([]*Key, error) {
	set := j.cur.Load()
	switch {
	case set == nil:
		s, err := j.fetch(ctx)
		if err != nil {
			return nil, err
		}
		set = s
	case kid != "" && !set.has(kid) && !j.knownAbsent(kid):
		s, err := j.fetch(ctx)
		if err != nil {
			return set.keys, err
		}
		set = s
	case j.now().Sub(set.fetched) >= j.cfg.Refresh && j.due():
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), jwksBackgroundFetchTimeout)
			defer cancel()
			_, _ = j.fetch(ctx)
		}()
	}
	if kid != "" && !set.has(kid) {
		j.markAbsent(kid, set.fetched)
	}
	return set.keys, nil
}

func (s *keySet) has(kid string) bool {
	for _, k := range s.keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// knownAbsent reports whether a fetch less than MinRefetch ago found kid
// missing.
func (j *JWKS) knownAbsent(kid string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.absent[kid]
	return ok && j.now().Sub(t) < j.cfg.MinRefetch
}

// markAbsent remembers that the set fetched at t lacks kid.
func (j *JWKS) markAbsent(kid string, t time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.absent == nil {
		j.absent = make(map[string]time.Time)
	}
	if _, ok := j.absent[kid]; ok || len(j.absent) < maxAbsentKids {
		j.absent[kid] = t
	}
}

// due reports whether a fetch could start now.
func (j *JWKS) due() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last.IsZero() || j.now().Sub(j.last) >= j.cfg.MinRefetch
}

// fetch gets the document, or joins the fetch under way
// (golang.org/x/sync/singleflight). Within MinRefetch of the last start it
// fetches nothing: it returns errJWKSTooSoon, or errJWKSUnavailable when no
// keys were ever had. A failed fetch returns its error; the last good keys
// stay in use.
func (j *JWKS) fetch(ctx context.Context) (*keySet, error) {
	ch := j.flight.DoChan("", func() (any, error) { return j.run() })
	select {
	case r := <-ch:
		if r.Err != nil {
			if j.cur.Load() == nil {
				return nil, fmt.Errorf("%w: %w", errJWKSUnavailable, r.Err)
			}
			return nil, r.Err
		}
		return r.Val.(*keySet), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run performs one fetch unless one started less than MinRefetch ago,
// bounded by Timeout whoever waits for it, and publishes its outcome. It
// runs in its own goroutine.
func (j *JWKS) run() (*keySet, error) {
	j.mu.Lock()
	now := j.now()
	if !j.last.IsZero() && now.Sub(j.last) < j.cfg.MinRefetch {
		lastErr := j.lastErr
		j.mu.Unlock()
		if lastErr != nil {
			return nil, fmt.Errorf("%w (last fetch: %w)", errJWKSTooSoon, lastErr)
		}
		return nil, errJWKSTooSoon
	}
	j.last = now
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), j.cfg.Timeout)
	defer cancel()
	set, err := j.get(ctx)
	if err != nil {
		j.cfg.Logger.Warn("JWKS fetch failed; keeping the last good keys", "url", j.cfg.URL, "keys", j.Len(), "err", err)
	}
	var old *keySet
	if err == nil {
		if old = j.cur.Load(); old == nil || len(old.keys) != len(set.keys) {
			j.cfg.Logger.Info("JWKS fetched", "url", j.cfg.URL, "keys", len(set.keys))
		}
		j.cur.Store(set)
	}
	j.mu.Lock()
	j.lastErr = err
	if err == nil {
		if j.absent == nil {
			j.absent = make(map[string]time.Time)
		}
		if old != nil { // kids rotated out are missing as of now
			for _, k := range old.keys {
				if k.ID != "" && !set.has(k.ID) && len(j.absent) < maxAbsentKids {
					j.absent[k.ID] = set.fetched
				}
			}
		}
		// The new document answers for every kid remembered as missing:
		// still missing as of now, or found.
		for kid := range j.absent {
			if set.has(kid) {
				delete(j.absent, kid)
			} else {
				j.absent[kid] = set.fetched
			}
		}
	}
	j.mu.Unlock()
	return set, err
}

// get fetches and parses the document. Keys keygate cannot use are skipped
// (and logged); a document with none is a failure.
func (j *JWKS) get(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.cfg.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > j.cfg.MaxBytes {
		return nil, fmt.Errorf("document larger than %d bytes", j.cfg.MaxBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%d keys; at most %d are taken", len(doc.Keys), maxJWKSKeys)
	}
	set := &keySet{fetched: j.now()}
	for _, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			j.cfg.Logger.Debug("JWKS key skipped", "url", j.cfg.URL, "err", err)
			continue
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, errors.New("no usable key in the JWK set")
	}
	return set, nil
}

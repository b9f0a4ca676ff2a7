package proxy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Default bounds of the idempotency stores.
const (
	// DefaultIdemMaxPerScope is how many records one token (or, on routes
	// without tokens, one client IP) may have stored at once.
	DefaultIdemMaxPerScope = 10000
	// DefaultIdemMaxRecords is how many records the memory store holds.
	DefaultIdemMaxRecords = 200000
)

// IdempotencyBounds bound what an idempotency store keeps. Zero fields take
// the defaults.
type IdempotencyBounds struct {
	// MaxPerScope bounds the live records (claims and answers) of one
	// scope: the part of a key between braces, "idem:{scope}...". A Begin
	// past it fails with *IdempotencyFullError. 0 means
	// DefaultIdemMaxPerScope.
	MaxPerScope int
	// MaxRecords bounds the records of the memory store; past it, once
	// expired records are dropped, Begin fails with ErrIdempotencyStoreFull.
	// Redis bounds its own memory (maxmemory). 0 means DefaultIdemMaxRecords.
	MaxRecords int
}

func (b IdempotencyBounds) withDefaults() (IdempotencyBounds, error) {
	if b.MaxPerScope < 0 || b.MaxRecords < 0 {
		return b, errors.New("proxy: idempotency bounds must not be negative")
	}
	if b.MaxPerScope == 0 {
		b.MaxPerScope = DefaultIdemMaxPerScope
	}
	if b.MaxRecords == 0 {
		b.MaxRecords = DefaultIdemMaxRecords
	}
	return b, nil
}

// IdempotencyFullError is returned by Begin when the key's scope holds as
// many records as its bound allows. RetryAfter is when the oldest expires,
// or a guess when the store does not know.
type IdempotencyFullError struct {
	RetryAfter time.Duration
}

func (e *IdempotencyFullError) Error() string {
	return fmt.Sprintf("proxy: too many Idempotency-Key records in this scope (one expires in %s)", e.RetryAfter)
}

// ErrIdempotencyStoreFull is returned by the memory store's Begin when it
// holds its maximum of live records. keygate treats it as the store being
// unavailable (KEYGATE_IDEMPOTENCY_FAILURE_MODE).
var ErrIdempotencyStoreFull = errors.New("proxy: idempotency store is full")

// scopeOf returns the scope of a store key, the text between its first
// '{' and the next '}', or "" when it has none.
func scopeOf(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j < 0 {
		return ""
	}
	return key[i+1 : i+1+j]
}

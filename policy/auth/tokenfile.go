package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/policy"
)

// TokenFile is a tokens file (policy.ParseTokens) that can be reloaded while
// it is in use; NewFileSource makes it a Source. A reload that fails keeps
// the last good set. It is safe for concurrent use.
type TokenFile struct {
	path   string
	policy *policy.Policy
	cur    atomic.Pointer[policy.Tokens]
	mu     sync.Mutex // serialises reloads
	sum    [sha256.Size]byte
}

// OpenTokenFile loads a tokens file; operations are checked against p.
func OpenTokenFile(path string, p *policy.Policy) (*TokenFile, error) {
	f := &TokenFile{path: path, policy: p}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's path.
func (f *TokenFile) Path() string { return f.path }

// Lookup returns the record of a token, or nil when it is unknown.
func (f *TokenFile) Lookup(token string) *policy.Token { return f.cur.Load().Lookup(token) }

// Len returns the number of tokens in the current set.
func (f *TokenFile) Len() int { return f.cur.Load().Len() }

// Reload reads the file again. It reports whether the set changed; on error
// the last good set stays in use.
func (f *TokenFile) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	if f.cur.Load() != nil && bytes.Equal(sum[:], f.sum[:]) {
		return false, nil
	}
	t, err := policy.ParseTokens(f.path, data, f.policy)
	if err != nil {
		return false, err
	}
	f.cur.Store(t)
	f.sum = sum
	return true, nil
}

// Watch reloads the file every interval until ctx ends, calling report after
// each reload that changed the set or failed. Polling the content, rather than
// watching inodes, follows the symlink swaps of Kubernetes Secret volumes.
func (f *TokenFile) Watch(ctx context.Context, interval time.Duration, report func(changed bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if changed, err := f.Reload(); changed || err != nil {
				report(changed, err)
			}
		}
	}
}

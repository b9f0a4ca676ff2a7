package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/policy"
)

func TestCacheBoundAndTTL(t *testing.T) {
	c := newCache(3)
	now := time.Unix(0, 0)
	key := func(i int) tokenKey { return sha256.Sum256([]byte(fmt.Sprint(i))) }
	for i := range 10 {
		c.put(key(i), answer{reason: fmt.Sprint(i)}, time.Minute, now)
	}
	if c.len() != 3 {
		t.Fatalf("len = %d after 10 puts, want the bound 3", c.len())
	}
	if _, ok := c.get(key(6), now); ok {
		t.Error("get(6) found an evicted entry")
	}
	c.get(key(7), now) // 7 is now the most recently used: 8 goes next
	c.put(key(10), answer{}, time.Minute, now)
	if _, ok := c.get(key(8), now); ok {
		t.Error("get(8) found the least recently used entry, want it evicted")
	}
	if a, ok := c.get(key(7), now.Add(59*time.Second)); !ok || a.reason != "7" {
		t.Errorf("get(7) before its TTL = %v, %v", a, ok)
	}
	if _, ok := c.get(key(7), now.Add(time.Minute)); ok {
		t.Error("get(7) at its TTL found it")
	}
	c.put(key(11), answer{}, 0, now)
	if _, ok := c.get(key(11), now); ok {
		t.Error("a zero TTL was cached")
	}
	c.forget(key(9))
	if _, ok := c.get(key(9), now); ok {
		t.Error("forget left the entry")
	}
	off := newCache(0)
	off.put(key(1), answer{}, time.Minute, now)
	if off.len() != 0 {
		t.Error("a cache of size 0 cached")
	}
}

func TestFlight(t *testing.T) {
	var f flight[int]
	var calls atomic.Int64
	release := make(chan struct{})
	fn := func() (int, error) { calls.Add(1); <-release; return 42, nil }
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan error, 3)
	go func() { _, err := f.do(ctx, "1", fn); results <- err }() // gives up early
	go func() {
		v, err := f.do(context.Background(), "1", fn)
		if v != 42 {
			err = fmt.Errorf("got %d", v)
		}
		results <- err
	}()
	waitFor(t, func() bool { return calls.Load() == 1 })
	cancel()
	if err := <-results; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want context.Canceled", err)
	}
	close(release) // the other caller still gets the shared result
	if err := <-results; err != nil {
		t.Errorf("waiting caller: %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times, want 1", calls.Load())
	}
}

func TestNewToken(t *testing.T) {
	exp := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	tok, err := policy.NewToken("jwt:client 42", []string{"p1", "p2"}, []string{"get"}, exp)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expires != "2031-01-02T03:04:05Z" || !tok.ExpiresAt().Equal(exp) || !tok.Expired(exp) || tok.Expired(exp.Add(-1)) {
		t.Errorf("expiry of %+v is wrong", tok)
	}
	never, _ := policy.NewToken("x", []string{"*"}, nil, time.Time{})
	if never.Expired(time.Now().Add(1e6*time.Hour)) || never.Expires != "" {
		t.Errorf("a zero expiry expires: %+v", never)
	}
	_, err = policy.NewToken("bad\nname", []string{"*", "p", "a b", ""}, []string{"Get", ""}, time.Time{})
	var lines []string
	if err != nil {
		lines = strings.Split(err.Error(), "\n")
	}
	want := []string{
		`token name "bad\nname" must be 1 to 200 printable characters`,
		`product "a b" is not a product id`,
		`product "" is not a product id`,
		`"*" must stand alone in products`,
		`operation "Get" is not a route name`,
		`operation "" is not a route name`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("NewToken(bad) errors (-want +got):\n%s", diff)
	}
	if _, err := policy.NewToken("x", nil, nil, time.Time{}); err == nil {
		t.Error("NewToken(no products) = nil error")
	}
}

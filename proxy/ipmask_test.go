package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

func TestLimitIP(t *testing.T) {
	tests := []struct {
		addr string
		bits int
		want string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"}, // IPv4-mapped: the IPv4 address, not a /64 of ::ffff:0:0/96
		{"2001:db8::1", 64, "2001:db8::/64"},
		{"2001:db8::ffff:ffff:ffff:ffff", 64, "2001:db8::/64"},
		{"2001:db8:0:1::1", 64, "2001:db8:0:1::/64"},
		{"2001:db8:aaaa:bbbb::1", 48, "2001:db8:aaaa::/48"},
		{"2001:db8::1", 128, "2001:db8::1/128"},
		{"fe80::1%eth0", 64, "fe80::/64"}, // the zone names a local interface, not a client
	}
	for _, tc := range tests {
		if got := limitIP(netip.MustParseAddr(tc.addr), tc.bits); got != tc.want {
			t.Errorf("limitIP(%s, %d) = %q, want %q", tc.addr, tc.bits, got, tc.want)
		}
	}
	if got := limitIP(netip.Addr{}, 64); got != "invalid IP" {
		t.Errorf("limitIP(zero Addr, 64) = %q, want %q", got, "invalid IP")
	}
}

func TestIPv6PrefixOption(t *testing.T) {
	for _, bits := range []int{0, 48, 64, 128} {
		if err := validIPv6Prefix(bits); err != nil {
			t.Errorf("validIPv6Prefix(%d) = %v, want nil", bits, err)
		}
	}
	for _, bits := range []int{-1, 1, 47, 129} {
		g, err := New(Options{IPv6Prefix: bits})
		if err == nil || !strings.Contains(err.Error(), "IPv6 prefix") {
			t.Errorf("New(IPv6Prefix: %d) = %v, %v, want an IPv6 prefix error", bits, g, err)
		}
	}
}

// TestIPv6PrefixSharesFailureBudget: per-IP limits count an IPv6 client by
// its prefix (a /64 unless configured), so a host that owns the /64 cannot
// rotate addresses for a fresh key-guessing budget; another /64 has its own,
// IPv4-mapped addresses count as their IPv4 address, and /128 counts every
// address apart. The access log still names the full address.
func TestIPv6PrefixSharesFailureBudget(t *testing.T) {
	tests := []struct {
		name      string
		bits      int // 0: the default
		spend     string
		then      string
		wantGuess bool // whether a guess from then still reaches the backend
	}{
		{"same /64", 0, "2001:db8::1", "2001:db8::2", false},
		{"same /64, far end", 0, "2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", false},
		{"other /64", 0, "2001:db8::1", "2001:db8:0:1::1", true},
		{"same /48 under /48", 48, "2001:db8:0:1::1", "2001:db8:0:2::1", false},
		{"same /64 under /128", 128, "2001:db8::1", "2001:db8::2", true},
		{"IPv4-mapped is IPv4", 0, "192.0.2.7", "::ffff:192.0.2.7", false},
		{"other IPv4", 0, "192.0.2.7", "192.0.2.8", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			g := newGateway(t, withTrusted("127.0.0.1/32"), func(o *Options) {
				o.IPv6Prefix = tc.bits
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			g.up.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(404)
				io.WriteString(w, `{"message":"License key not found","code":1}`)
			})
			guess := func(ip string) answer {
				return g.do(t, call{path: "/get-key", token: testTokens["global"], body: getBody(testKey), header: map[string]string{"X-Forwarded-For": ip}})
			}
			const budget = 30 // the built-in key-guessing rule: 30 404s per 10 minutes
			for i := range budget {
				if a := guess(tc.spend); a.status != 404 {
					t.Fatalf("guess %d from %s = %d, want 404", i, tc.spend, a.status)
				}
			}
			if a := guess(tc.spend); a.status != 429 {
				t.Fatalf("guess past the budget from %s = %d, want 429", tc.spend, a.status)
			}
			before := g.up.calls.Load()
			a := guess(tc.then)
			if got := g.up.calls.Load() > before; got != tc.wantGuess {
				t.Errorf("guess from %s after %s spent its budget reached the backend = %v (status %d), want %v", tc.then, tc.spend, got, a.status, tc.wantGuess)
			}
			if want := fmt.Sprintf(`"ip":%q`, netip.MustParseAddr(tc.then).Unmap()); !strings.Contains(logs.String(), want) {
				t.Errorf("access log lacks %s (the full address)", want)
			}
		})
	}
}

// TestIdempotencyIPScopeByPrefix: on routes without tokens the idempotency
// records bound counts an IPv6 client by its prefix too, so rotating
// addresses inside one /64 does not multiply what it may store.
func TestIdempotencyIPScopeByPrefix(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`routes:
  - name: ping
    method: POST
    path: /ping
    auth: none
    idempotent: true
    params:
      licenseKey: {secret: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, first, second string
		want                int
	}{
		{"same /64", "2001:db8::1", "2001:db8::2", 429},
		{"other /64", "2001:db8::1", "2001:db8:0:1::1", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, err := NewMemoryIdempotencyBounded(IdempotencyBounds{MaxPerScope: 1})
			if err != nil {
				t.Fatal(err)
			}
			g := newGateway(t, withPolicy(p), withTrusted("127.0.0.1/32"), withIdempotency(store, false))
			send := func(ip, key string) answer {
				return g.do(t, call{path: "/ping", body: `{"licenseKey":"` + testKey + `"}`,
					header: map[string]string{"X-Forwarded-For": ip, "Idempotency-Key": key}})
			}
			if a := send(tc.first, "first-key-0001"); a.status != 200 {
				t.Fatalf("first key from %s = %d %s, want 200", tc.first, a.status, a.raw)
			}
			if a := send(tc.second, "second-key-0002"); a.status != tc.want {
				t.Errorf("second key from %s = %d %s, want %d", tc.second, a.status, a.raw, tc.want)
			}
		})
	}
}

// FuzzLimitIP: for any address a client can put in X-Forwarded-For, the
// limit key of an IPv6 address is a prefix holding it, the same for every
// address of that prefix, and an IPv4 or IPv4-mapped address keys as the
// IPv4 address.
func FuzzLimitIP(f *testing.F) {
	for _, s := range []string{"2001:db8::1", "::ffff:192.0.2.1", "192.0.2.1", "fe80::1%eth0", "::", "::1"} {
		f.Add(s, uint8(64))
	}
	f.Fuzz(func(t *testing.T, s string, b uint8) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		bits := MinIPv6Prefix + int(b)%(MaxIPv6Prefix-MinIPv6Prefix+1)
		got := limitIP(a, bits)
		if a.Unmap().Is4() {
			if want := a.Unmap().String(); got != want {
				t.Errorf("limitIP(%s, %d) = %q, want %q", s, bits, got, want)
			}
			return
		}
		p, err := netip.ParsePrefix(got)
		if err != nil || p.Bits() != bits || !p.Contains(a.WithZone("")) {
			t.Fatalf("limitIP(%s, %d) = %q, want a /%d holding the address", s, bits, got, bits)
		}
		last := p.Masked().Addr().As16()
		for i := bits / 8; i < 16; i++ {
			last[i] |= 0xff >> max(0, bits-8*i)
		}
		// a prefix shorter than /96 around ::ffff:0:0 ends in IPv4-mapped
		// addresses: IPv4 clients, keyed apart
		if l := netip.AddrFrom16(last); !l.Is4In6() {
			if other := limitIP(l, bits); other != got {
				t.Errorf("limitIP of the last address of %s = %q, want %q", got, other, got)
			}
		}
	})
}

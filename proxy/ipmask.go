package proxy

import (
	"fmt"
	"net/netip"
)

// DefaultIPv6Prefix is the IPv6 prefix length per-IP limits count by when
// Options.IPv6Prefix is 0: a /64 is the smallest block a subscriber is
// usually given, and one host may pick any address inside it.
const DefaultIPv6Prefix = 64

// MinIPv6Prefix and MaxIPv6Prefix bound Options.IPv6Prefix: shorter than a
// /48 would lump whole sites together; 128 counts each address on its own.
const (
	MinIPv6Prefix = 48
	MaxIPv6Prefix = 128
)

// validIPv6Prefix reports a problem with an IPv6 prefix length; nil when
// it is 0 (the default) or within bounds.
func validIPv6Prefix(bits int) error {
	if bits != 0 && (bits < MinIPv6Prefix || bits > MaxIPv6Prefix) {
		return fmt.Errorf("proxy: IPv6 prefix /%d must be between /%d and /%d", bits, MinIPv6Prefix, MaxIPv6Prefix)
	}
	return nil
}

// limitIP is the client address as per-IP limits and the idempotency
// per-IP bound count it: an IPv4 address (IPv4-mapped IPv6 included) as it
// is, an IPv6 address masked to its first bits, without a zone. A client
// that owns a whole /64 thus cannot get a fresh budget per address. An
// invalid address (a peer keygate could not read) stays as it is.
func limitIP(a netip.Addr, bits int) string {
	a = a.Unmap()
	if !a.Is6() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

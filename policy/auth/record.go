package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Record is a stored token, without the token.
type Record struct {
	Name       string
	Hash       string    // hex SHA-256 of the token
	Products   []string  // product ids, or ["*"]
	Operations []string  // route names; empty: all
	Expires    time.Time // zero: never
	Created    time.Time
	Revoked    time.Time // zero: not revoked
}

// Status returns "revoked", "expired" or "active" at now.
func (r Record) Status(now time.Time) string {
	switch {
	case !r.Revoked.IsZero():
		return "revoked"
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return "expired"
	}
	return "active"
}

// decodeRecord reads a record's hash fields.
func decodeRecord(hash string, f map[string]string) (Record, error) {
	r := Record{Name: f["name"], Hash: hash}
	var errs []error
	if err := json.Unmarshal([]byte(f["products"]), &r.Products); err != nil {
		errs = append(errs, fmt.Errorf("products: %w", err))
	}
	if err := json.Unmarshal([]byte(f["operations"]), &r.Operations); err != nil {
		errs = append(errs, fmt.Errorf("operations: %w", err))
	}
	for _, t := range []struct {
		field string
		dst   *time.Time
	}{{"expires", &r.Expires}, {"created", &r.Created}, {"revoked", &r.Revoked}} {
		if v := f[t.field]; v != "" {
			var err error
			if *t.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", t.field, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Record{}, fmt.Errorf("token store: record %s is corrupt: %w", hash[:min(12, len(hash))], err)
	}
	if len(r.Operations) == 0 {
		r.Operations = nil
	}
	return r, nil
}

// Store tokens are TokenPrefix + base64url(32 random bytes + their CRC-32):
// the prefix lets secret scanners and the Chain know them, the checksum
// lets the store refuse a mistyped or made-up token without asking Redis.
const storeTokenBody = 48 // base64url of 36 bytes

func newStoreToken(prefix string) string {
	var b [36]byte
	rand.Read(b[:32]) // never fails (crypto/rand)
	binary.BigEndian.PutUint32(b[32:], crc32.ChecksumIEEE(b[:32]))
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// checksumOK reports whether body (the token without its prefix) is a
// well-formed store token.
func checksumOK(body string) bool {
	if len(body) != storeTokenBody {
		return false
	}
	b, err := b64.DecodeString(body)
	return err == nil && len(b) == 36 && binary.BigEndian.Uint32(b[32:]) == crc32.ChecksumIEEE(b[:32])
}

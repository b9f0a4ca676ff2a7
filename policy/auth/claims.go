package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/policy"
)

// ClaimMapping says where a JWT or an introspection answer carries what a
// token may do. The zero value reads products from "products", operations
// from "operations" and the name from "sub".
//
// A claim may be a JSON array of strings or one string of entries separated
// by ASCII spaces (an OAuth "scope"; other white space separates nothing). With a prefix set, only entries that start with it count,
// with the prefix removed, so that one "scope" can carry both:
//
//	ClaimMapping{Products: "scope", ProductPrefix: "product:",
//	             Operations: "scope", OperationPrefix: "op:"}
//
// reads "product:prod_1 op:activate openid" as products [prod_1] and
// operations [activate]. "*" means every product, or every operation.
type ClaimMapping struct {
	// Products names the claim listing the products; "" means "products".
	// It is required in every token: a token that names no product is
	// rejected (ReasonProduct).
	Products string
	// ProductPrefix, when set, selects the entries that name products.
	ProductPrefix string
	// Operations names the claim listing route names; "" means
	// "operations". When the claim is absent every operation is allowed,
	// as in the tokens file; present, it lists them ("*" for all), and a
	// list of none is rejected (ReasonOperation).
	Operations string
	// OperationPrefix, when set, selects the entries that name operations.
	OperationPrefix string
	// Name names the claim that labels the token in logs; "" means "sub".
	Name string
}

func (m ClaimMapping) withDefaults() ClaimMapping {
	if m.Products == "" {
		m.Products = "products"
	}
	if m.Operations == "" {
		m.Operations = "operations"
	}
	if m.Name == "" {
		m.Name = "sub"
	}
	return m
}

// token builds the record a set of verified claims grants. kind prefixes
// the name ("jwt", "introspect"). reason is set when the claims grant
// nothing or are malformed.
func (m ClaimMapping) token(kind string, claims map[string]json.RawMessage, exp time.Time) (*policy.Token, string) {
	products, present, ok := m.list(claims, m.Products, m.ProductPrefix)
	if !ok {
		return nil, ReasonMalformed
	}
	if !present || len(products) == 0 {
		return nil, ReasonProduct
	}
	if products = dedupe(products); len(products) > 1 && contains(products, "*") {
		products = []string{"*"}
	}
	ops, present, ok := m.list(claims, m.Operations, m.OperationPrefix)
	if !ok {
		return nil, ReasonMalformed
	}
	switch {
	case !present || contains(ops, "*"):
		ops = nil
	case len(ops) == 0:
		return nil, ReasonOperation
	}
	name := kind
	if sub, ok := stringMember(claims, m.Name); ok && sub != "" {
		name = kind + ":" + label(sub)
	}
	tok, err := policy.NewToken(name, products, dedupe(ops), exp)
	if err != nil {
		return nil, ReasonMalformed
	}
	return tok, ""
}

// list reads a claim that is an array of strings or a space-separated
// string, keeping the entries with prefix (removed). present reports
// whether the claim is there at all; ok is false when it has another type.
func (m ClaimMapping) list(claims map[string]json.RawMessage, name, prefix string) (out []string, present, ok bool) {
	raw, present := claims[name]
	if !present {
		return nil, false, true
	}
	var entries []string
	if isJSONString(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, true, false
		}
		// RFC 6749 3.3: scope tokens are separated by ASCII space, and
		// by nothing else; a no-break space is part of a name.
		for e := range strings.SplitSeq(s, " ") {
			if e != "" {
				entries = append(entries, e)
			}
		}
	} else if json.Unmarshal(raw, &entries) != nil || entries == nil {
		return nil, true, false // null, numbers, arrays of non-strings
	}
	for _, e := range entries {
		if e, ok := strings.CutPrefix(e, prefix); ok && e != "" {
			out = append(out, e)
		}
	}
	return out, true, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// label makes a claim safe and short for a log label: printable, at most 64
// bytes, cut on a rune boundary.
func label(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > 64 {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

var errNumericDate = errors.New("not a NumericDate")

// numericDate reads an RFC 7519 NumericDate claim: seconds since the epoch,
// possibly fractional. present is false when the claim is absent.
func numericDate(claims map[string]json.RawMessage, name string) (t time.Time, present bool, err error) {
	raw, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	var f float64
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '-' && (t[0] < '0' || t[0] > '9') {
		return time.Time{}, true, errNumericDate // null, strings, objects
	}
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 { // year 9999
		return time.Time{}, true, errNumericDate
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// audiences reads an "aud" claim: one string or an array of strings.
func audiences(claims map[string]json.RawMessage) (auds []string, present, ok bool) {
	raw, present := claims["aud"]
	if !present {
		return nil, false, true
	}
	if isJSONString(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, true, false
		}
		return []string{s}, true, true
	}
	return auds, true, json.Unmarshal(raw, &auds) == nil && auds != nil
}

// anyOf reports whether some element of have is in want.
func anyOf(have, want []string) bool {
	for _, h := range have {
		if contains(want, h) {
			return true
		}
	}
	return false
}

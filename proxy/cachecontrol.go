package proxy

import (
	"net/http"
	"strings"
)

// privateCache is the Cache-Control keygate sends on a route that needs a
// token when the upstream said nothing that keeps the answer out of shared
// caches: keygate drops Vary, so a shared cache that stored the answer would
// hand one token's answer to anyone asking for the same URL.
const privateCache = "private"

// keepsPrivate reports whether an upstream Cache-Control value keeps the
// answer out of shared caches: it holds the bare directive private or
// no-store (any case). private="field" does not count: it makes only the
// named fields private and lets a shared cache store the rest.
func keepsPrivate(v string) bool {
	for _, d := range strings.Split(v, ",") {
		d = strings.TrimSpace(d)
		if strings.EqualFold(d, "private") || strings.EqualFold(d, "no-store") {
			return true
		}
	}
	return false
}

// tokenRouteCache makes h's Cache-Control fit an answer on a route that
// needs a token: the upstream's when it keeps the answer private, otherwise
// privateCache.
func tokenRouteCache(h http.Header) {
	if vs := h["Cache-Control"]; len(vs) == 1 && keepsPrivate(vs[0]) {
		return
	}
	h["Cache-Control"] = []string{privateCache}
}

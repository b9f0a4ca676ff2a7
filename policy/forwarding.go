package policy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var queryNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ownHeaders are the request headers whose meaning keygate owns: it reads
// them, sets them itself, or refuses what they would do (override the method
// or path, claim a client address). A policy cannot forward them.
var ownHeaders = map[string]bool{
	"Authorization": true, "Content-Type": true, "Content-Length": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Host": true, "Connection": true, "Upgrade": true, "Expect": true, "Te": true,
	"Trailer": true, "Keep-Alive": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Forwarded-Port": true, "X-Forwarded-Prefix": true, "X-Real-Ip": true, "True-Client-Ip": true,
	"X-Client-Ip": true, "X-Original-Url": true, "X-Rewrite-Url": true, "X-Original-Uri": true,
	"X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
	"X-Request-Id": true, "Idempotency-Key": true, "Traceparent": true, "Tracestate": true,
}

// validateForwarding checks allow_query and headers, and fills r.headers.
func (r *Route) validateForwarding(ps *problems) {
	if len(r.AllowQuery) > 0 && r.query {
		ps.At(r.pos("allow_query"), "route %s: allow_query applies to body routes; a query route forwards its checked query", r.Name)
	}
	for _, q := range r.AllowQuery {
		if !queryNameRE.MatchString(q) {
			ps.At(r.pos("allow_query"), "route %s: allow_query name %q must be 1-64 letters, digits, _, . or -", r.Name, q)
		} else if methodOverride(q) {
			ps.At(r.pos("allow_query"), "route %s: allow_query name %q overrides the method on some backends", r.Name, q)
		} else if i := r.queryVariant(q); i >= 0 {
			ps.At(r.pos("allow_query"), "route %s: allow_query name %q is read as param %s by some backends", r.Name, q, r.params[i].Name)
		}
	}
	r.headers = r.headers[:0]
	for _, h := range r.Headers {
		c := http.CanonicalHeaderKey(h)
		switch {
		case !headerRE.MatchString(h):
			ps.At(r.pos("headers"), "route %s: header %q: bad header name", r.Name, h)
		case ownHeaders[c] || strings.HasPrefix(c, "X-Forwarded-"):
			ps.At(r.pos("headers"), "route %s: header %s is keygate's own and cannot be forwarded from the client", r.Name, c)
		default:
			r.headers = append(r.headers, c)
		}
	}
}

// queryVariant returns the index of the checked param that some framework
// binds a query name to, or -1. Frameworks fold case (and the rest of
// FoldName), read "a[]", "a[0]" and "a[x]" as a (PHP, Rails, Express qs),
// "a.x" as a (qs with allowDots, Spring), "[a", "]a" and "a]" as a (Rack 2)
// and "a\x00x" as a (PHP cuts names at NUL).
func (r *Route) queryVariant(name string) int {
	return queryVariantIn(r.params, name)
}

func queryVariantIn(params []*Param, name string) int {
	f := newNameFolder() // names of a policy: ASCII, at most 64 bytes
	i, _ := queryVariantFold(params, name, "", &f)
	return i
}

// queryVariantFold is queryVariantIn folding within f's budget; folded is
// the name's fold by f when the caller has it, else "".
func queryVariantFold(params []*Param, name, folded string, f *nameFolder) (int, *Error) {
	bracket, dotted := binderStems(name)
	fb := folded
	if bracket != name || folded == "" {
		var e *Error
		if fb, e = f.fold(bracket); e != nil {
			return -1, e
		}
	}
	if i := foldedIndex(params, fb); i >= 0 || dotted == bracket {
		return i, nil
	}
	fd, e := f.fold(dotted)
	if e != nil {
		return -1, e
	}
	return foldedIndex(params, fd), nil
}

// foldedIndex returns the index of the param whose name folds to folded (a
// FoldName result), or -1.
func foldedIndex(params []*Param, folded string) int {
	if !isASCII(folded) {
		return -1 // param names are ASCII, and so are their folds
	}
	for i, p := range params {
		if SameName(p.Name, folded) {
			return i
		}
	}
	return -1
}

// ForwardHeaders returns the canonical names of the client headers the
// policy forwards on this route besides keygate's own; nil: none.
func (r *Route) ForwardHeaders() []string { return r.headers }

// ForwardQuery returns the query string forwarded upstream for a request
// whose checks passed. On a query route it is rebuilt from the checked
// params alone: each present one once, in sorted order, canonically
// escaped; nothing else the client sent, so no binder can read a name
// keygate did not check. On a body route it is the members named in
// allow_query, in the client's order, as the client wrote them. rawQuery
// must have passed ParseQuery (query routes) or QueryNames (body routes).
func (r *Route) ForwardQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	if r.query {
		return r.checkedQuery(rawQuery)
	}
	if len(r.AllowQuery) == 0 {
		return ""
	}
	var b strings.Builder
	for part := range strings.SplitSeq(rawQuery, "&") {
		rawName, _, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil || !allowed(r.AllowQuery, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// checkedQuery rebuilds a checked query string from the route's params.
func (r *Route) checkedQuery(rawQuery string) string {
	vals := make([]string, len(r.params))
	set := make([]bool, len(r.params))
	for part := range strings.SplitSeq(rawQuery, "&") {
		rawName, rawValue, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			continue
		}
		if i := paramIndexIn(r.params, name); i >= 0 {
			vals[i], _ = url.QueryUnescape(rawValue)
			set[i] = true
		}
	}
	var b strings.Builder
	for i, p := range r.params {
		if !set[i] {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(vals[i]))
	}
	return b.String()
}

func allowed(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// methodOverride reports a parameter name that frameworks read as the
// request's method (Laravel, Symfony and Rails read _method on a POST).
func methodOverride(name string) bool {
	return strings.EqualFold(name, "_method")
}

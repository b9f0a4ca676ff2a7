package policy

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/jsonscan"
)

// Values holds the parameters of one request that its route checks, as the
// backend will see them. Build it with Route.ParseBody or Route.ParseQuery.
type Values struct {
	route *Route
	vals  []value // indexed like route.params
	small [4]value
}

// newValues returns empty Values for r. Routes of up to 4 parameters (all
// but create among the built-in ones) keep them inside Values: one
// allocation per request instead of two, of the same size.
func newValues(r *Route) *Values {
	v := &Values{route: r}
	if len(r.params) <= len(v.small) {
		v.vals = v.small[:len(r.params)]
	} else {
		v.vals = make([]value, len(r.params))
	}
	return v
}

type value struct {
	kind byte   // 0 absent, 's' string, 'n' number, 'b' boolean, 'o' object, 'a' array, 'z' null
	str  string // decoded string, or the literal of a number or boolean
	raw  []byte // an object's JSON
}

// Get returns a parameter's value and whether it is present as a non-null
// scalar. Objects and arrays are reported absent.
func (v *Values) Get(name string) (string, bool) {
	if v == nil {
		return "", false
	}
	i := v.route.paramIndex(name)
	if i < 0 {
		return "", false
	}
	val := v.vals[i]
	return val.str, val.kind == 's' || val.kind == 'n' || val.kind == 'b'
}

// Product returns the request's product, or "" when the route has none.
func (v *Values) Product() string {
	if v == nil || v.route.product < 0 {
		return ""
	}
	return v.vals[v.route.product].str
}

// Messages for bad requests.
const (
	msgInvalidJSON = "Invalid JSON body"
	msgNotObject   = "Request body must be a JSON object"
	msgBadUTF8     = "Request must be valid UTF-8"
	msgBadQuery    = "Invalid query string"
	msgControlName = "Invalid query string: control character in a parameter name"
	// msgLoneSurrogate refuses a JSON string escape that names half of a
	// UTF-16 surrogate pair (jsonscan.LoneSurrogate).
	msgLoneSurrogate = "Request must be valid UTF-8: unpaired surrogate escape in a JSON string"
)

func badRequest(format string, args ...any) *Error { return Errorf(400, format, args...) }

// ParseBody reads the route's parameters from a JSON body. An empty body reads
// as an empty object. It rejects what a strict backend and keygate could read
// differently: invalid UTF-8, unpaired surrogate escapes, duplicate keys,
// keys that differ from a checked parameter only in case, and keys over 128
// bytes. It does not apply the rules; call Validate.
func (r *Route) ParseBody(body []byte) (*Values, *Error) {
	v := newValues(r)
	if len(jsonscan.TrimSpace(body)) == 0 {
		return v, nil
	}
	if !utf8.Valid(body) {
		return nil, badRequest(msgBadUTF8)
	}
	if !json.Valid(body) {
		return nil, badRequest(msgInvalidJSON)
	}
	if jsonscan.LoneSurrogate(body) {
		return nil, badRequest(msgLoneSurrogate)
	}
	// One copy of the body as a string: every value read is a substring of
	// it, and keys are compared in place.
	if err := scanObjectIn(body, string(body), r.params, v.vals); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseQuery reads the route's parameters from a raw query string. Repeated
// parameters are refused, and so are two names that some binder reads as
// one, names holding a control character, names some binder cuts or trims
// onto a checked param (queryVariant), names over 128 bytes, and more
// non-ASCII names than the folding budget allows. It reads the query the way url.ParseQuery does, in one pass without
// building its map: a query of thousands of names costs no more per byte than
// a body. Of several problems, the one of the first name in sorted order is
// reported, so the same query always gets the same answer.
func (r *Route) ParseQuery(rawQuery string) (*Values, *Error) {
	v := newValues(r)
	if rawQuery == "" {
		return v, nil
	}
	if !wellFormedQuery(rawQuery) {
		return nil, badRequest(msgBadQuery)
	}
	var worst queryProblem
	fo := newNameFolder()
	// names by FoldName: the two first in sorted order of each, for the
	// report of names that some binder reads as one
	classes := make(map[string]nameClass, min(strings.Count(rawQuery, "&")+1, 64))
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		k, _ := url.QueryUnescape(rawName) // well formed: no error
		if worst.set && k > worst.name {
			continue // nothing found here could be reported before what was found
		}
		if e := checkName(k); e != nil {
			worst.note(k, 0, e)
			continue
		}
		if controlName(k) {
			// PHP cuts names at NUL, others drop controls: the backend
			// would bind another name than the one checked
			worst.note(k, 0, badRequest(msgControlName))
			continue
		}
		nf, e := fo.fold(k)
		if e != nil {
			return nil, e
		}
		f := foldStored(nf)
		c, ok := classes[f]
		switch {
		case !ok:
			c = nameClass{first: k, n: 1}
		case k == c.first || (c.n > 1 && k == c.second):
			worst.note(k, 0, badRequest("Duplicate parameter: %s", safeName(k)))
			continue
		default:
			c.add(k)
		}
		classes[f] = c
		val, _ := url.QueryUnescape(rawValue)
		if !utf8.ValidString(k) || !utf8.ValidString(val) {
			worst.note(k, 1, badRequest(msgBadUTF8))
			continue
		}
		i := paramIndexIn(r.params, k)
		if i < 0 {
			j, e := queryVariantFold(r.params, k, nf, &fo)
			if e != nil {
				return nil, e
			}
			if j >= 0 {
				worst.note(k, 2, badRequest("Unexpected parameter %s (did you mean %s?)", safeName(k), r.params[j].Name))
			}
			continue
		}
		v.vals[i] = value{kind: 's', str: val}
		if r.params[i].Type == "boolean" && (val == "true" || val == "false") {
			v.vals[i].kind = 'b' // a query string has only text: true and false are its booleans
		}
	}
	for _, c := range classes {
		if c.n > 1 {
			worst.note(c.second, 3, duplicate(c.first, c.second))
		}
	}
	if worst.set {
		return nil, worst.err
	}
	return v, nil
}

// nameClass is the names of a query string that fold to one: the first two
// in sorted order, and how many distinct ones there are.
type nameClass struct {
	first, second string
	n             int
}

func (c *nameClass) add(k string) {
	switch {
	case k < c.first:
		c.first, c.second = k, c.first
	case c.n == 1 || k < c.second:
		c.second = k
	}
	c.n++
}

// queryProblem is the problem to report of a query string: the one of the
// first name in sorted order, and of that name the first in check order
// (repeated, invalid UTF-8, variant of a param, folded duplicate).
type queryProblem struct {
	set  bool
	name string
	prio int
	err  *Error
}

func (p *queryProblem) note(name string, prio int, err *Error) {
	if !p.set || name < p.name || (name == p.name && prio < p.prio) {
		*p = queryProblem{set: true, name: name, prio: prio, err: err}
	}
}

// wellFormedQuery reports whether url.ParseQuery would read raw without an
// error: no ';' separators and no broken escapes.
func wellFormedQuery(raw string) bool {
	return !strings.Contains(raw, ";") && validEscapes(raw)
}

// QueryNames reports whether a raw query string names any parameter the route
// reads from its body, in any spelling a framework binds to it ("LicenseKey",
// "licenseKey[]", "licenseKey[0]", "license_key"): a backend that merges
// query and body would then see a value keygate did not check. A name with a
// control character or over 128 bytes, or past the folding budget, makes the
// query malformed ("", true).
func (r *Route) QueryNames(rawQuery string) (string, bool) {
	if rawQuery == "" || r.query {
		return "", false
	}
	// One pass over the raw query, as url.ParseQuery reads it but without
	// building its map or sorting its names: a query of thousands of names
	// costs no more per byte than a body. A malformed query wins over a
	// name, and of several names the first in sorted order is reported.
	found, bad := "", false
	var forwarded []string // allow_query names seen
	fo := newNameFolder()
	for part := range strings.SplitSeq(rawQuery, "&") {
		if strings.ContainsAny(part, ";#") { // a separator to some backends, the start of a fragment to others
			return "", true
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		if !validEscapes(rawValue) {
			return "", true
		}
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return "", true
		}
		if checkName(name) != nil || controlName(name) {
			return "", true
		}
		if repeated(r.AllowQuery, name, &forwarded) { // forwarded twice, one backend reads the first, another the last
			return "", true
		}
		if name == "" || (bad && name > found) {
			continue
		}
		i, e := queryVariantFold(r.params, name, "", &fo)
		if e != nil {
			return "", true
		}
		if i >= 0 {
			found, bad = name, true
		}
	}
	return found, bad
}

// repeated reports whether name is one of names seen before in seen, and
// records it there when it is one of names.
func repeated(names []string, name string, seen *[]string) bool {
	if !allowed(names, name) {
		return false
	}
	if allowed(*seen, name) {
		return true
	}
	*seen = append(*seen, name)
	return false
}

// validEscapes reports whether every '%' in s starts a %XX escape, as
// url.QueryUnescape requires, without unescaping.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; i = strings.IndexByte(s, '%') {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		s = s[i+3:]
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanObject walks a JSON object that json.Valid accepted, recording the
// values of params. Any duplicate key is an error.
func scanObject(b []byte, params []*Param, out []value) *Error {
	return scanObjectIn(b, string(b), params, out)
}

// scanObjectIn is scanObject where src holds the bytes of b as a string;
// the strings recorded are substrings of it.
func scanObjectIn(b []byte, src string, params []*Param, out []value) *Error {
	s := jsonscan.New(b, src)
	if !s.Object() {
		return badRequest(msgNotObject)
	}
	// a member takes at least 6 bytes ("k":0,); sizing the map for a third
	// of that many saves most of its growth when a body is all keys
	keys := keySet{hint: len(b) / 18}
	fo := newNameFolder()
	for {
		m, ok := s.Member()
		if !ok {
			return nil
		}
		if m.KeyEnd-m.KeyStart-2 > 6*maxNameBytes { // too long however it decodes: not worth decoding
			return badRequest(msgNameTooLong)
		}
		key := s.Text(m.KeyStart, m.KeyEnd, m.Escaped)
		if e := checkName(key); e != nil {
			return e
		}
		folded, e := fo.fold(key) // once per key: the fold is the costly part
		if e != nil {
			return e
		}
		idx := paramIndexIn(params, key)
		if idx < 0 {
			if j := foldedIndex(params, folded); j >= 0 {
				return badRequest("Unexpected parameter %s (did you mean %s?)", safeName(key), params[j].Name)
			}
		}
		if e := keys.addFolded(key, folded); e != nil {
			return e
		}
		if key == "__proto__" || key == "constructor" || key == "prototype" {
			// JavaScript backends that merge bodies into objects can be steered through these
			return badRequest("Parameter %s is not allowed", key)
		}
		if methodOverride(key) {
			// Laravel and Symfony take the method of a POST from it: the
			// backend would run another route than the one checked
			return badRequest("Parameter %s is not allowed", safeName(key))
		}
		if idx < 0 {
			continue
		}
		raw, text := b[m.ValStart:m.ValEnd], src[m.ValStart:m.ValEnd]
		switch raw[0] {
		case '"':
			sc := jsonscan.New(raw, text)
			out[idx] = value{kind: 's', str: sc.ReadString()}
		case '{':
			out[idx] = value{kind: 'o', raw: raw}
		case '[':
			out[idx] = value{kind: 'a'}
		case 'n':
			out[idx] = value{kind: 'z'}
		case 't', 'f':
			out[idx] = value{kind: 'b', str: text}
		default:
			out[idx] = value{kind: 'n', str: text}
		}
	}
}

func paramIndexIn(ps []*Param, name string) int {
	for i, p := range ps {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// safeName returns a parameter name fit to echo in a message.
func safeName(s string) string {
	if len(s) > 64 || !paramRE.MatchString(s) {
		return "(unprintable name)"
	}
	return s
}

// Validate applies the route's parameter rules. A missing required parameter
// is reported as "Missing required params"; anything else names the parameter
// and what is wrong with it.
func (v *Values) Validate() *Error {
	if e := checkParams(v.route.params, v.vals, ""); e != nil {
		return e
	}
	for _, group := range v.route.Exclusive {
		var present []string
		for _, name := range group {
			if val := v.vals[v.route.paramIndex(name)]; val.kind != 0 && val.kind != 'z' {
				present = append(present, name)
			}
		}
		if len(present) > 1 {
			return badRequest("%s cannot be used together", strings.Join(present, " and "))
		}
	}
	return nil
}

func checkParams(params []*Param, vals []value, prefix string) *Error {
	for i, p := range params {
		if p.Required && (vals[i].kind == 0 || vals[i].kind == 'z' || (vals[i].kind == 's' && vals[i].str == "")) {
			return badRequest(MsgMissingParams)
		}
	}
	for i, p := range params {
		if e := p.check(vals[i], prefix); e != nil {
			return e
		}
	}
	return nil
}

func (p *Param) check(v value, prefix string) *Error {
	if v.kind == 0 || v.kind == 'z' {
		return nil
	}
	name := prefix + p.Name
	switch p.Type {
	case "boolean":
		if v.kind != 'b' {
			return badRequest("Invalid %s: must be true or false", name)
		}
		return nil
	case "object":
		if v.kind != 'o' {
			return badRequest("Invalid %s: must be an object", name)
		}
		sub := make([]value, len(p.fields))
		if e := scanObject(v.raw, p.fields, sub); e != nil {
			return e
		}
		return checkParams(p.fields, sub, name+".")
	}
	if v.kind != 's' {
		return badRequest("Invalid %s: must be a string", name)
	}
	if n := utf8.RuneCountInString(v.str); n < p.Min || (p.Max > 0 && n > p.Max) {
		switch {
		case p.Max == 0:
			return badRequest("Invalid %s: must be at least %d characters", name, p.Min)
		case p.Min == p.Max:
			return badRequest("Invalid %s: must be %d characters", name, p.Min)
		default:
			return badRequest("Invalid %s: must be %d to %d characters", name, p.Min, p.Max)
		}
	}
	switch p.Type {
	case "numeric":
		if !isDigits(v.str) {
			return badRequest("Invalid %s: must be a numeric string such as \"5\"", name)
		}
	case "datetime":
		if !isISO8601(v.str) {
			return badRequest("Invalid %s: must be an ISO 8601 date such as 2027-01-31 or 2027-01-31T00:00:00Z", name)
		}
	case "email":
		if !isEmail(v.str) {
			return badRequest("Invalid %s: must be an email address", name)
		}
	}
	if c := controlIn(v.str, p.AllowInvisible); c != 0 {
		if c == 'c' {
			return badRequest("Invalid %s: must not contain control characters", name)
		}
		return badRequest("Invalid %s: must not contain invisible or bidirectional control characters", name)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"}

func isISO8601(s string) bool {
	for _, l := range isoLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
}

func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && !strings.ContainsAny(s, " \t<>()[],;:\\\"") && !strings.Contains(domain, "@") &&
		strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") &&
		!strings.Contains(domain, "..")
}

// controlIn reports 'c' when s holds a C0 or C1 control, 'i' when it holds
// another invisible character (zero-width, bidi control, BOM, soft hyphen,
// line separator) and allowInvisible is false, else 0.
func controlIn(s string, allowInvisible bool) byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return 'c'
		}
		if c < utf8.RuneSelf {
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r >= 0x80 && r <= 0x9f:
			return 'c'
		case !allowInvisible && invisible(r):
			return 'i'
		}
		i += n - 1
	}
	return 0
}

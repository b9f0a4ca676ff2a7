package policy

import (
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Builtin is the built-in Keymint policy, as YAML: the six legacy routes with
// every documented constraint. `keygate policy` prints it.
//
//go:embed keymint.yaml
var Builtin []byte

// Policy is a validated route table. The zero value has no routes and matches
// nothing; build one with Parse, Load or Default.
type Policy struct {
	Routes []*Route `yaml:"routes" what:"route"`

	byPath map[string][]*Route
}

// Route is one API operation: where it lives, who may call it, what its
// parameters must look like, its limits and its error mapping.
type Route struct {
	Name    string            `yaml:"name"`                // operation name, used in token rules, logs and metrics
	Method  string            `yaml:"method"`              // HTTP method
	Path    string            `yaml:"path"`                // exact path
	Auth    string            `yaml:"auth"`                // "token" (default) or "none"
	Product string            `yaml:"product"`             // "body.<param>" or "query.<param>"; empty: the route has no product
	In      string            `yaml:"in"`                  // where params are read: "body" (JSON object) or "query"; default by method
	Params  map[string]*Param `yaml:"params" what:"param"` // parameter rules by name; parameters not listed pass unchecked
	// Exclusive lists groups of parameters of which at most one may be present.
	Exclusive [][]string `yaml:"exclusive"`
	// Idempotent routes honour the Idempotency-Key header: a retried request
	// gets the first answer again instead of reaching the backend twice.
	Idempotent bool         `yaml:"idempotent"`
	Limits     []*Limit     `yaml:"limits" what:"limit"`      // rate limits, all checked for every request
	Errors     []*ErrorRule `yaml:"errors" what:"error rule"` // upstream error overrides, first match wins
	// Response says what of the upstream's answers may reach a client; nil:
	// every answer passes the leak detector alone.
	Response *Response `yaml:"response"`
	// AllowQuery names the query parameters a body route forwards; any
	// other is dropped. Empty: the forwarded request has no query string.
	AllowQuery []string `yaml:"allow_query"`
	// Headers names request headers forwarded besides keygate's own; each
	// must come at most once.
	Headers []string `yaml:"headers"`

	located
	params   []*Param // sorted by name
	product  int      // index into params, -1 for none
	query    bool     // params come from the query string
	needAuth bool
	headers  []string // Headers, canonical
	secrets  []*Param // the params marked Secret, in params order
}

// Param is a rule for one parameter.
type Param struct {
	Required bool              `yaml:"required"`
	Type     string            `yaml:"type"` // string (default), numeric, datetime, email, boolean, object
	Min      int               `yaml:"min"`  // minimum length in characters (strings)
	Max      int               `yaml:"max"`  // maximum length in characters; 0: no limit
	Fields   map[string]*Param `yaml:"fields" what:"param"`
	// Secret marks a value that answers must not repeat (a license key): a
	// message or success field holding it is replaced or removed.
	Secret bool `yaml:"secret"`
	// Bucket is how the value names rate-limit buckets: "fold" (default,
	// BucketForm: variants of one key share a bucket) or "exact".
	Bucket string `yaml:"bucket"`
	// AllowInvisible lets string values hold format characters (zero-width
	// joiners, bidi controls); they are refused otherwise. Controls (C0, C1)
	// are always refused.
	AllowInvisible bool `yaml:"allow_invisible"`

	// Name is the parameter's name, filled in by validation.
	Name string `yaml:"-"`
	located
	fields []*Param // sorted by name
	logKey string   // "<Name>_hash", for Secret params
}

// Limit is one rate limit rule of a route.
type Limit struct {
	Name    string   `yaml:"name"`
	Key     []string `yaml:"key"`     // dimensions: ip, token, product, route, header:<Name>, or a param name
	Rate    int      `yaml:"rate"`    // requests per Per
	Per     Duration `yaml:"per"`     // the period
	Burst   int      `yaml:"burst"`   // requests allowed at once
	Message string   `yaml:"message"` // client message of the 429; default MsgTooMany
	Shadow  bool     `yaml:"shadow"`  // count and log, never block
	On      []int    `yaml:"on"`      // only these upstream statuses consume the rule; empty: every request

	// Dims is Key parsed, filled in by validation.
	Dims []Dim `yaml:"-"`
	located
}

// DimKind says what a rate-limit key dimension is made of.
type DimKind uint8

// Dimension kinds.
const (
	DimIP      DimKind = iota // client IP
	DimToken                  // access token (hashed)
	DimProduct                // the request's product
	DimRoute                  // the route name
	DimHeader                 // a request header, Name holds it
	DimParam                  // a request parameter, Name holds it
)

// Dim is one dimension of a rate-limit key.
type Dim struct {
	Kind DimKind
	Name string // header or parameter name
}

// ErrorRule overrides how an upstream error status is mapped for a route.
type ErrorRule struct {
	Status  int    `yaml:"status"`  // upstream status it applies to
	Match   string `yaml:"match"`   // optional: only when the upstream message contains this (case-insensitive)
	Pattern string `yaml:"pattern"` // optional: only when the upstream message matches this regular expression (case-insensitive)
	Code    int    `yaml:"code"`    // contract code to answer with
	Message string `yaml:"message"` // optional: client message to answer with

	located
	re *regexp.Regexp
}

// Default returns the built-in Keymint policy.
func Default() *Policy {
	p, err := Parse("built-in policy", Builtin)
	if err != nil {
		panic("policy: built-in policy is invalid: " + err.Error()) // caught by tests
	}
	return p
}

// Load reads and validates a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates a policy document. file labels problems; the error is a
// *FileError listing every problem found.
func Parse(file string, data []byte) (*Policy, error) {
	p := &Policy{}
	ps := decodeYAML(data, p)
	if len(ps) == 0 || len(p.Routes) > 0 { // report rule problems beside type problems
		p.validate(&ps)
	}
	if err := ps.Err(file); err != nil {
		return nil, err
	}
	return p, nil
}

// Match returns the route for a method and path, or nil.
func (p *Policy) Match(method, path string) *Route {
	for _, r := range p.byPath[path] {
		if r.Method == method {
			return r
		}
	}
	return nil
}

// PathKnown reports whether any route has this path.
func (p *Policy) PathKnown(path string) bool { return len(p.byPath[path]) > 0 }

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	paramRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	headerRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	pathRE   = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$|^/$`)
)

var methods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true,
}

// minInterval is the shortest emission interval (Per/Rate) accepted. GCRA
// scripts on Redis keep time in microseconds; a shorter interval never stores
// state and so never limits.
const minInterval = time.Microsecond

func (p *Policy) validate(ps *problems) {
	if len(p.Routes) == 0 {
		ps.Add(0, "no routes: a policy needs at least one route")
	}
	p.byPath = map[string][]*Route{}
	names := map[string]int{}
	for _, r := range p.Routes {
		if r == nil {
			ps.Add(0, "empty route")
			continue
		}
		r.validate(ps)
		if l, dup := names[r.Name]; dup && r.Name != "" {
			ps.At(r.pos("name"), "route name %q is already used at line %d", r.Name, l)
		}
		names[r.Name] = r.line
		if other := p.Match(r.Method, r.Path); other != nil {
			ps.At(r.pos("path"), "%s %s is already routed at line %d", r.Method, r.Path, other.line)
		}
		p.byPath[r.Path] = append(p.byPath[r.Path], r)
	}
	shared := map[string]*Limit{}
	for _, r := range p.Routes {
		for _, l := range r.limits() {
			first, ok := shared[l.Name]
			if !ok {
				shared[l.Name] = l
				continue
			}
			if !sameBucket(first, l) {
				ps.At(l.pos(""), "limit %s: limits with one name share a bucket, so key, rate, per, burst, on and shadow must match the one at line %d", l.Name, first.line)
			}
		}
	}
}

func (r *Route) limits() []*Limit {
	if r == nil {
		return nil
	}
	out := r.Limits[:0:0]
	for _, l := range r.Limits {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

func sameBucket(a, b *Limit) bool {
	return a.Rate == b.Rate && a.Per == b.Per && a.Burst == b.Burst && a.Shadow == b.Shadow &&
		slices.Equal(a.Key, b.Key) && slices.Equal(a.On, b.On)
}

func (r *Route) validate(ps *problems) {
	if !nameRE.MatchString(r.Name) {
		ps.At(r.pos("name"), "route name %q must be lower case letters, digits, - or _ (1-64, starting with a letter)", r.Name)
	}
	r.Method = strings.ToUpper(r.Method)
	if !methods[r.Method] {
		ps.At(r.pos("method"), "route %s: method %q must be one of GET, POST, PUT, PATCH, DELETE", r.Name, r.Method)
	}
	if !pathRE.MatchString(r.Path) || strings.Contains(r.Path, "/../") || strings.HasSuffix(r.Path, "/..") || strings.Contains(r.Path, "/./") {
		ps.At(r.pos("path"), "route %s: path %q must be an absolute path of plain segments (no query, no dot segments)", r.Name, r.Path)
	}
	if r.Idempotent && r.Method == http.MethodGet {
		ps.At(r.pos("idempotent"), "route %s: idempotent applies to POST, PUT, PATCH and DELETE routes; GET is idempotent already", r.Name)
	}
	switch r.Auth {
	case "", "token":
		r.Auth, r.needAuth = "token", true
	case "none":
	default:
		ps.At(r.pos("auth"), "route %s: auth %q must be token or none", r.Name, r.Auth)
	}
	switch r.In {
	case "":
		r.query = r.Method == http.MethodGet || r.Method == http.MethodDelete
		r.In = "body"
		if r.query {
			r.In = "query"
		}
	case "body":
	case "query":
		r.query = true
	default:
		ps.At(r.pos("in"), "route %s: in %q must be body or query", r.Name, r.In)
	}
	r.params = r.params[:0]
	for name, prm := range r.Params {
		if prm == nil {
			prm = &Param{located: located{line: r.line, col: r.col}}
			r.Params[name] = prm
		}
		prm.Name = name
		r.params = append(r.params, prm)
	}
	sortParams(r.params) // before validating: problems on one line keep name order
	r.secrets = r.secrets[:0]
	for _, prm := range r.params {
		if prm.Secret {
			prm.logKey = prm.Name + "_hash"
			r.secrets = append(r.secrets, prm)
		}
	}
	for _, prm := range r.params {
		prm.validate(ps, r.Name, 0)
	}
	for _, prm := range r.params {
		if r.query && prm.Type == "object" {
			ps.At(prm.pos("type"), "route %s: param %s: objects cannot be read from a query string", r.Name, prm.Name)
		}
	}
	r.product = -1
	if r.Product != "" {
		src, name, ok := strings.Cut(r.Product, ".")
		if !ok || (src != "body" && src != "query") {
			ps.At(r.pos("product"), "route %s: product %q must be body.<param> or query.<param>", r.Name, r.Product)
		} else if src != r.In {
			ps.At(r.pos("product"), "route %s: product %q is read from %s but the route's params are in the %s", r.Name, r.Product, src, r.In)
		} else if r.product = r.paramIndex(name); r.product < 0 {
			ps.At(r.pos("product"), "route %s: product %q names no parameter listed in params", r.Name, r.Product)
		} else if r.params[r.product].Type != "string" {
			ps.At(r.pos("product"), "route %s: product parameter %q must be of type string", r.Name, name)
		}
	}
	for _, group := range r.Exclusive {
		if len(group) < 2 {
			ps.At(r.pos("exclusive"), "route %s: an exclusive group needs at least two params", r.Name)
		}
		for _, name := range group {
			if r.paramIndex(name) < 0 {
				ps.At(r.pos("exclusive"), "route %s: exclusive names %q, which is not in params", r.Name, name)
			}
		}
	}
	limits := map[string]bool{}
	for _, l := range r.Limits {
		if l == nil { // "- " or "~": the proxy would dereference it on every request
			ps.At(r.pos("limits"), "route %s: empty limit", r.Name)
			continue
		}
		l.validate(ps, r)
		if limits[l.Name] {
			ps.At(l.pos("name"), "route %s: limit name %q is used twice", r.Name, l.Name)
		}
		limits[l.Name] = true
	}
	r.validateForwarding(ps)
	for _, e := range r.Errors {
		if e == nil {
			ps.At(r.pos("errors"), "route %s: empty error rule", r.Name)
			continue
		}
		if e.Status < 300 || e.Status > 599 {
			ps.At(e.pos("status"), "route %s: error rule status %d must be an upstream error status (300-599)", r.Name, e.Status)
		}
		if e.Code < CodeInvalid || e.Code > CodeRateLimit {
			ps.At(e.pos("code"), "route %s: error rule code %d must be 1, 2 or 3", r.Name, e.Code)
		}
		if len(e.Message) > maxMessage || strings.ContainsAny(e.Message, "\r\n") {
			ps.At(e.pos("message"), "route %s: error rule message must be one line of at most %d bytes", r.Name, maxMessage)
		}
		e.validatePattern(ps, r.Name)
	}
	r.Response.validate(ps, r)
}

var paramTypes = map[string]bool{"string": true, "numeric": true, "datetime": true, "email": true, "boolean": true, "object": true}

func (p *Param) validate(ps *problems, route string, depth int) {
	if !paramRE.MatchString(p.Name) {
		ps.At(p.pos(""), "route %s: param name %q must be letters, digits or _", route, p.Name)
	}
	if p.Type == "" {
		p.Type = "string"
	}
	if !paramTypes[p.Type] {
		ps.At(p.pos("type"), "route %s: param %s: type %q must be one of string, numeric, datetime, email, boolean, object", route, p.Name, p.Type)
	}
	if p.Min < 0 || p.Max < 0 || (p.Max > 0 && p.Min > p.Max) {
		ps.At(p.pos("min"), "route %s: param %s: min %d and max %d must be >= 0 with min <= max", route, p.Name, p.Min, p.Max)
	}
	if (p.Min > 0 || p.Max > 0) && (p.Type == "boolean" || p.Type == "object") {
		ps.At(p.pos("max"), "route %s: param %s: min and max apply to string values only", route, p.Name)
	}
	switch p.Bucket {
	case "":
		p.Bucket = BucketFold
	case BucketFold, BucketExact:
	default:
		ps.At(p.pos("bucket"), "route %s: param %s: bucket %q must be fold or exact", route, p.Name, p.Bucket)
	}
	if p.Type == "object" {
		if depth > 0 {
			ps.At(p.pos("type"), "route %s: param %s: objects may not nest", route, p.Name)
		}
		if len(p.Fields) == 0 {
			ps.At(p.pos("type"), "route %s: param %s: an object needs fields", route, p.Name)
		}
	} else if len(p.Fields) > 0 {
		ps.At(p.pos("fields"), "route %s: param %s: fields apply to type object only", route, p.Name)
	}
	p.fields = p.fields[:0]
	for name, f := range p.Fields {
		if f == nil {
			f = &Param{located: located{line: p.line, col: p.col}}
			p.Fields[name] = f
		}
		f.Name = name
		p.fields = append(p.fields, f)
	}
	sortParams(p.fields)
	for _, f := range p.fields {
		f.validate(ps, route, depth+1)
	}
}

func (l *Limit) validate(ps *problems, r *Route) {
	where := fmt.Sprintf("route %s: limit %s", r.Name, l.Name)
	if !nameRE.MatchString(l.Name) {
		ps.At(l.pos("name"), "route %s: limit name %q must be lower case letters, digits, - or _", r.Name, l.Name)
	}
	if len(l.Key) == 0 {
		ps.At(l.pos("key"), "%s: key needs at least one dimension (ip, token, product, route, header:<Name> or a param)", where)
	}
	l.Dims = l.Dims[:0]
	for _, k := range l.Key {
		d, err := r.parseDim(k)
		if err != "" {
			ps.At(l.pos("key"), "%s: %s", where, err)
			continue
		}
		l.Dims = append(l.Dims, d)
	}
	if l.Rate <= 0 {
		ps.At(l.pos("rate"), "%s: rate must be > 0", where)
	}
	if l.Per <= 0 {
		ps.At(l.pos("per"), "%s: per must be a positive duration such as 1m", where)
	}
	if l.Burst <= 0 {
		ps.At(l.pos("burst"), "%s: burst must be > 0 (it is how many requests may come at once)", where)
	}
	if l.Rate > 0 && l.Per > 0 && time.Duration(l.Per)/time.Duration(l.Rate) < minInterval {
		ps.At(l.pos("rate"), "%s: rate %d per %s is faster than one request a microsecond", where, l.Rate, time.Duration(l.Per))
	}
	if l.Message == "" {
		l.Message = MsgTooMany
	} else if len(l.Message) > maxMessage || strings.ContainsAny(l.Message, "\r\n") {
		ps.At(l.pos("message"), "%s: message must be one line of at most %d bytes", where, maxMessage)
	}
	for _, s := range l.On {
		if s < 100 || s > 599 {
			ps.At(l.pos("on"), "%s: on lists %d, which is not an HTTP status", where, s)
		}
	}
}

func (r *Route) parseDim(k string) (Dim, string) {
	switch k {
	case "ip":
		return Dim{Kind: DimIP}, ""
	case "token":
		if !r.needAuth {
			return Dim{}, "key token on a route with auth none"
		}
		return Dim{Kind: DimToken}, ""
	case "product":
		if r.product < 0 {
			return Dim{}, "key product on a route with no product"
		}
		return Dim{Kind: DimProduct}, ""
	case "route":
		return Dim{Kind: DimRoute}, ""
	}
	if h, ok := strings.CutPrefix(k, "header:"); ok {
		if !headerRE.MatchString(h) {
			return Dim{}, fmt.Sprintf("key %q: bad header name", k)
		}
		return Dim{Kind: DimHeader, Name: http.CanonicalHeaderKey(h)}, ""
	}
	if r.paramIndex(k) < 0 {
		return Dim{}, fmt.Sprintf("key %q is not ip, token, product, route, header:<Name> or a param of the route", k)
	}
	return Dim{Kind: DimParam, Name: k}, ""
}

func (r *Route) paramIndex(name string) int {
	for i, p := range r.params {
		if p.Name == name {
			return i
		}
	}
	return -1
}

func sortParams(ps []*Param) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
}

// NeedsToken reports whether the route requires an access token.
func (r *Route) NeedsToken() bool { return r.needAuth }

// HasProduct reports whether the route names a product parameter.
func (r *Route) HasProduct() bool { return r.product >= 0 }

// ParamsInQuery reports whether the route's parameters come from the query string.
func (r *Route) ParamsInQuery() bool { return r.query }

package policy

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Response says what of a route's upstream answers may reach a client. A
// route without one passes every success field and message that the leak
// detector (Leak) finds clean.
type Response struct {
	// Fields lists the success body's fields; unlisted ones are removed.
	// Empty: every field passes the leak detector alone.
	Fields map[string]*Field `yaml:"fields" what:"response field"`
	// Messages lists the messages, success and error, that may pass; others
	// become the status's default (or the matching error rule's). Empty:
	// every message the leak detector finds clean.
	Messages MessageList `yaml:"messages"`
	// Headers names upstream answer headers passed to clients beside
	// keygate's own list; their values pass the leak detector too.
	Headers []string `yaml:"headers"`

	located
	headers []string // canonical
}

// MessageList is a list of messages. In YAML an item may itself be a list,
// which is spliced in: one anchored list of error messages serves every
// route (messages: [*errors, "License valid"]).
type MessageList []string

// UnmarshalStrictYAML reads a list of strings or of lists of strings for
// strictyaml.Decode.
func (m *MessageList) UnmarshalStrictYAML(n *yaml.Node) (want string) {
	var l MessageList
	ok := l.flatten(n, 0)
	*m = l
	if !ok {
		return "a list of strings (or of lists of strings)"
	}
	return ""
}

// flatten appends the strings of n, a list of strings or of lists of
// strings, and reports whether n has that shape.
func (m *MessageList) flatten(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.SequenceNode && depth < 2:
		for _, c := range n.Content {
			if !m.flatten(c, depth+1) {
				return false
			}
		}
		return true
	case n.Kind == yaml.ScalarNode && depth > 0:
		var s string
		if n.Decode(&s) != nil {
			return false
		}
		*m = append(*m, s)
		return true
	}
	return false
}

// Field is the rule for one field of a success body.
type Field struct {
	// Type is text (default: a string the leak detector finds clean), id (a
	// string of letters, digits, - and _, which may repeat the request's own
	// secret parameters: get-key answers with the key it was asked about),
	// email, datetime, number, boolean, object or list (of objects). null is
	// accepted for every type.
	Type   string            `yaml:"type"`
	Fields map[string]*Field `yaml:"fields" what:"response field"` // for object and list

	located
}

var fieldTypes = map[string]bool{"text": true, "id": true, "email": true, "datetime": true, "number": true, "boolean": true, "object": true, "list": true}

// refusedHeaders may never be passed: they set state in the client, send it
// elsewhere, name the server or describe a body keygate rewrites.
var refusedHeaders = []string{"Set-Cookie", "Set-Cookie2", "Location", "Content-Location", "Refresh", "Server", "X-Powered-By",
	"Via", "Content-Encoding", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer", "Upgrade", "Alt-Svc",
	"Www-Authenticate", "Proxy-Authenticate", "Link", "Strict-Transport-Security", "Content-Security-Policy",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"}

// maxFieldDepth bounds how deep response fields nest.
const maxFieldDepth = 4

func (r *Response) validate(ps *problems, route *Route) {
	if r == nil {
		return
	}
	for _, m := range r.Messages {
		if m == "" || len(m) > maxMessage || strings.ContainsAny(m, "\r\n") {
			ps.At(r.pos("messages"), "route %s: response message %q must be one line of 1 to %d bytes", route.Name, m, maxMessage)
		} else if c := Leak(m); c != "" {
			ps.At(r.pos("messages"), "route %s: response message %q looks like internal detail (%s)", route.Name, m, c)
		}
	}
	r.headers = r.headers[:0]
	for _, h := range r.Headers {
		c := http.CanonicalHeaderKey(h)
		switch {
		case !headerRE.MatchString(h):
			ps.At(r.pos("headers"), "route %s: response header %q must be a header name", route.Name, h)
		case slices.Contains(refusedHeaders, c):
			ps.At(r.pos("headers"), "route %s: response header %s may not be passed to clients", route.Name, c)
		default:
			r.headers = append(r.headers, c)
		}
	}
	validateFields(ps, route.Name, r.Fields, r.line, 0)
}

func validateFields(ps *problems, route string, fields map[string]*Field, line, depth int) {
	for name, f := range fields {
		if f == nil {
			f = &Field{located: located{line: line}}
			fields[name] = f
		}
		if f.Type == "" {
			f.Type = "text"
		}
		switch {
		case depth == 0 && (name == "message" || name == "code"):
			ps.At(f.pos(""), "route %s: response field %s is the contract's own; leave it out", route, name)
		case !paramRE.MatchString(name):
			ps.At(f.pos(""), "route %s: response field name %q must be letters, digits or _", route, name)
		}
		if !fieldTypes[f.Type] {
			ps.At(f.pos("type"), "route %s: response field %s: type %q must be one of text, id, email, datetime, number, boolean, object, list", route, name, f.Type)
		}
		nested := f.Type == "object" || f.Type == "list"
		switch {
		case nested && len(f.Fields) == 0:
			ps.At(f.pos("type"), "route %s: response field %s: %s needs fields", route, name, f.Type)
		case !nested && len(f.Fields) > 0:
			ps.At(f.pos("fields"), "route %s: response field %s: fields apply to object and list only", route, name)
		case nested && depth+1 >= maxFieldDepth:
			ps.At(f.pos(""), "route %s: response field %s nests deeper than %d levels", route, name, maxFieldDepth)
		case nested:
			validateFields(ps, route, f.Fields, f.line, depth+1)
		}
	}
}

// AnswerHeaders returns the upstream answer headers the route passes beside
// keygate's own list, in canonical form.
func (r *Route) AnswerHeaders() []string {
	if r == nil || r.Response == nil {
		return nil
	}
	return r.Response.headers
}

// Secrets returns what an answer to this request must not repeat: token, if
// not empty, and the values of the route's secret parameters.
func (r *Route) Secrets(v *Values, token string) []string {
	var out []string
	if token != "" {
		out = append(out, token)
	}
	if r == nil || v == nil {
		return out
	}
	for _, p := range r.params {
		if p.Secret {
			if s, ok := v.Get(p.Name); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// allowedMessage reports whether an upstream message may reach a client: it
// passes the leak detector and, when the route lists messages, is listed.
func (r *Route) allowedMessage(msg string, secrets []string) bool {
	return safeMessage(msg, secrets) && r.listsMessage(msg)
}

// listsMessage reports whether msg is on the route's message list, or the
// route has none.
func (r *Route) listsMessage(msg string) bool {
	if r == nil || r.Response == nil || len(r.Response.Messages) == 0 {
		return true
	}
	return slices.Contains(r.Response.Messages, msg)
}

func (e *ErrorRule) validatePattern(ps *problems, route string) {
	e.re = nil
	if e.Pattern == "" {
		return
	}
	if e.Match != "" {
		ps.At(e.pos("pattern"), "route %s: error rule: give match or pattern, not both", route)
	}
	re, err := regexp.Compile("(?i)" + e.Pattern)
	if err != nil {
		ps.At(e.pos("pattern"), "route %s: error rule pattern: %v", route, err)
		return
	}
	e.re = re
}

// matches reports whether the rule applies to an upstream message.
func (e *ErrorRule) matches(msg string) bool {
	switch {
	case e.re != nil:
		return e.re.MatchString(msg)
	case e.Pattern != "": // not validated
		return false
	case e.Match != "":
		return containsFold(msg, e.Match)
	}
	return true
}

// SecretParams returns the route's parameters marked secret, in policy
// order; nil for a nil route.
func (r *Route) SecretParams() []*Param {
	if r == nil {
		return nil
	}
	return r.secrets
}

// LogKey is the log attribute that carries the hash of a Secret
// parameter's value, "<name>_hash": logs name a secret value only by its
// hash. It is "" for a parameter that is not Secret.
func (p *Param) LogKey() string { return p.logKey }

package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/leak"
)

// maxSuccessDepth bounds the nesting of a success body keygate rebuilds.
const maxSuccessDepth = 16

// Removed names a success field keygate removed and why, for logs and
// metrics: Path is the field's place in the body (data.devices[0].hostId),
// never its value.
type Removed struct {
	Path   string
	Reason string // a Leak class, or "unlisted" or "type"
}

// VetSuccess checks the body of an upstream success and returns the body to
// send. The body must be one JSON object in UTF-8 without duplicate keys,
// whose "code", if present, is 0 and whose "message", if present, is a
// string; otherwise ok is false and the answer must become a contract 500.
// Fields the route's response does not list, of the wrong type, or whose
// strings (or names) show internal detail or one of secrets are removed and
// reported; a message that does is replaced by "OK". The result is compact
// JSON with "message" and "code" first.
func (r *Route) VetSuccess(body []byte, secrets []string) (out []byte, removed []Removed, ok bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, nil, false
	}
	rd := reader{b: body}
	root, err := rd.node(0)
	if err != nil || root.kind != '{' {
		return nil, nil, false
	}
	v := vetter{secrets: secrets}
	var fields map[string]*Field
	if r != nil && r.Response != nil {
		fields = r.Response.Fields
	}
	msg, code := MsgOK, "0"
	var rest node
	rest.kind = '{'
	for i, k := range root.keys {
		val := root.vals[i]
		switch k {
		case "code":
			if val.kind != 'n' || val.lit != "0" {
				return nil, nil, false
			}
			continue
		case "message":
			if val.kind != 's' {
				return nil, nil, false
			}
			if val.str == MsgOK || r.allowedMessage(val.str, secrets) {
				msg = val.str
			} else {
				v.drop("message", "message")
			}
			continue
		}
		if fields == nil {
			if v.free(k, k, val) {
				rest.keys, rest.vals = append(rest.keys, k), append(rest.vals, val)
			}
			continue
		}
		if f := fields[k]; f == nil {
			v.drop(k, "unlisted")
		} else if v.typed(k, f, val) {
			rest.keys, rest.vals = append(rest.keys, k), append(rest.vals, val)
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"message":`)
	writeString(&b, msg)
	b.WriteString(`,"code":`)
	b.WriteString(code)
	for i, k := range rest.keys {
		b.WriteByte(',')
		writeString(&b, k)
		b.WriteByte(':')
		rest.vals[i].write(&b)
	}
	b.WriteByte('}')
	return b.Bytes(), v.removed, true
}

type vetter struct {
	secrets []string
	removed []Removed
}

func (v *vetter) drop(path, reason string) {
	v.removed = append(v.removed, Removed{Path: path, Reason: reason})
}

// free checks a value of a route without listed fields: every name and
// string in it must be clean. Members of nested objects and items of arrays
// that are not are removed in place; it reports whether n itself stays.
func (v *vetter) free(path, name string, n *node) bool {
	if c := Leak(name, v.secrets...); c != "" {
		v.drop(path, c)
		return false
	}
	switch n.kind {
	case 's':
		if c := Leak(n.str, v.secrets...); c != "" {
			v.drop(path, c)
			return false
		}
	case '{':
		keep := n.keys[:0:0]
		vals := n.vals[:0:0]
		for i, k := range n.keys {
			if v.free(path+"."+k, k, n.vals[i]) {
				keep, vals = append(keep, k), append(vals, n.vals[i])
			}
		}
		n.keys, n.vals = keep, vals
	case '[':
		items := n.vals[:0:0]
		for i, it := range n.vals {
			if v.free(path+"["+strconv.Itoa(i)+"]", "", it) {
				items = append(items, it)
			}
		}
		n.vals = items
	}
	return true
}

var (
	idRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	emailRE    = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	datetimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$`)
)

// typed checks a value against its field rule; it reports whether n stays.
func (v *vetter) typed(path string, f *Field, n *node) bool {
	if n.kind == 'l' && n.lit == "null" {
		return true
	}
	reason := ""
	switch f.Type {
	case "text":
		if n.kind != 's' {
			reason = "type"
		} else {
			reason = Leak(n.str, v.secrets...)
		}
	case "id":
		switch {
		case n.kind != 's' || !idRE.MatchString(n.str):
			reason = "type"
		case len(v.secrets) > 0 && leak.Echoes(n.str, v.secrets[:1]) != "": // never the token
			reason = LeakEcho
		}
	case "email":
		if n.kind != 's' || !emailRE.MatchString(n.str) {
			reason = "type"
		} else if c := leak.Echoes(n.str, v.secrets); c != "" {
			reason = c
		}
	case "datetime":
		if n.kind != 's' || !datetimeRE.MatchString(n.str) {
			reason = "type"
		}
	case "number":
		if n.kind != 'n' {
			reason = "type"
		}
	case "boolean":
		if n.kind != 'l' {
			reason = "type"
		}
	case "object":
		if n.kind != '{' {
			reason = "type"
		} else {
			v.members(path, f.Fields, n)
		}
	case "list":
		if n.kind != '[' {
			reason = "type"
			break
		}
		items := n.vals[:0:0]
		for i, it := range n.vals {
			p := path + "[" + strconv.Itoa(i) + "]"
			if it.kind != '{' {
				v.drop(p, "type")
				continue
			}
			v.members(p, f.Fields, it)
			items = append(items, it)
		}
		n.vals = items
	}
	if reason != "" {
		v.drop(path, reason)
		return false
	}
	return true
}

// members keeps the listed, valid members of object n.
func (v *vetter) members(path string, fields map[string]*Field, n *node) {
	keep := n.keys[:0:0]
	vals := n.vals[:0:0]
	for i, k := range n.keys {
		p := path + "." + k
		if f := fields[k]; f == nil {
			v.drop(p, "unlisted")
		} else if v.typed(p, f, n.vals[i]) {
			keep, vals = append(keep, k), append(vals, n.vals[i])
		}
	}
	n.keys, n.vals = keep, vals
}

// node is a JSON value read whole: an object or array with its members in
// order, a string, a number or a literal.
type node struct {
	kind byte   // '{', '[', 's' string, 'n' number, 'l' true, false or null
	str  string // string value
	lit  string // number or literal as written
	keys []string
	vals []*node
}

var errShape = errors.New("policy: body is not one plain JSON value")

// reader reads a body that json.Valid and utf8.Valid accepted: it need not
// check syntax, only build nodes.
type reader struct {
	b []byte
	i int
}

func (r *reader) ws() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

// node reads one value. Duplicate keys and nesting deeper than
// maxSuccessDepth are refused: two parsers could read the first differently,
// and the second costs stack for nothing.
func (r *reader) node(depth int) (*node, error) {
	if depth > maxSuccessDepth {
		return nil, errShape
	}
	r.ws()
	switch c := r.b[r.i]; {
	case c == '{':
		r.i++
		n := &node{kind: '{'}
		for {
			r.ws()
			if r.b[r.i] == '}' {
				r.i++
				return n, nil
			}
			if r.b[r.i] == ',' {
				r.i++
				r.ws()
			}
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			if slices.Contains(n.keys, k) {
				return nil, errShape
			}
			r.ws()
			r.i++ // ':'
			v, err := r.node(depth + 1)
			if err != nil {
				return nil, err
			}
			n.keys, n.vals = append(n.keys, k), append(n.vals, v)
		}
	case c == '[':
		r.i++
		n := &node{kind: '['}
		for {
			r.ws()
			if r.b[r.i] == ']' {
				r.i++
				return n, nil
			}
			if r.b[r.i] == ',' {
				r.i++
			}
			v, err := r.node(depth + 1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
	case c == '"':
		str, err := r.str()
		return &node{kind: 's', str: str}, err
	case c == 't' || c == 'f' || c == 'n':
		start := r.i
		for r.i < len(r.b) && r.b[r.i] >= 'a' && r.b[r.i] <= 'z' {
			r.i++
		}
		return &node{kind: 'l', lit: string(r.b[start:r.i])}, nil
	default: // a number
		start := r.i
		for r.i < len(r.b) && strings.IndexByte("+-.0123456789eE", r.b[r.i]) >= 0 {
			r.i++
		}
		return &node{kind: 'n', lit: string(r.b[start:r.i])}, nil
	}
}

// str reads the string at r.i.
func (r *reader) str() (string, error) {
	start := r.i
	r.i++
	escaped := false
	for r.b[r.i] != '"' {
		if r.b[r.i] == '\\' {
			escaped = true
			r.i++
		}
		r.i++
	}
	r.i++
	if !escaped {
		return string(r.b[start+1 : r.i-1]), nil
	}
	var s string
	err := json.Unmarshal(r.b[start:r.i], &s)
	return s, err
}

func (n *node) write(b *bytes.Buffer) {
	switch n.kind {
	case 's':
		writeString(b, n.str)
	case 'n', 'l':
		b.WriteString(n.lit)
	case '{':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			v.write(b)
		}
		b.WriteByte(']')
	}
}

// writeString writes s as a JSON string. s is valid UTF-8 (VetSuccess
// checked the body); control characters, U+2028 and U+2029 are escaped.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i, r := range s {
		var esc string
		switch {
		case r == '"':
			esc = `\"`
		case r == '\\':
			esc = `\\`
		case r == '\n':
			esc = `\n`
		case r == '\r':
			esc = `\r`
		case r == '\t':
			esc = `\t`
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			esc = `\u` + string([]byte{hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf]})
		default:
			continue
		}
		b.WriteString(s[start:i])
		b.WriteString(esc)
		start = i + utf8.RuneLen(r)
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

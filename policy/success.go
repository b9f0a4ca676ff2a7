package policy

import (
	"strconv"

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
	root := readSuccess(body)
	if root == nil || root.kind != '{' {
		return nil, nil, false
	}
	v := vetter{needles: leak.Prepare(secrets)}
	v.token = v.needles.First(1)
	var fields map[string]*Field
	if r != nil && r.Response != nil {
		fields = r.Response.Fields
	}
	msg, code := MsgOK, "0"
	rest := node{kind: '{', keys: root.keys[:0], vals: root.vals[:0]} // in place, as in free
	for i, k := range root.keys {
		val := root.vals[i]
		switch k {
		case "code":
			if val.kind != 'n' || val.str != "0" {
				return nil, nil, false
			}
			continue
		case "message":
			if val.kind != 's' {
				return nil, nil, false
			}
			if val.str == MsgOK || v.allowedMessage(r, val.str) {
				msg = val.str
			} else {
				v.push("message", -1)
				v.drop("message")
				v.pop()
			}
			continue
		}
		v.push(k, -1)
		if fields == nil {
			if v.free(k, val) {
				rest.keys, rest.vals = append(rest.keys, k), append(rest.vals, val)
			}
		} else if f := fields[k]; f == nil {
			v.drop("unlisted")
		} else if v.typed(f, val) {
			rest.keys, rest.vals = append(rest.keys, k), append(rest.vals, val)
		}
		v.pop()
	}
	b := make([]byte, 0, len(body)+len(msg)+32)
	b = append(b, `{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"code":`...)
	b = append(b, code...)
	for i, k := range rest.keys {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		b = rest.vals[i].append(b)
	}
	b = append(b, '}')
	return b, v.removed, true
}

// vetter checks a success body's values and records what it removes. The
// place of the value being checked is kept as steps, and the path of a
// Removed built from them only when something is removed, not for every
// value checked.
type vetter struct {
	needles leak.Needles // the secrets, folded once for every string of the body
	token   leak.Needles // the first of them: the request's token
	removed []Removed
	at      [maxSuccessDepth + 2]step // the reader nests no deeper
	depth   int
}

// step is one level of a place: an object member's key, or an array index
// when index >= 0.
type step struct {
	key   string
	index int
}

func (v *vetter) push(key string, index int) {
	v.at[v.depth] = step{key, index}
	v.depth++
}

func (v *vetter) pop() { v.depth-- }

// drop records the removal of the value being checked.
func (v *vetter) drop(reason string) {
	var b []byte
	for i, s := range v.at[:v.depth] {
		switch {
		case s.index >= 0:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
			continue
		case i > 0:
			b = append(b, '.')
		}
		b = append(b, s.key...)
	}
	v.removed = append(v.removed, Removed{Path: string(b), Reason: reason})
}

// allowedMessage is r.allowedMessage with the body's secrets folded once,
// the cheap list check first.
func (v *vetter) allowedMessage(r *Route, msg string) bool {
	return r.listsMessage(msg) && msg != "" && len(msg) <= maxMessage && v.needles.Class(msg) == ""
}

// free checks a value of a route without listed fields: every name and
// string in it must be clean. Members of nested objects and items of arrays
// that are not are removed in place; it reports whether n itself stays.
// name is the value's key, "" for an array item.
func (v *vetter) free(name string, n *node) bool {
	if c := v.needles.Class(name); c != "" {
		v.drop(c)
		return false
	}
	switch n.kind {
	case 's':
		if c := v.needles.Class(n.str); c != "" {
			v.drop(c)
			return false
		}
	case '{':
		keep, vals := n.keys[:0], n.vals[:0] // in place: a member is written at or before where it was read
		for i, k := range n.keys {
			v.push(k, -1)
			if v.free(k, n.vals[i]) {
				keep, vals = append(keep, k), append(vals, n.vals[i])
			}
			v.pop()
		}
		n.keys, n.vals = keep, vals
	case '[':
		items := n.vals[:0]
		for i, it := range n.vals {
			v.push("", i)
			if v.free("", it) {
				items = append(items, it)
			}
			v.pop()
		}
		n.vals = items
	}
	return true
}

// typed checks a value against its field rule; it reports whether n stays.
func (v *vetter) typed(f *Field, n *node) bool {
	if n.kind == 'l' && n.str == "null" {
		return true
	}
	reason := ""
	switch f.Type {
	case "text":
		if n.kind != 's' {
			reason = "type"
		} else {
			reason = v.needles.Class(n.str)
		}
	case "id":
		switch {
		case n.kind != 's' || !isFieldID(n.str):
			reason = "type"
		case v.token.Echoes(n.str) != "": // never the token
			reason = LeakEcho
		}
	case "email":
		if n.kind != 's' || !isFieldEmail(n.str) {
			reason = "type"
		} else if c := v.needles.Echoes(n.str); c != "" {
			reason = c
		}
	case "datetime":
		if n.kind != 's' || !isFieldDatetime(n.str) {
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
			v.members(f.Fields, n)
		}
	case "list":
		if n.kind != '[' {
			reason = "type"
			break
		}
		items := n.vals[:0] // in place, as in free
		for i, it := range n.vals {
			v.push("", i)
			if it.kind != '{' {
				v.drop("type")
			} else {
				v.members(f.Fields, it)
				items = append(items, it)
			}
			v.pop()
		}
		n.vals = items
	}
	if reason != "" {
		v.drop(reason)
		return false
	}
	return true
}

// members keeps the listed, valid members of object n.
func (v *vetter) members(fields map[string]*Field, n *node) {
	keep, vals := n.keys[:0], n.vals[:0] // in place, as in free
	for i, k := range n.keys {
		v.push(k, -1)
		if f := fields[k]; f == nil {
			v.drop("unlisted")
		} else if v.typed(f, n.vals[i]) {
			keep, vals = append(keep, k), append(vals, n.vals[i])
		}
		v.pop()
	}
	n.keys, n.vals = keep, vals
}

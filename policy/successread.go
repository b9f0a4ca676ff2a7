package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// readSuccess reads body whole, or returns nil when it is not one JSON value
// in UTF-8 that every parser reads the same (see reader).
func readSuccess(body []byte) *node {
	if !utf8.Valid(body) {
		return nil
	}
	rd := reader{b: body, s: string(body)} // one copy: every string and literal read is a substring of it
	rd.presize()
	root, err := rd.document()
	if err != nil {
		return nil
	}
	return root
}

// node is a JSON value read whole: an object or array with its members in
// order, a string, a number or a literal.
type node struct {
	kind byte   // '{', '[', 's' string, 'n' number, 'l' true, false or null
	str  string // string value; number or literal as written
	keys []string
	vals []*node
}

var (
	errShape  = errors.New("policy: body is not one plain JSON value")
	errSyntax = errors.New("policy: body is not JSON")
)

// reader reads and checks one JSON document (RFC 8259) in UTF-8, which the
// caller has checked, building nodes: it accepts exactly what json.Valid
// accepts, less duplicate keys and nesting deeper than maxSuccessDepth.
// Strings and literals are substrings of s, nodes and member lists come
// from slabs: a body costs a few allocations, not several per member.
type reader struct {
	b []byte
	s string // b as a string
	i int

	nodes []node    // slab the next nodes are taken from
	keys  []string  // members of the objects being read, innermost last
	vals  []*node   // their values, then the items of the arrays being read
	kslab []string  // slab objects' key lists are carved from
	vslab []*node   // slab objects' and arrays' value lists are carved from
	_     [0]func() // not comparable
}

// document reads the body: one value and nothing after it but white space.
func (r *reader) document() (*node, error) {
	n, err := r.node(0)
	if err != nil {
		return nil, err
	}
	r.ws()
	if r.i != len(r.b) {
		return nil, errSyntax
	}
	return n, nil
}

// peek returns the byte at r.i, or 0 at the end.
func (r *reader) peek() byte {
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

func (r *reader) ws() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

// presize sizes the slabs for the body at once: it holds at most one value
// more than it has commas and opening brackets, and at most as many keys.
// Bodies larger than a few kilobytes get slabs as they go.
func (r *reader) presize() {
	n := 1 + bytes.Count(r.b, []byte{','}) + bytes.Count(r.b, []byte{'{'}) + bytes.Count(r.b, []byte{'['})
	n = min(n, maxPresize)
	r.nodes = make([]node, 0, n)
	keys := make([]string, 0, 2*n) // the lists objects keep, then the stack they are read into
	r.kslab, r.keys = keys[:0:n], keys[n:n]
	vals := make([]*node, 0, 2*n)
	r.vslab, r.vals = vals[:0:n], vals[n:n]
}

// maxPresize bounds the slabs presize makes.
const maxPresize = 128

// newNode takes a node from the slab. Nodes taken before stay where they
// are when the slab runs out: the next one is a new array.
func (r *reader) newNode(kind byte) *node {
	if len(r.nodes) == cap(r.nodes) {
		r.nodes = make([]node, 0, min(max(2*cap(r.nodes), 8), 256))
	}
	r.nodes = append(r.nodes, node{kind: kind})
	return &r.nodes[len(r.nodes)-1]
}

// carve copies the last n keys (when keys) and values read into lists of
// their own, with no room to grow (filtering them in place never writes
// past them), and drops them from the stacks.
func (r *reader) carve(n *node, count int, keys bool) {
	if len(r.vslab)+count > cap(r.vslab) {
		r.vslab = make([]*node, 0, max(count, 32))
	}
	at := len(r.vslab)
	r.vslab = append(r.vslab, r.vals[len(r.vals)-count:]...)
	n.vals = r.vslab[at:len(r.vslab):len(r.vslab)]
	r.vals = r.vals[:len(r.vals)-count]
	if !keys {
		return
	}
	if len(r.kslab)+count > cap(r.kslab) {
		r.kslab = make([]string, 0, max(count, 32))
	}
	at = len(r.kslab)
	r.kslab = append(r.kslab, r.keys[len(r.keys)-count:]...)
	n.keys = r.kslab[at:len(r.kslab):len(r.kslab)]
	r.keys = r.keys[:len(r.keys)-count]
}

// node reads one value. Duplicate keys and nesting deeper than
// maxSuccessDepth are refused: two parsers could read the first differently,
// and the second costs stack for nothing.
func (r *reader) node(depth int) (*node, error) {
	if depth > maxSuccessDepth {
		return nil, errShape
	}
	r.ws()
	switch c := r.peek(); {
	case c == '{':
		r.i++
		n := r.newNode('{')
		count := 0
		r.ws()
		if r.peek() == '}' {
			r.i++
			return n, nil
		}
		for {
			r.ws()
			if r.peek() != '"' {
				return nil, errSyntax
			}
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			if slices.Contains(r.keys[len(r.keys)-count:], k) {
				return nil, errShape
			}
			r.ws()
			if r.peek() != ':' {
				return nil, errSyntax
			}
			r.i++
			v, err := r.node(depth + 1)
			if err != nil {
				return nil, err
			}
			r.keys, r.vals = append(r.keys, k), append(r.vals, v)
			count++
			r.ws()
			switch r.peek() {
			case ',':
				r.i++
				continue
			case '}':
				r.i++
				r.carve(n, count, true)
				return n, nil
			}
			return nil, errSyntax
		}
	case c == '[':
		r.i++
		n := r.newNode('[')
		count := 0
		r.ws()
		if r.peek() == ']' {
			r.i++
			return n, nil
		}
		for {
			v, err := r.node(depth + 1)
			if err != nil {
				return nil, err
			}
			r.vals = append(r.vals, v)
			count++
			r.ws()
			switch r.peek() {
			case ',':
				r.i++
				continue
			case ']':
				r.i++
				r.carve(n, count, false)
				return n, nil
			}
			return nil, errSyntax
		}
	case c == '"':
		str, err := r.str()
		if err != nil {
			return nil, err
		}
		n := r.newNode('s')
		n.str = str
		return n, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(r.s[r.i:], lit) {
				n := r.newNode('l')
				n.str = r.s[r.i : r.i+len(lit)]
				r.i += len(lit)
				return n, nil
			}
		}
		return nil, errSyntax
	case c == '-' || c >= '0' && c <= '9':
		start := r.i
		if !r.number() {
			return nil, errSyntax
		}
		n := r.newNode('n')
		n.str = r.s[start:r.i]
		return n, nil
	}
	return nil, errSyntax
}

// number moves past a number as RFC 8259 writes it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *reader) number() bool {
	if r.peek() == '-' {
		r.i++
	}
	switch c := r.peek(); {
	case c == '0':
		r.i++
	case c >= '1' && c <= '9':
		r.digits()
	default:
		return false
	}
	if r.peek() == '.' {
		r.i++
		if !r.digits() {
			return false
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.i++
		if c := r.peek(); c == '+' || c == '-' {
			r.i++
		}
		if !r.digits() {
			return false
		}
	}
	return true
}

// digits moves past a run of digits and reports whether there was one.
func (r *reader) digits() bool {
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	return r.i > start
}

// str reads the string at r.i: no control characters, escapes only of the
// forms RFC 8259 lists.
func (r *reader) str() (string, error) {
	start := r.i
	r.i++
	escaped := false
	for {
		if r.i >= len(r.b) {
			return "", errSyntax
		}
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if !escaped {
				return r.s[start+1 : r.i-1], nil
			}
			var s string
			err := json.Unmarshal(r.b[start:r.i], &s) // checked above: this decodes
			return s, err
		case c < 0x20:
			return "", errSyntax
		case c == '\\':
			escaped = true
			r.i++
			switch r.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i++
			case 'u':
				if r.i+4 >= len(r.b) || !isHex4(r.b[r.i+1:r.i+5]) {
					return "", errSyntax
				}
				r.i += 5
			default:
				return "", errSyntax
			}
		default:
			r.i++
		}
	}
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (n *node) append(b []byte) []byte {
	switch n.kind {
	case 's':
		b = appendString(b, n.str)
	case 'n', 'l':
		b = append(b, n.str...)
	case '{':
		b = append(b, '{')
		for i, k := range n.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = n.vals[i].append(b)
		}
		b = append(b, '}')
	case '[':
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.append(b)
		}
		b = append(b, ']')
	}
	return b
}

// appendString appends s as a JSON string. s is valid UTF-8 (VetSuccess
// checked the body); control characters, U+2028 and U+2029 are escaped.
// Bytes that need no escape, nearly all of them, are copied in runs.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xe2 {
			i++
			continue
		}
		var esc string
		switch c {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		case 0xe2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 >= len(s) || s[i+1] != 0x80 || s[i+2] != 0xa8 && s[i+2] != 0xa9 {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[s[i+2]&0xf])
			i += 3
			start = i
			continue
		default: // the other control characters
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

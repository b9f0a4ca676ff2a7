package strictyaml

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/keygate/keygate/internal/suggest"
)

// Unmarshaler is implemented by a type that reads itself from one YAML node
// (a duration from "30s", a list spliced from nested lists). Decode calls
// UnmarshalStrictYAML with aliases resolved and nulls handled already. It
// sets the value from n and returns "", or returns what the value must be
// ("a duration such as 30s"), which Decode reports at n with the field's
// name.
type Unmarshaler interface {
	UnmarshalStrictYAML(n *yaml.Node) (want string)
}

// LocateFunc is told where each decoded struct and each of its fields was
// written: v is a pointer to the struct, key the field's yaml name ("" for
// the struct itself) and p where its value starts. A field whose value could
// not be decoded comes with p.Failed set.
type LocateFunc func(v any, key string, p Pos)

// Decode decodes one YAML document, data, into v (a pointer, usually to a
// struct) strictly: syntax errors, inconsistent indentation, unknown and
// repeated fields, values of the wrong type, aliases used inside what they
// name and documents that expand past a bound all become Problems at their
// lines and columns. Decoding goes on past a problem, so that one run reports
// every one. Struct fields are matched by their yaml tag; a what tag names
// the field's value in messages ("unknown field "x" in route"). locate, when
// not nil, is told where each struct and field was written, so that the
// caller's own rules can report their problems there too.
func Decode(data []byte, v any, locate LocateFunc) Problems {
	var ps Problems
	root, err := parseYAML(data, &ps)
	if root == nil {
		if errors.Is(err, io.EOF) {
			ps.Add(0, "file is empty")
		} else if err != nil {
			ps.Add(0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return ps
	}
	sz := sizer{memo: map[*yaml.Node]int{}}
	if n := sz.size(root); sz.cycle != nil {
		ps.Add(sz.cycle.Line, "alias *%s is used inside the node it names", sz.cycle.Value)
		return ps
	} else if sz.key != nil {
		ps.Add(sz.key.Line, "a key must be a plain value, not a list or a mapping")
		return ps
	} else if n > maxNodes {
		ps.Add(0, "the file expands to more than %d YAML nodes through its aliases", maxNodes)
		return ps
	}
	d := decoder{ps: &ps, bad: map[*yaml.Node]bool{}, locate: locate}
	d.value(root, reflect.ValueOf(v).Elem(), "the file", "", "the file")
	return ps
}

// decoder decodes a YAML tree into Go values by reflection, reporting every
// value of the wrong shape or type and every unknown or repeated field at its
// place, and going on with the rest. It replaces yaml.v3's Decode, which
// stops at the first problem inside a value and reports a shared (aliased)
// value once per use.
type decoder struct {
	ps     *Problems
	bad    map[*yaml.Node]bool // values reported as mismatched
	locate LocateFunc          // nil: places are not wanted
}

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// value decodes n into v. what names the mapping that holds v and field is
// v's key in it ("" for the document); inner names v itself when it is (or
// holds) a mapping, for problems inside it.
func (d *decoder) value(n *yaml.Node, v reflect.Value, what, field, inner string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias // the sizer has refused cycles
	}
	t := v.Type()
	if isNull(n) {
		if n.Tag == "!!null" && t.Kind() != reflect.Pointer && t.Kind() != reflect.Slice && t.Kind() != reflect.Map {
			return // yaml.v3 leaves a null scalar's field at its zero value too
		}
		v.SetZero()
		return
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.value(n, v.Elem(), what, field, inner)
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if want := v.Addr().Interface().(Unmarshaler).UnmarshalStrictYAML(n); want != "" {
			d.mismatch(n, what, field, want)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, v, what, field, inner)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.mismatch(n, what, field, "a list such as [a, b]")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), what, field, inner)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.mismatch(n, what, field, "a mapping of names to values")
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, c := n.Content[i], n.Content[i+1]
			if l, dup := seen[k.Value]; dup {
				d.ps.At(nodePos(k), "%q is already defined at line %d", k.Value, l)
				continue
			}
			seen[k.Value] = k.Line
			e := reflect.New(t.Elem()).Elem()
			d.value(c, e, what, field, inner)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, what, field, expects(t))
			return
		}
		x := reflect.New(t)
		if err := n.Decode(x.Interface()); err != nil {
			d.mismatch(n, what, field, expects(t))
			return
		}
		v.Set(x.Elem())
	default:
		d.ps.At(nodePos(n), "%s cannot be decoded", describe(n)) // no field has such a type
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// structure decodes a mapping into a struct, field by field.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, what, field, inner string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, what, field, "a mapping of field: value lines")
		return
	}
	var addr any
	if d.locate != nil {
		addr = v.Addr().Interface()
		d.locate(addr, "", nodePos(n))
	}
	d.fields(n, v, yamlFields(v.Type()), addr, inner, map[string]int{})
}

// fields decodes the keys of mapping n into struct v. A merge key (<<) adds
// the keys of the mappings it names, which the mapping's own keys override.
func (d *decoder) fields(n *yaml.Node, v reflect.Value, fields map[string]yamlField, addr any, what string, seen map[string]int) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
		}
	}
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		own[n.Content[i].Value] = n.Content[i].ShortTag() != "!!merge"
	}
	// Decoded last to first, so that the first mapping that sets a key wins, as
	// the merge key's definition says.
	var list []*yaml.Node
	for _, m := range merges {
		if m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		if m.Kind == yaml.SequenceNode {
			list = append(list, m.Content...)
		} else {
			list = append(list, m)
		}
	}
	for i := len(list) - 1; i >= 0; i-- {
		c := list[i]
		if c.Kind == yaml.AliasNode && c.Alias != nil {
			c = c.Alias
		}
		if c.Kind != yaml.MappingNode {
			d.ps.At(nodePos(c), "<< merges mappings; %s is not one", describe(c))
			continue
		}
		sub := map[string]int{}
		for k, isOwn := range own {
			if isOwn {
				sub[k] = -1 // set by the mapping itself: not decoded here
			}
		}
		d.fields(c, v, fields, addr, what, sub)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if l, dup := seen[k.Value]; dup {
			if l > 0 {
				d.ps.At(nodePos(k), "field %s of %s is already set at line %d", k.Value, what, l)
			}
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok || k.Value == "" {
			msg := fmt.Sprintf("unknown field %q in %s", k.Value, what)
			if s := suggest.Closest(k.Value, fieldNames(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			d.ps.At(nodePos(k), "%s", msg)
			continue
		}
		d.value(c, v.Field(f.index), what, k.Value, f.what)
		if d.locate != nil {
			p := nodePos(c)
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			p.Failed = d.bad[c]
			d.locate(addr, k.Value, p)
		}
	}
}

func fieldNames(fields map[string]yamlField) []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// mismatch reports a value of the wrong shape or type.
func (d *decoder) mismatch(n *yaml.Node, what, field, want string) {
	d.bad[n] = true
	if field == "" {
		d.ps.At(nodePos(n), "%s must be %s, not %s", what, want, describe(n))
		return
	}
	d.ps.At(nodePos(n), "%s in %s must be %s, not %s", field, what, want, describe(n))
}

// expects names what a Go scalar type accepts.
func expects(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	}
	return "a single value"
}

// describe names a YAML value for a message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

// maxNodes bounds the size of a document with its aliases expanded, as
// decoding sees it: a few nested aliases can otherwise stand for billions of
// nodes. The built-in policy expands to under a thousand.
const maxNodes = 100_000

// sizer counts the nodes of a document with every alias expanded, counting
// each anchored node once, and finds what the decoder cannot walk: an alias
// inside the node it names (decoding would recurse until the stack runs out)
// and a mapping key that is a list or a mapping (no field has such a name). It
// must run before decoding.
type sizer struct {
	memo  map[*yaml.Node]int // expanded size of an anchored node; -1 while it is counted
	cycle *yaml.Node         // an alias met inside the node it names
	key   *yaml.Node         // a mapping key that is not a scalar
}

func (s *sizer) size(n *yaml.Node) int {
	alias := n
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Anchor != "" {
		if size, ok := s.memo[n]; ok {
			if size < 0 && s.cycle == nil {
				s.cycle = alias
			}
			return max(size, 0)
		}
		s.memo[n] = -1
	}
	size := 1
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && s.key == nil {
			k := c
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				s.key = c
			}
		}
		if size += s.size(c); size > maxNodes || s.cycle != nil {
			break
		}
	}
	if n.Anchor != "" {
		s.memo[n] = size
	}
	return size
}

type yamlField struct {
	index int
	what  string // how a problem names the mapping the field holds
}

var fieldCache sync.Map // reflect.Type → map[string]yamlField

// yamlFields returns the struct fields of t by yaml name. A `what:"..."` tag
// names what the field's value is, for messages.
func yamlFields(t reflect.Type) map[string]yamlField {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]yamlField)
	}
	fields := map[string]yamlField{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			what := sf.Tag.Get("what")
			if what == "" {
				what = name
			}
			fields[name] = yamlField{index: i, what: what}
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

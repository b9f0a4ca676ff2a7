package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a policy or tokens file, at a line of it
// (0 when the line is unknown).
type Problem struct {
	Line int
	Msg  string
}

// FileError lists every problem found in one file.
type FileError struct {
	File     string // path as given, or a label such as "built-in policy"
	Problems []Problem
}

// Error prints one problem per line as "file:line: message".
func (e *FileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// problems collects Problems while a file is checked.
type problems []Problem

func (ps *problems) add(line int, format string, args ...any) {
	*ps = append(*ps, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (ps problems) err(file string) error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return &FileError{File: file, Problems: ps}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeYAML decodes data into v strictly: unknown fields, type mismatches and
// syntax errors all become Problems with their lines.
func decodeYAML(data []byte, v any) problems {
	var ps problems
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&root)
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) == nil {
			ps.add(extra.Line, "only one YAML document is allowed")
		}
		sz := sizer{memo: map[*yaml.Node]int{}}
		if n := sz.size(&root); sz.cycle != nil {
			ps.add(sz.cycle.Line, "alias *%s is used inside the node it names", sz.cycle.Value)
			return ps
		} else if sz.key != nil {
			ps.add(sz.key.Line, "a key must be a plain value, not a list or a mapping")
			return ps
		} else if n > maxNodes {
			ps.add(0, "the file expands to more than %d YAML nodes through its aliases", maxNodes)
			return ps
		}
		unknownFields(&root, reflect.TypeOf(v), "the file", &ps, map[walked]bool{})
		err = root.Decode(v)
	}
	if err == nil {
		return ps
	}
	if errors.Is(err, io.EOF) {
		ps.add(0, "file is empty")
		return ps
	}
	var msgs []string
	if te, ok := err.(*yaml.TypeError); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ := strconv.Atoi(sm[1])
			ps.add(line, "%s", tidyYAMLMsg(sm[2]))
		} else {
			ps.add(0, "%s", strings.TrimPrefix(m, "yaml: "))
		}
	}
	return ps
}

// tidyYAMLMsg drops Go type names from yaml.v3 messages, which mean nothing to
// a user.
func tidyYAMLMsg(m string) string {
	if i := strings.Index(m, " into "); i > 0 && strings.HasPrefix(m, "cannot unmarshal") {
		return m[:i] + " here"
	}
	if i := strings.Index(m, " not found in type "); i > 0 {
		return "unknown " + m[:i]
	}
	return m
}

// maxNodes bounds the size of a document with its aliases expanded, as
// decoding sees it: a few nested aliases can otherwise stand for billions of
// nodes. The built-in policy expands to under a thousand.
const maxNodes = 100_000

// sizer counts the nodes of a document with every alias expanded, counting
// each anchored node once, and finds what yaml.v3 cannot decode safely. It
// must run before decoding: yaml.v3 does not catch an alias inside the node
// it names when custom unmarshalers decode the parts, and recurses until the
// stack runs out; and it panics merging (<<) into a mapping with a list or
// mapping as a key.
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

// walked is an anchored node checked as a type.
type walked struct {
	n *yaml.Node
	t reflect.Type
}

// unknownFields walks a decoded YAML tree beside the Go type it decodes into
// and reports every mapping key that names no field, by line. yaml.v3 stops at
// the first unknown field inside a custom unmarshaler; this reports them all.
// An anchored node is walked once per type, however often it is aliased: an
// alias may sit inside the node it names, and a shared limit's problems should
// be reported once.
func unknownFields(n *yaml.Node, t reflect.Type, what string, ps *problems, seen map[walked]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Anchor != "" {
		if seen[walked{n, t}] {
			return
		}
		seen[walked{n, t}] = true
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // yaml.v3 reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() == "!!merge" { // <<: *anchor, or a list of them, adds their keys to this mapping
				if v.Kind == yaml.SequenceNode {
					for _, c := range v.Content {
						unknownFields(c, t, what, ps, seen)
					}
				} else {
					unknownFields(v, t, what, ps, seen)
				}
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				ps.add(k.Line, "unknown field %q in %s", k.Value, what)
				continue
			}
			unknownFields(v, f.typ, f.what, ps, seen)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				unknownFields(c, t.Elem(), what, ps, seen)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				unknownFields(n.Content[i], t.Elem(), what, ps, seen)
			}
		}
	}
}

type yamlField struct {
	typ  reflect.Type
	what string // how a problem names the mapping the field holds
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
			fields[name] = yamlField{typ: sf.Type, what: what}
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1m", "30s", "1h").
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (use e.g. 30s, 1m, 1h)", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

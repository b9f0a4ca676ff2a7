package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keygate/keygate/internal/suggest"
)

// Problem is one thing wrong with a policy or tokens file, at a line and
// column of it (0 when unknown).
type Problem struct {
	Line int
	Msg  string
	Col  int
}

// FileError lists every problem found in one file.
type FileError struct {
	File     string // path as given, or a label such as "built-in policy"
	Problems []Problem
}

// Error prints one problem per line as "file:line:column: message" (the
// line and column left out when unknown).
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
			if p.Col > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(p.Col))
			}
		}
		b.WriteString(": ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// pos is a place in a file. A failed place holds a value that could not be
// decoded, reported already: a rule about the field's value would only
// repeat the problem (a rate of "twenty" is not also "not > 0").
type pos struct {
	line, col int
	failed    bool
}

// located is embedded in every type decoded from a file: it remembers where
// the value and each of its fields were written, so that a problem is
// reported at the offending field.
type located struct {
	line, col int
	at        map[string]pos // by yaml field name: where its value starts
}

// locate records where the value (key "") or one of its fields starts.
func (l *located) locate(key string, p pos) {
	if key == "" {
		l.line, l.col = p.line, p.col
		return
	}
	if l.at == nil {
		l.at = map[string]pos{}
	}
	l.at[key] = p
}

// pos returns where field key's value starts, or where the value itself
// starts when key is "" or was not written.
func (l *located) pos(key string) pos {
	if p, ok := l.at[key]; ok {
		return p
	}
	return pos{line: l.line, col: l.col}
}

// locator is implemented by the types that embed located.
type locator interface{ locate(key string, p pos) }

// problems collects Problems while a file is checked.
type problems []Problem

func (ps *problems) add(line int, format string, args ...any) {
	*ps = append(*ps, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// at adds a problem at p, unless p is failed.
func (ps *problems) at(p pos, format string, args ...any) {
	if p.failed {
		return
	}
	*ps = append(*ps, Problem{Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)})
}

// err sorts the problems by place and drops repeats: a value shared through
// an alias is decoded and checked once per use, and reported once.
func (ps problems) err(file string) error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
	out := ps[:0:0]
	seen := map[Problem]bool{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return &FileError{File: file, Problems: out}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeYAML decodes data into v strictly: syntax errors, unknown fields and
// values of the wrong type all become Problems at their lines and columns.
// Decoding goes on past a problem, so that one run reports every one.
func decodeYAML(data []byte, v any) problems {
	var ps problems
	root, err := parseYAML(data, &ps)
	if root == nil {
		if errors.Is(err, io.EOF) {
			ps.add(0, "file is empty")
		} else if err != nil {
			ps.add(0, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return ps
	}
	sz := sizer{memo: map[*yaml.Node]int{}}
	if n := sz.size(root); sz.cycle != nil {
		ps.add(sz.cycle.Line, "alias *%s is used inside the node it names", sz.cycle.Value)
		return ps
	} else if sz.key != nil {
		ps.add(sz.key.Line, "a key must be a plain value, not a list or a mapping")
		return ps
	} else if n > maxNodes {
		ps.add(0, "the file expands to more than %d YAML nodes through its aliases", maxNodes)
		return ps
	}
	d := decoder{ps: &ps, bad: map[*yaml.Node]bool{}}
	d.value(root, reflect.ValueOf(v).Elem(), "the file", "", "the file")
	return ps
}

// parseYAML parses one YAML document. A syntax error is reported at its line;
// when the document's indentation is inconsistent, each line out of step is
// reported instead, and the document is parsed again with those lines
// re-indented, so that the rest of the file is still checked.
func parseYAML(data []byte, ps *problems) (*yaml.Node, error) {
	root, err := parseOne(data, ps)
	if err == nil || errors.Is(err, io.EOF) {
		return root, err
	}
	fixed, bad := reindent(data)
	if len(bad) > 0 {
		for _, b := range bad {
			ps.at(pos{line: b.line, col: b.col}, "indentation: this line lines up with no enclosing block (expected column %s)", b.want)
		}
		var more problems
		if root, err2 := parseOne(fixed, &more); err2 == nil {
			*ps = append(*ps, more...)
			return root, nil
		}
		return nil, nil
	}
	if sm := yamlLine.FindStringSubmatch(err.Error()); sm != nil {
		line, _ := strconv.Atoi(sm[1])
		ps.add(line, "%s", sm[2])
		return nil, nil
	}
	return nil, err
}

func parseOne(data []byte, ps *problems) (*yaml.Node, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		ps.add(extra.Line, "only one YAML document is allowed")
	}
	return &root, nil
}

// badIndent is a line whose indentation lines up with no open block.
type badIndent struct {
	line, col int    // col: the column its text starts in
	want      string // the nearest column that would fit
}

// reindent finds lines indented out of step with the blocks around them,
// the usual cause of a YAML syntax error that the parser reports lines away,
// and returns the document with each moved to the nearest open block's
// column. Lines inside block scalars and multi-line flow collections are
// left alone.
func reindent(data []byte) ([]byte, []badIndent) {
	lines := strings.Split(string(data), "\n")
	levels := []int{0}
	opens := true // the previous line opens a block below it
	scalar := -1  // the indentation of a line starting a block scalar; -1: none
	flow := 0     // open flow brackets
	var bad []badIndent
	for i, l := range lines {
		text := strings.TrimLeft(l, " ")
		ind := len(l) - len(text)
		t := strings.TrimSpace(stripComment(text))
		if t == "" {
			continue
		}
		if scalar >= 0 {
			if ind > scalar {
				continue
			}
			scalar = -1
		}
		if flow > 0 {
			flow = max(0, flow+brackets(t))
			continue
		}
		snapshot := slices.Clone(levels)
		for len(levels) > 1 && levels[len(levels)-1] > ind {
			levels = levels[:len(levels)-1]
		}
		if top := levels[len(levels)-1]; ind > top {
			if !opens {
				want := nearest(snapshot, ind)
				bad = append(bad, badIndent{line: i + 1, col: ind + 1, want: strconv.Itoa(want + 1)})
				lines[i] = strings.Repeat(" ", want) + text
				ind = want
				levels = snapshot
				for len(levels) > 1 && levels[len(levels)-1] > ind {
					levels = levels[:len(levels)-1]
				}
			} else {
				levels = append(levels, ind)
			}
		}
		// "- item": the item's own content is indented past the dash
		rest, lvl := t, ind
		for strings.HasPrefix(rest, "- ") || rest == "-" {
			lvl += 2
			rest = strings.TrimLeft(strings.TrimPrefix(rest, "-"), " ")
			levels = append(levels, lvl)
		}
		opens = rest == "" || strings.HasSuffix(rest, ":") || opensRE.MatchString(rest)
		if strings.HasSuffix(rest, "|") || strings.HasSuffix(rest, ">") || blockScalarRE.MatchString(rest) {
			scalar = ind
		}
		flow = max(0, brackets(rest))
	}
	return []byte(strings.Join(lines, "\n")), bad
}

// opensRE matches a key whose value, below it, carries an anchor or a tag.
var opensRE = regexp.MustCompile(`:\s+([&!][^\s]+\s*)+$`)

var blockScalarRE = regexp.MustCompile(`(^|[:-]\s)[|>][0-9+-]*$`)

// nearest returns the level closest to ind, the deeper one on a tie.
func nearest(levels []int, ind int) int {
	best := levels[0]
	for _, l := range levels {
		if d, bd := abs(l-ind), abs(best-ind); d < bd || (d == bd && l > best) {
			best = l
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// stripComment drops a trailing " #" comment outside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i]
		}
	}
	return s
}

// brackets counts the flow brackets a line opens minus those it closes,
// outside quotes.
func brackets(s string) int {
	n := 0
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '{' || c == '[':
			n++
		case c == '}' || c == ']':
			n--
		}
	}
	return n
}

// decoder decodes a YAML tree into Go values by reflection, reporting every
// value of the wrong shape or type and every unknown or repeated field at its
// place, and going on with the rest. It replaces yaml.v3's Decode, which
// stops at the first problem inside a value and reports a shared (aliased)
// value once per use.
type decoder struct {
	ps  *problems
	bad map[*yaml.Node]bool // values reported as mismatched
}

var (
	durationType    = reflect.TypeOf(Duration(0))
	messageListType = reflect.TypeOf(MessageList(nil))
)

func nodePos(n *yaml.Node) pos { return pos{line: n.Line, col: n.Column} }

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
	switch {
	case t == durationType:
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.mismatch(n, what, field, "a duration such as 30s, 1m or 1h")
			return
		}
		v.SetInt(int64(dur))
		return
	case t == messageListType:
		var m MessageList
		if !m.flatten(n, 0) {
			d.mismatch(n, what, field, "a list of strings (or of lists of strings)")
		}
		v.Set(reflect.ValueOf(m))
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
				d.ps.at(nodePos(k), "%q is already defined at line %d", k.Value, l)
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
		d.ps.at(nodePos(n), "%s cannot be decoded", describe(n)) // no field has such a type
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
	loc, _ := v.Addr().Interface().(locator)
	if loc != nil {
		loc.locate("", nodePos(n))
	}
	d.fields(n, v, yamlFields(v.Type()), loc, inner, map[string]int{})
}

// fields decodes the keys of mapping n into struct v. A merge key (<<) adds
// the keys of the mappings it names, which the mapping's own keys override.
func (d *decoder) fields(n *yaml.Node, v reflect.Value, fields map[string]yamlField, loc locator, what string, seen map[string]int) {
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
			d.ps.at(nodePos(c), "<< merges mappings; %s is not one", describe(c))
			continue
		}
		sub := map[string]int{}
		for k, isOwn := range own {
			if isOwn {
				sub[k] = -1 // set by the mapping itself: not decoded here
			}
		}
		d.fields(c, v, fields, loc, what, sub)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if l, dup := seen[k.Value]; dup {
			if l > 0 {
				d.ps.at(nodePos(k), "field %s of %s is already set at line %d", k.Value, what, l)
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
			d.ps.at(nodePos(k), "%s", msg)
			continue
		}
		d.value(c, v.Field(f.index), what, k.Value, f.what)
		if loc != nil {
			p := nodePos(c)
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			p.failed = d.bad[c]
			loc.locate(k.Value, p)
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
		d.ps.at(nodePos(n), "%s must be %s, not %s", what, want, describe(n))
		return
	}
	d.ps.at(nodePos(n), "%s in %s must be %s, not %s", field, what, want, describe(n))
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

// Command valuesdoc keeps a chart's values.yaml, values.schema.json and the
// values table of a Markdown file in step. It checks that
//
//   - every value of values.yaml is documented with a helm-docs `# --`
//     comment, itself or through a documented parent;
//   - every documented value is a property of the schema, and every property
//     of an object the schema closes (additionalProperties: false) is in
//     values.yaml;
//
// and generates a table (key, type, default, description) between the
// markers <!-- values:begin --> and <!-- values:end --> of the Markdown
// file. With -update it rewrites the table; otherwise a table that differs
// is an error.
//
// Usage:
//
//	valuesdoc -chart deploy/helm/keygate -doc deploy/README.md [-update]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

const (
	beginMarker = "<!-- values:begin -->"
	endMarker   = "<!-- values:end -->"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("valuesdoc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	chart := fs.String("chart", ".", "chart directory (values.yaml, values.schema.json)")
	doc := fs.String("doc", "README.md", "Markdown file holding the values table between "+beginMarker+" and "+endMarker)
	update := fs.Bool("update", false, "rewrite the table instead of checking it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rows, problems, err := document(filepath.Join(*chart, "values.yaml"), filepath.Join(*chart, "values.schema.json"))
	if err != nil {
		fmt.Fprintln(stderr, "valuesdoc:", err)
		return 2
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "valuesdoc: %d problem(s)\n", len(problems))
		return 1
	}
	text, err := os.ReadFile(*doc)
	if err != nil {
		fmt.Fprintln(stderr, "valuesdoc:", err)
		return 2
	}
	table := renderTable(rows)
	updated, err := replaceTable(text, table)
	if err != nil {
		fmt.Fprintf(stderr, "valuesdoc: %s: %v\n", *doc, err)
		return 2
	}
	if bytes.Equal(updated, text) {
		fmt.Fprintf(stdout, "valuesdoc: %d values documented; %s is up to date\n", len(rows), *doc)
		return 0
	}
	if *update {
		if err := os.WriteFile(*doc, updated, 0o644); err != nil {
			fmt.Fprintln(stderr, "valuesdoc:", err)
			return 2
		}
		fmt.Fprintf(stdout, "valuesdoc: %d values documented; %s updated\n", len(rows), *doc)
		return 0
	}
	fmt.Fprintf(stderr, "valuesdoc: the values table of %s differs from values.yaml and values.schema.json; regenerate it:\n  (cd deploy/tools && go run ./valuesdoc -chart ../helm/keygate -doc ../README.md -update)\n", *doc)
	return 1
}

// row is one documented value.
type row struct {
	key, typ, def, desc string
}

// document walks values.yaml beside its schema and returns its rows and the
// problems found.
func document(valuesFile, schemaFile string) ([]row, []string, error) {
	data, err := os.ReadFile(valuesFile)
	if err != nil {
		return nil, nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", valuesFile, err)
	}
	sdata, err := os.ReadFile(schemaFile)
	if err != nil {
		return nil, nil, err
	}
	var s schema
	if err := json.Unmarshal(sdata, &s); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", schemaFile, err)
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s: not a mapping", valuesFile)
	}
	w := &walker{file: filepath.Base(valuesFile), schemaFile: filepath.Base(schemaFile)}
	w.mapping("", root.Content[0], &s, false)
	w.unlisted("", root.Content[0], &s)
	return w.rows, w.problems, nil
}

// schema is the part of a JSON schema valuesdoc reads.
type schema struct {
	Type                 any                `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties any                `json:"additionalProperties"`
	OneOf                []*schema          `json:"oneOf"`
	Enum                 []any              `json:"enum"`
}

// typeName is the schema's type as the table shows it.
func (s *schema) typeName() string {
	if s == nil {
		return ""
	}
	if len(s.OneOf) > 0 {
		var names []string
		for _, o := range s.OneOf {
			names = append(names, o.typeName())
		}
		return strings.Join(names, " or ")
	}
	switch t := s.Type.(type) {
	case string:
		return t
	case []any:
		var names []string
		for _, n := range t {
			names = append(names, fmt.Sprint(n))
		}
		return strings.Join(names, " or ")
	}
	return ""
}

type walker struct {
	file, schemaFile string
	rows             []row
	problems         []string
}

func (w *walker) problem(line int, format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf("%s:%d: ", w.file, line)+fmt.Sprintf(format, args...))
}

// mapping documents the keys of a mapping node. covered says whether a
// documented parent already describes them.
func (w *walker) mapping(prefix string, n *yaml.Node, s *schema, covered bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		var prop *schema
		if s != nil {
			prop = s.Properties[k.Value]
		}
		if s != nil && prop == nil && s.AdditionalProperties == false {
			w.problem(k.Line, "%s is not a property of %s: helm would refuse this values file", key, w.schemaFile)
		}
		desc, def, ok := comment(k.HeadComment)
		switch {
		case ok:
			if def == "" {
				def = defaultOf(v)
			} else {
				def = "(" + def + ")"
			}
			w.rows = append(w.rows, row{key: key, typ: prop.typeName(), def: def, desc: desc})
		case covered:
		case v.Kind == yaml.MappingNode && len(v.Content) > 0:
			// documented through its children
		default:
			w.problem(k.Line, "%s has no `# --` comment", key)
		}
		if v.Kind == yaml.MappingNode {
			w.mapping(key+".", v, prop, covered || ok)
		}
	}
}

// unlisted reports properties a closed schema object lists that values.yaml
// lacks, so the table cannot miss them.
func (w *walker) unlisted(prefix string, n *yaml.Node, s *schema) {
	if s == nil || s.AdditionalProperties != false {
		return
	}
	present := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		present[n.Content[i].Value] = n.Content[i+1]
	}
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, ok := present[name]
		switch {
		case !ok && !(prefix == "" && name == "global"):
			w.problem(n.Line, "%s%s is in %s but not in values.yaml: give it a default and a `# --` comment", prefix, name, w.schemaFile)
		case ok && v.Kind == yaml.MappingNode:
			w.unlisted(prefix+name+".", v, s.Properties[name])
		}
	}
}

// comment extracts a helm-docs description from a key's head comment: the
// text after "# --" and the comment lines that follow it, up to an
// "# @default --" line, which gives the default to show instead of the value.
func comment(head string) (desc, def string, ok bool) {
	var lines []string
	in := false
	for _, l := range strings.Split(head, "\n") {
		l = strings.TrimSpace(l)
		text, isComment := strings.CutPrefix(l, "#")
		if !isComment {
			in = false
			continue
		}
		text = strings.TrimSpace(text)
		switch {
		case strings.HasPrefix(text, "-- "):
			lines, in, ok = []string{strings.TrimPrefix(text, "-- ")}, true, true
			def = ""
		case strings.HasPrefix(text, "@default -- "):
			def = strings.TrimPrefix(text, "@default -- ")
			in = false
		case in:
			lines = append(lines, text)
		}
	}
	return strings.Join(lines, " "), def, ok
}

// defaultOf renders a value node as compact JSON.
func defaultOf(n *yaml.Node) string {
	var v any
	if err := n.Decode(&v); err != nil {
		return "?"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return "`" + string(b) + "`"
}

func renderTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.key, r.typ, escape(r.def), escape(r.desc))
	}
	return b.String()
}

// escape keeps a cell in its column.
func escape(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// replaceTable puts table between the markers of text.
func replaceTable(text []byte, table string) ([]byte, error) {
	begin := bytes.Index(text, []byte(beginMarker))
	end := bytes.Index(text, []byte(endMarker))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("no %s ... %s markers", beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(text[:begin+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(table)
	out.Write(text[end:])
	return out.Bytes(), nil
}

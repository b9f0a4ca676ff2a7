package strictyaml

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// size reads itself: a size written as a number followed by "b".
type size int

func (s *size) UnmarshalStrictYAML(n *yaml.Node) string {
	var v int
	if _, err := fmt.Sscanf(n.Value, "%db", &v); err != nil || n.Kind != yaml.ScalarNode {
		return "a size such as 10b"
	}
	*s = size(v)
	return ""
}

type server struct {
	Name    string            `yaml:"name"`
	Port    int               `yaml:"port"`
	Weight  float64           `yaml:"weight"`
	Enabled bool              `yaml:"enabled"`
	Tags    []string          `yaml:"tags"`
	Labels  map[string]string `yaml:"labels" what:"label"`
	Buffer  size              `yaml:"buffer"`
	Backup  *server           `yaml:"backup" what:"backup server"`
	Ignored string            `yaml:"-"`
}

type config struct {
	Servers []*server `yaml:"servers" what:"server"`
	Nested  [][]int   `yaml:"nested"`
}

func decodeErr(t *testing.T, doc string) (*config, []string) {
	t.Helper()
	c := &config{}
	err := Decode([]byte(doc), c, nil).Err("c.yaml")
	if err == nil {
		return c, nil
	}
	return c, strings.Split(err.Error(), "\n")
}

// TestDecodeProblems: every kind of problem the decoder finds, at its line
// and column, all of them in one run.
func TestDecodeProblems(t *testing.T) {
	bomb := func() string {
		var b strings.Builder
		b.WriteString("a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n")
		for i := 1; i < 6; i++ {
			fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9)+fmt.Sprintf("*a%d", i-1))
		}
		return b.String()
	}()
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", "", []string{"c.yaml: file is empty"}},
		{"comments only", "# nothing\n", []string{"c.yaml: file is empty"}},
		{"two documents", "servers: []\n---\nservers: []\n", []string{"c.yaml:2: only one YAML document is allowed"}},
		{"line out of step", "servers:\n  - name: a\n    port: 1\n   tags: [x]\n",
			[]string{"c.yaml:4:4: indentation: this line lines up with no enclosing block (expected column 5)"}},
		{"line out of step and a type problem below it", "servers:\n  - name: a\n    port: 1\n   tags: [x]\n    enabled: maybe\n",
			[]string{
				"c.yaml:4:4: indentation: this line lines up with no enclosing block (expected column 5)",
				`c.yaml:5:14: enabled in server must be true or false, not "maybe"`,
			}},
		{"tab", "servers:\n\t- name: a\n", []string{"c.yaml:2: found character that cannot start any token"}},
		{"not a mapping", "- a\n", []string{"c.yaml:1:1: the file must be a mapping of field: value lines, not a list"}},
		{"list as a key", "? [a]\n: 1\n", []string{"c.yaml:1: a key must be a plain value, not a list or a mapping"}},
		{"alias inside what it names", "servers:\n  - &s {name: a, backup: *s}\n", []string{"c.yaml:2: alias *s is used inside the node it names"}},
		{"alias bomb", bomb, []string{"c.yaml: the file expands to more than 100000 YAML nodes through its aliases"}},
		{"wrong types", "servers:\n  - {name: [a], port: x, weight: y, enabled: 2, tags: t, labels: [l], buffer: 10}\nnested: [[1], x]\n",
			[]string{
				"c.yaml:2:12: name in server must be a single value, not a list",
				`c.yaml:2:23: port in server must be a whole number, not "x"`,
				`c.yaml:2:34: weight in server must be a number, not "y"`,
				`c.yaml:2:46: enabled in server must be true or false, not "2"`,
				`c.yaml:2:55: tags in server must be a list such as [a, b], not "t"`,
				"c.yaml:2:66: labels in server must be a mapping of names to values, not a list",
				`c.yaml:2:79: buffer in server must be a size such as 10b, not "10"`,
				`c.yaml:3:15: nested in the file must be a list such as [a, b], not "x"`,
			}},
		{"not a struct", "servers: [1]\n", []string{`c.yaml:1:11: servers in the file must be a mapping of field: value lines, not "1"`}},
		{"unknown fields", "servers:\n  - {nmae: a, backup: {prot: 1}}\nserver: []\n",
			[]string{
				`c.yaml:2:6: unknown field "nmae" in server (did you mean name?)`,
				`c.yaml:2:24: unknown field "prot" in backup server (did you mean port?)`,
				`c.yaml:3:1: unknown field "server" in the file (did you mean servers?)`,
			}},
		{"a field tagged -", "servers: [{Ignored: x}]\n", []string{`c.yaml:1:12: unknown field "Ignored" in server`}},
		{"repeated field", "servers:\n  - name: a\n    name: b\n", []string{"c.yaml:3:5: field name of server is already set at line 2"}},
		{"repeated key", "servers:\n  - labels: {a: 1, a: 2}\n", []string{`c.yaml:2:20: "a" is already defined at line 2`}},
		{"merge of a scalar", "servers:\n  - {<<: 1, name: a}\n", []string{`c.yaml:2:10: << merges mappings; "1" is not one`}},
		{"unknown field in a merged mapping, reported once", "servers:\n  - &s {name: a, prot: 1}\n  - {<<: *s}\n  - {<<: *s}\n",
			[]string{`c.yaml:2:18: unknown field "prot" in server (did you mean port?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := decodeErr(t, tt.doc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode(%q) problems mismatch (-want +got):\n%s", tt.doc, diff)
			}
		})
	}
}

// TestDecodeValues: what decodes is set, merge keys included: the mapping's
// own keys win, then the first merged mapping.
func TestDecodeValues(t *testing.T) {
	doc := "servers:\n" +
		"  - &a {name: a, port: 1, weight: 0.5, enabled: true, tags: [x], labels: {k: v}, buffer: 10b}\n" +
		"  - &b {name: b, port: 2}\n" +
		"  - {<<: [*b, *a], name: c, backup: {name: d}}\n" +
		"  - ~\n" +
		"nested: [[1, 2], []]\n"
	c, problems := decodeErr(t, doc)
	if problems != nil {
		t.Fatalf("Decode = %v, want no problems", problems)
	}
	a := &server{Name: "a", Port: 1, Weight: 0.5, Enabled: true, Tags: []string{"x"}, Labels: map[string]string{"k": "v"}, Buffer: 10}
	want := &config{
		Servers: []*server{
			a,
			{Name: "b", Port: 2},
			{Name: "c", Port: 2, Weight: 0.5, Enabled: true, Tags: []string{"x"}, Labels: map[string]string{"k": "v"}, Buffer: 10, Backup: &server{Name: "d"}},
			nil,
		},
		Nested: [][]int{{1, 2}, {}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
}

// TestDecodeLocate: the caller is told where each struct and each of its
// fields starts, and which fields failed to decode, so that its own rules
// neither report at the wrong place nor repeat a problem.
func TestDecodeLocate(t *testing.T) {
	type place struct {
		key string
		pos Pos
	}
	doc := "servers:\n  - name: a\n    port: x\n    backup:\n      name: b\n"
	c := &config{}
	got := map[string][]place{}
	ps := Decode([]byte(doc), c, func(v any, key string, p Pos) {
		var who string
		switch v := v.(type) {
		case *config:
			who = "config"
		case *server:
			who = "server " + v.Name // "" while the struct itself is located
		default:
			t.Errorf("locate(%T) called, want *config or *server", v)
		}
		got[who] = append(got[who], place{key, p})
	})
	want := map[string][]place{
		"config":   {{"", Pos{Line: 1, Col: 1}}, {"servers", Pos{Line: 2, Col: 3}}},
		"server ":  {{"", Pos{Line: 2, Col: 5}}, {"", Pos{Line: 5, Col: 7}}},
		"server a": {{"name", Pos{Line: 2, Col: 11}}, {"port", Pos{Line: 3, Col: 11, Failed: true}}, {"backup", Pos{Line: 5, Col: 7}}},
		"server b": {{"name", Pos{Line: 5, Col: 13}}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(place{})); diff != "" {
		t.Errorf("Decode places mismatch (-want +got):\n%s", diff)
	}
	if len(ps) != 1 {
		t.Errorf("Decode(%q) = %v, want one problem (port)", doc, ps)
	}
}

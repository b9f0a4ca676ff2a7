package strictyaml

import (
	"bytes"
	"testing"
)

// FuzzReindent: finding lines out of step never panics, keeps every line
// where it was, and only ever changes a line's leading spaces.
func FuzzReindent(f *testing.F) {
	for _, seed := range []string{
		"routes:\n  - name: a\n    method: POST\n   path: /a\n",
		"a: &x\n  b: 1\n c: 2\n",
		"a: |\n   text\n  more\nb: [1,\n  2]\n",
		"- - a\n   - b\n",
		"k: \"# not a comment\"\n   x: 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fixed, bad := reindent(data)
		in, out := bytes.Split(data, []byte("\n")), bytes.Split(fixed, []byte("\n"))
		if len(in) != len(out) {
			t.Fatalf("reindent(%q) has %d lines, want %d", data, len(out), len(in))
		}
		for i := range in {
			if !bytes.Equal(bytes.TrimLeft(in[i], " "), bytes.TrimLeft(out[i], " ")) {
				t.Errorf("reindent(%q) line %d = %q, want %q with other indentation", data, i+1, out[i], in[i])
			}
		}
		for _, b := range bad {
			if b.line < 1 || b.line > len(in) {
				t.Errorf("reindent(%q) reports line %d of %d", data, b.line, len(in))
			}
		}
	})
}

// FuzzDecode: decoding any document never panics or hangs, and every problem
// has a message and a place that is in the file or unknown.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"servers:\n  - {name: a, port: 1, tags: [x], labels: {k: v}, buffer: 10b}\n",
		"servers:\n  - &s {name: a, backup: *s}\n",
		"servers:\n  - &a {name: a}\n  - {<<: [*a, 1], name: b}\n",
		"? [a]\n: 1\n",
		"servers:\n  - name: a\n   port: 1\n",
		"a: &a [1, 1]\nb: [*a, *a]\n---\nc: 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// YAML breaks lines at \n, \r\n and a lone \r
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
		for _, p := range Decode(data, &config{}, func(any, string, Pos) {}) {
			if p.Line < 0 || p.Line > lines || p.Col < 0 || p.Msg == "" {
				t.Errorf("Decode(%q) problem %+v, want a message at a line of %d or 0", data, p, lines)
			}
		}
	})
}

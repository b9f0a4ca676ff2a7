package strictyaml

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// parseYAML parses one YAML document. A syntax error is reported at its line;
// when the document's indentation is inconsistent, each line out of step is
// reported instead, and the document is parsed again with those lines
// re-indented, so that the rest of the file is still checked.
func parseYAML(data []byte, ps *Problems) (*yaml.Node, error) {
	root, err := parseOne(data, ps)
	if err == nil || errors.Is(err, io.EOF) {
		return root, err
	}
	fixed, bad := reindent(data)
	if len(bad) > 0 {
		for _, b := range bad {
			ps.At(Pos{Line: b.line, Col: b.col}, "indentation: this line lines up with no enclosing block (expected column %s)", b.want)
		}
		var more Problems
		if root, err2 := parseOne(fixed, &more); err2 == nil {
			*ps = append(*ps, more...)
			return root, nil
		}
		return nil, nil
	}
	if sm := yamlLine.FindStringSubmatch(err.Error()); sm != nil {
		line, _ := strconv.Atoi(sm[1])
		ps.Add(line, "%s", sm[2])
		return nil, nil
	}
	return nil, err
}

func parseOne(data []byte, ps *Problems) (*yaml.Node, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		ps.Add(extra.Line, "only one YAML document is allowed")
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

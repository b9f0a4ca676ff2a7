package policy

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keygate/keygate/internal/strictyaml"
)

// Problem is one thing wrong with a policy or tokens file, at a line and
// column of it (0 when unknown).
type Problem = strictyaml.Problem

// FileError lists every problem found in one file.
type FileError = strictyaml.FileError

// pos is a place in a file; a failed one (Failed) was reported already.
type pos = strictyaml.Pos

// problems collects Problems while a file is checked.
type problems = strictyaml.Problems

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
		l.line, l.col = p.Line, p.Col
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
	return pos{Line: l.line, Col: l.col}
}

// locator is implemented by the types that embed located.
type locator interface{ locate(key string, p pos) }

// decodeYAML decodes data into v strictly (see strictyaml.Decode), recording
// in each value that embeds located where it and its fields were written.
func decodeYAML(data []byte, v any) problems {
	return strictyaml.Decode(data, v, func(v any, key string, p pos) {
		if l, ok := v.(locator); ok {
			l.locate(key, p)
		}
	})
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1m", "30s", "1h").
type Duration time.Duration

// UnmarshalStrictYAML parses a duration string for strictyaml.Decode.
func (d *Duration) UnmarshalStrictYAML(n *yaml.Node) (want string) {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return "a duration such as 30s, 1m or 1h"
	}
	*d = Duration(v)
	return ""
}

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (use e.g. 30s, 1m, 1h)", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

package strictyaml

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a file, at a line and column of it (0 when
// unknown).
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

// Pos is a place in a file; the zero Pos is an unknown place. A Failed place
// holds a value that could not be decoded and was reported already: a rule
// about the field's value would only repeat the problem (a rate of "twenty"
// is not also "not > 0").
type Pos struct {
	Line, Col int
	Failed    bool
}

// Problems collects the problems of one file while it is decoded and
// checked. The zero value is empty and ready to use.
type Problems []Problem

// Add adds a problem at a line (0: of the whole file).
func (ps *Problems) Add(line int, format string, args ...any) {
	*ps = append(*ps, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// At adds a problem at p, unless p is Failed.
func (ps *Problems) At(p Pos, format string, args ...any) {
	if p.Failed {
		return
	}
	*ps = append(*ps, Problem{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

// Err returns nil when there are no problems, and otherwise a *FileError for
// file with the problems sorted by place and repeats dropped: a value shared
// through an alias is decoded and checked once per use, and reported once.
func (ps Problems) Err(file string) error {
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

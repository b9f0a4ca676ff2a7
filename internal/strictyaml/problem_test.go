package strictyaml

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileErrorFormat(t *testing.T) {
	e := &FileError{File: "f.yaml", Problems: []Problem{{Msg: "first"}, {Line: 3, Col: 5, Msg: "second"}}}
	if got, want := e.Error(), "f.yaml: first\nf.yaml:3:5: second"; got != want {
		t.Errorf("FileError.Error() = %q, want %q", got, want)
	}
}

// TestProblemsErr: problems come out sorted by line then column, a problem
// repeated (a value shared through an alias, checked once per use) comes out
// once, and a failed place adds nothing.
func TestProblemsErr(t *testing.T) {
	var ps Problems
	if err := ps.Err("f"); err != nil {
		t.Fatalf("Problems{}.Err(f) = %v, want nil", err)
	}
	ps.At(Pos{Line: 4, Col: 9}, "late %s", "column")
	ps.At(Pos{Line: 4, Col: 2}, "early column")
	ps.Add(0, "whole file")
	ps.At(Pos{Line: 4, Col: 9}, "late column")
	ps.At(Pos{Line: 1, Col: 1, Failed: true}, "already reported")
	err := ps.Err("f")
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("Problems.Err(f) = %T %v, want a *FileError", err, err)
	}
	want := []Problem{{Msg: "whole file"}, {Line: 4, Col: 2, Msg: "early column"}, {Line: 4, Col: 9, Msg: "late column"}}
	if diff := cmp.Diff(want, fe.Problems); diff != "" {
		t.Errorf("Problems.Err(f) mismatch (-want +got):\n%s", diff)
	}
}

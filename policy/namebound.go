package policy

import "strings"

// Bounds on the parameter names a request may send, so that the cost of
// folding them (FoldName) stays within a small factor of reading a plain
// body of the same size: one non-ASCII rune can decompose into 18 (U+FDFA),
// and each is looked up in the normalization and case tables.
const (
	// maxNameBytes bounds one JSON key or query name, before any folding.
	// Checked params are at most 64 bytes long.
	maxNameBytes = 128
	// maxFoldBytes bounds the folding work per parse: the bytes of the
	// non-ASCII names folded plus the bytes of their folds. Counting the
	// folds too makes a rune that decomposes into many cost its work.
	maxFoldBytes = 4 << 10
)

// Messages for names refused by the bounds.
const (
	msgNameTooLong = "Parameter name too long (at most 128 bytes)"
	msgFoldBudget  = "Too many non-ASCII parameter names"
)

// countFolded is called with each name FoldName folds the slow way (not
// ASCII); tests count names and runes to show the work per request is
// bounded, and each name folded once, without timing it.
var countFolded = func(string) {}

// nameFolder folds the names of one request within maxFoldBytes of work.
// The zero value has no budget: use newNameFolder.
type nameFolder struct {
	left int
}

func newNameFolder() nameFolder { return nameFolder{left: maxFoldBytes} }

// fold returns FoldName(name) for a non-ASCII name, or an error once the
// request's non-ASCII names would exceed the budget. An ASCII name is
// returned as it is, at no cost (SameName compares it in place; foldStored
// folds it where a map needs the fold).
func (f *nameFolder) fold(name string) (string, *Error) {
	if isASCII(name) {
		return name, nil
	}
	if len(name) > f.left {
		return "", badRequest(msgFoldBudget)
	}
	folded := FoldName(name)
	// the check after the fold lets one name's work past the budget: at
	// most maxNameBytes folded, a few microseconds
	if f.left -= len(name) + len(folded); f.left < 0 {
		return "", badRequest(msgFoldBudget)
	}
	return folded, nil
}

// checkName refuses a name longer than maxNameBytes, before it is folded.
func checkName(name string) *Error {
	if len(name) > maxNameBytes {
		return badRequest(msgNameTooLong)
	}
	return nil
}

// binderStems returns the names PHP and Rack 2 bind a query name to at the
// top level, before folding: PHP cuts a name at NUL and at '[', Rack 2 drops
// leading '[' and ']' and a trailing ']'. Spring and qs with allowDots cut
// at '.'. bracket is the name so stripped; dotted is also cut at '.'.
func binderStems(name string) (bracket, dotted string) {
	name, _, _ = strings.Cut(name, "\x00")
	name = strings.TrimLeft(name, "[]")
	name, _, _ = strings.Cut(name, "[")
	name = strings.TrimRight(name, "]")
	dotted, _, _ = strings.Cut(name, ".")
	return name, dotted
}

// controlName reports whether a query name holds a C0 or C1 control or
// DEL, which binders cut names at (PHP's NUL) or drop.
func controlName(name string) bool {
	return controlIn(name, true) == 'c'
}

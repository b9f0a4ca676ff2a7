package redisconn

import (
	"strconv"
	"strings"
)

// ConfigError lists every problem of a Config, as Validate and
// New report them. No problem reveals a password.
type ConfigError struct {
	Problems []*FieldError // never empty
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return "redis config: " + strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As and errors.Is.
func (e *ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// FieldError is one problem of a Config, on the field to fix. Its text
// names fields through a function, so that a program can name them as its
// users set them (an environment variable, a flag) without rewriting the
// message.
type FieldError struct {
	Field string // the Config field to fix, such as "ClusterAddrs"
	Index int    // the faulty element of a list field; -1 for the whole field
	Err   error  // the cause another package reported, or nil

	problem func(name func(field string) string) string
}

// Error names the fields as Config does: "ClusterAddrs[1]: ...".
func (e *FieldError) Error() string { return e.Text(func(f string) string { return f }) }

// Text is the problem with every field, the one at fault and any other the
// message mentions, named by name.
func (e *FieldError) Text(name func(field string) string) string {
	s := name(e.Field)
	if e.Index >= 0 {
		s += "[" + strconv.Itoa(e.Index) + "]"
	}
	return s + ": " + e.problem(name)
}

// Unwrap returns the cause, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldProblem is a problem whose text mentions no other field.
func fieldProblem(field, text string) *FieldError {
	return &FieldError{Field: field, Index: -1, problem: func(func(string) string) string { return text }}
}

// fieldRelated is a problem whose text mentions other fields, each named
// through name.
func fieldRelated(field string, text func(name func(field string) string) string) *FieldError {
	return &FieldError{Field: field, Index: -1, problem: text}
}

// fieldCause is a problem another package reported.
func fieldCause(field string, err error) *FieldError {
	return &FieldError{Field: field, Index: -1, Err: err, problem: func(func(string) string) string { return err.Error() }}
}

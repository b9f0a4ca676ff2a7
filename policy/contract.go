// Package policy describes what keygate enforces: the error contract, the route
// table with its parameter rules and limits, the access tokens, and how upstream
// answers are mapped into the contract. It imports nothing else of keygate's, so
// every other package can build contract errors without an import cycle.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Contract codes. Every answer keygate sends on an API route carries one of them.
const (
	CodeOK        = 0 // success
	CodeInvalid   = 1 // bad request, bad token, not found, server error
	CodeRefused   = 2 // the backend refused on business grounds: expired, blocked, limit reached, conflict
	CodeRateLimit = 3 // too many requests
)

// Default client messages, used when keygate answers itself or the upstream gave
// nothing safe to repeat.
const (
	MsgMissingParams = "Missing required params"
	MsgInvalidToken  = "Invalid access token"
	MsgNotFound      = "Not found"
	MsgTooMany       = "Too many requests. Please try again later."
	MsgServerError   = "Server error"
	MsgBadRequest    = "Bad request"
	MsgForbidden     = "Forbidden"
	MsgConflict      = "Conflict"
	MsgOK            = "OK"
)

// contractStatus lists the statuses that may leave keygate, with their default
// code and message.
var contractStatus = map[int]struct {
	code int
	msg  string
}{
	200: {CodeOK, MsgOK},
	400: {CodeInvalid, MsgBadRequest},
	401: {CodeInvalid, MsgInvalidToken},
	403: {CodeRefused, MsgForbidden},
	404: {CodeInvalid, MsgNotFound},
	409: {CodeRefused, MsgConflict},
	429: {CodeRateLimit, MsgTooMany},
	500: {CodeInvalid, MsgServerError},
}

// IsContractStatus reports whether status may leave keygate on an API route.
func IsContractStatus(status int) bool {
	_, ok := contractStatus[status]
	return ok
}

// DefaultCode returns the contract code for a contract status, and CodeInvalid
// for any other status.
func DefaultCode(status int) int {
	if c, ok := contractStatus[status]; ok {
		return c.code
	}
	return CodeInvalid
}

// DefaultMessage returns the client message keygate uses for a contract status
// when it has nothing more specific; "Server error" for any other status.
func DefaultMessage(status int) string {
	if c, ok := contractStatus[status]; ok {
		return c.msg
	}
	return MsgServerError
}

// Error is a contract answer together with its cause. Handlers return it; one
// writer renders it. The zero value is not useful: Status must be a contract
// status.
type Error struct {
	Status     int           // HTTP status, one of the contract's
	Code       int           // contract code
	Message    string        // safe for clients
	RetryAfter time.Duration // when > 0, sent as Retry-After in whole seconds (rounded up)
	Err        error         // cause, for logs only; never sent
}

// Errorf returns an Error with the status's default code and the given client
// message.
func Errorf(status int, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Status: status, Code: DefaultCode(status), Message: msg}
}

// Error implements error. It names the client message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return strconv.Itoa(e.Status) + " " + e.Message + ": " + e.Err.Error()
	}
	return strconv.Itoa(e.Status) + " " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns a copy of e with err as its cause.
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Body renders the contract JSON: {"message":"...","code":N}.
func (e *Error) Body() []byte { return RenderBody(e.Message, e.Code) }

// AsError returns err as a contract Error; any other error becomes a 500
// "Server error" whose cause is err.
func AsError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Status: 500, Code: CodeInvalid, Message: MsgServerError, Err: err}
}

// RenderBody renders {"message":msg,"code":code} with msg JSON-escaped, with
// the fields in that order and no trailing newline.
func RenderBody(msg string, code int) []byte {
	b := make([]byte, 0, len(msg)+32)
	b = append(b, `{"message":`...)
	q, _ := json.Marshal(msg) // a string always marshals
	b = append(b, q...)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, '}')
}

// RetryAfterSeconds returns d in whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++ // rounding up by adding first would overflow near the largest Duration
	}
	return max(s, 1)
}

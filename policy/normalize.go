package policy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keygate/keygate/internal/jsonscan"
)

// maxMessage is the longest upstream message keygate repeats to a client.
const maxMessage = 200

// Rewrite kinds, for metrics: why an upstream error answer was rewritten.
const (
	RewriteNone   = "none"   // valid contract answer, passed through
	RewriteStatus = "status" // status outside the contract
	RewriteBody   = "body"   // body not the contract's JSON shape
	RewriteCode   = "code"   // right shape, wrong code for the status
	RewriteLeak   = "leak"   // message unsafe (see Leak) or not one the route lists
)

// ContractStatus maps any upstream error status (>= 300) to the contract
// status keygate answers with: contract statuses stay, other 4xx become 400,
// everything else becomes 500.
func ContractStatus(status int) int {
	switch {
	case IsContractStatus(status):
		return status
	case status >= 400 && status < 500:
		return 400
	default:
		return 500
	}
}

// Normalize maps an upstream error answer (status >= 300) into the contract.
// body is what was read of it, truncated reports that there was more, and
// isJSON that the upstream declared a JSON content type. When the answer is
// already a valid contract answer for this route, pass is true and it should
// be sent unchanged; otherwise e is the answer to send instead, and kind says
// why it was rewritten. r may be nil (no route overrides).
func (r *Route) Normalize(status int, body []byte, truncated, isJSON bool) (pass bool, e *Error, kind string) {
	return r.NormalizeFor(status, body, truncated, isJSON, nil)
}

// NormalizeFor is Normalize for a request whose token and secret parameters
// (see Route.Secrets) are secrets: a message that repeats one of them is
// replaced, as is one the route's response.messages do not list.
func (r *Route) NormalizeFor(status int, body []byte, truncated, isJSON bool, secrets []string) (pass bool, e *Error, kind string) {
	target := ContractStatus(status)
	var up upstreamBody
	if !truncated && isJSON {
		up = parseUpstream(body)
	}
	rule := r.errorRule(status, up.message)
	code := DefaultCode(target)
	if rule != nil {
		code = rule.Code
	}
	switch {
	case target != status:
		kind = RewriteStatus
	case !up.contract:
		kind = RewriteBody
	case up.code != code:
		kind = RewriteCode
	case !r.allowedMessage(up.message, secrets):
		kind = RewriteLeak
	case rule != nil && rule.Message != "" && up.message != rule.Message:
		kind = RewriteBody // the rule names the message to answer with
	default:
		return true, nil, RewriteNone
	}
	msg := DefaultMessage(target)
	switch {
	case rule != nil && rule.Message != "":
		msg = rule.Message
	case r.allowedMessage(up.message, secrets):
		msg = up.message
	}
	return false, &Error{Status: target, Code: code, Message: msg}, kind
}

func (r *Route) errorRule(status int, msg string) *ErrorRule {
	if r == nil {
		return nil
	}
	for _, e := range r.Errors {
		if e != nil && e.Status == status && e.matches(msg) {
			return e
		}
	}
	return nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// upstreamBody is what keygate understood of an upstream error body.
type upstreamBody struct {
	message  string // the upstream's own message, from message, error, error.message or detail
	code     int
	contract bool // exactly {"message": string, "code": integer}
}

func parseUpstream(body []byte) upstreamBody {
	if up, ok := parseUpstreamFast(body); ok {
		return up
	}
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	// json.Valid, not d.More, rules out trailing bytes: More reports false
	// before a stray '}' or ']'.
	if !json.Valid(body) || d.Decode(&m) != nil {
		return upstreamBody{}
	}
	var up upstreamBody
	for _, k := range []string{"message", "error", "detail", "error_description"} {
		if s, ok := jsonString(m[k]); ok && s != "" {
			up.message = s
			break
		}
	}
	if up.message == "" {
		var nested struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(m["error"], &nested) == nil {
			up.message = nested.Message
		}
	}
	msg, okMsg := jsonString(m["message"])
	var code json.Number
	// json.Number also takes a quoted number: the contract's code is a bare one.
	okCode := len(m["code"]) > 0 && m["code"][0] != '"' && json.Unmarshal(m["code"], &code) == nil
	if okCode {
		c, err := code.Int64()
		okCode = err == nil && c >= 0 && c <= 99
		up.code = int(c)
	}
	// A duplicate key is read as the last by encoding/json and as the first
	// by other clients, and invalid UTF-8 is not JSON to a strict client:
	// such a body is not passed on as it is.
	up.contract = len(m) == 2 && okMsg && msg != "" && okCode &&
		utf8.Valid(body) && scanObject(body, nil, nil) == nil
	return up
}

// Keys parseUpstreamFast keeps the value of, by index.
var upstreamKeys = [...]string{"message", "error", "detail", "error_description", "code"}

// parseUpstreamFast is parseUpstream without reflection, for the bodies
// backends send: it scans the object once and decodes only the values it
// needs. It reports false, leaving the body to the general reading, when
// exactness would take more: invalid UTF-8 (which encoding/json replaces),
// escaped keys (which may spell "message"), duplicate keys, more than 16 of
// them, and a message to be found in an "error" object (matched ignoring
// case, as encoding/json matches struct fields).
func parseUpstreamFast(body []byte) (upstreamBody, bool) {
	if !json.Valid(body) {
		return upstreamBody{}, true
	}
	if !utf8.Valid(body) {
		return upstreamBody{}, false
	}
	s := jsonscan.New(body, "")
	if !s.Object() { // not an object: nothing to read in it
		return upstreamBody{}, true
	}
	var vals [len(upstreamKeys)][]byte
	var keys [16][]byte
	n := 0
	for {
		m, more := s.Member()
		if !more {
			break
		}
		key := body[m.KeyStart+1 : m.KeyEnd-1]
		if m.Escaped || n == len(keys) {
			return upstreamBody{}, false
		}
		for _, k := range keys[:n] {
			if bytes.Equal(k, key) {
				return upstreamBody{}, false
			}
		}
		keys[n] = key
		n++
		for i, name := range upstreamKeys {
			if string(key) == name {
				vals[i] = body[m.ValStart:m.ValEnd]
			}
		}
	}
	var up upstreamBody
	for _, raw := range vals[:4] { // message, error, detail, error_description
		if s, ok := validString(raw); ok && s != "" {
			up.message = s
			break
		}
	}
	if up.message == "" && len(vals[1]) > 0 && vals[1][0] == '{' {
		return upstreamBody{}, false
	}
	msg, okMsg := validString(vals[0])
	// encoding/json reads a number or null into a json.Number, and its
	// Int64 is strconv.ParseInt: null reads as "", which does not parse.
	raw := vals[4]
	okCode := len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9' || raw[0] == 'n')
	if okCode {
		lit := string(raw)
		if raw[0] == 'n' {
			lit = ""
		}
		c, err := strconv.ParseInt(lit, 10, 64)
		okCode = err == nil && c >= 0 && c <= 99
		up.code = int(c)
	}
	// no duplicate keys and valid UTF-8 here; with exactly two keys, message
	// and code, none is one scanObject refuses
	up.contract = n == 2 && okMsg && msg != "" && okCode
	return up, true
}

// validString is jsonString for a value of a body known to be valid JSON
// and UTF-8: without escapes, the string is its bytes.
func validString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	return jsonString(raw)
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// safeMessage reports whether an upstream message may be repeated to a
// client: one short line that passes the leak detector.
func safeMessage(s string, secrets []string) bool {
	return s != "" && len(s) <= maxMessage && Leak(s, secrets...) == ""
}

// CodeOfContract returns the code of a body that Normalize passed as a valid
// contract answer.
func CodeOfContract(body []byte) int { return parseUpstream(body).code }

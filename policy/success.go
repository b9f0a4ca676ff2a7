package policy

import (
	"encoding/json"
	"unicode/utf8"
)

// okPrefix is spliced into a success body that lacks the contract fields.
const okPrefix = `"message":"OK","code":0`

// NormalizeSuccess checks the body of an upstream success against the
// contract: a JSON object whose "code", if present, is 0 and whose "message",
// if present, is a string. It returns the body to send: body itself when both
// fields are there, or body with the missing ones added at the front of the
// object (the rest is kept byte for byte). ok is false when the body cannot
// be a contract success: not a JSON object, or a code or message of the wrong
// kind.
func NormalizeSuccess(body []byte) (out []byte, ok bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, false
	}
	s := scanner{b: body}
	s.ws()
	if body[s.i] != '{' {
		return nil, false
	}
	open := s.i
	s.i++
	hasCode, hasMsg, empty := false, false, true
	for {
		m, more := s.member()
		if !more {
			break
		}
		empty = false
		key := s.keyBytes(m)
		raw := body[m.vStart:m.vEnd]
		switch {
		case string(key) == "code":
			if hasCode || string(raw) != "0" {
				return nil, false
			}
			hasCode = true
		case string(key) == "message":
			if hasMsg || raw[0] != '"' {
				return nil, false
			}
			hasMsg = true
		}
	}
	if hasCode && hasMsg {
		return body, true
	}
	var add string
	switch {
	case !hasCode && !hasMsg:
		add = okPrefix
	case !hasCode:
		add = `"code":0`
	default:
		add = `"message":"OK"`
	}
	out = make([]byte, 0, len(body)+len(add)+1)
	out = append(out, body[:open+1]...)
	out = append(out, add...)
	if !empty {
		out = append(out, ',')
	}
	return append(out, body[open+1:]...), true
}

// Package jsonscan walks JSON that encoding/json's Valid has accepted, in
// place: object members as offsets into the input, strings decoded only when
// asked and then as substrings of a string the caller already holds. Because
// the input is known to be valid it checks no syntax, which makes a walk
// cheap enough to run on every request body; given JSON that is not valid it
// may panic. It also finds what valid JSON can still hold that two parsers
// read differently: an escape of half a UTF-16 surrogate pair
// (LoneSurrogate).
package jsonscan

import "encoding/json"

// Scanner reads JSON that json.Valid accepted. The zero Scanner has nothing
// to read; build one with New.
type Scanner struct {
	b []byte
	s string // b as a string, when the caller has it: strings read are its substrings; else ""
	i int
}

// New returns a Scanner at the start of b, which json.Valid must accept. src
// is b as a string when the caller holds one, so that strings read are its
// substrings instead of copies, or "".
func New(b []byte, src string) Scanner { return Scanner{b: b, s: src} }

// Offset returns where the scanner is in its input.
func (s *Scanner) Offset() int { return s.i }

// Space moves past white space.
func (s *Scanner) Space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Object moves past white space and the '{' of an object, and reports
// whether there was one; when there is not, the scanner stays at the value.
// Members then reads the object's members.
func (s *Scanner) Object() bool {
	s.Space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	return true
}

// strEnd moves past the string at s.i. It returns where the string starts
// (its opening quote) and whether it holds escapes.
func (s *Scanner) strEnd() (start int, escaped bool) {
	start = s.i
	s.i++
	for s.b[s.i] != '"' {
		if s.b[s.i] == '\\' {
			escaped = true
			s.i++
		}
		s.i++
	}
	s.i++
	return start, escaped
}

// ReadString reads the string at the scanner's place and returns it decoded.
func (s *Scanner) ReadString() string {
	start, escaped := s.strEnd()
	return s.Text(start, s.i, escaped)
}

// Text returns the string at [start, end) of the input, quotes included,
// decoded (escaped: it holds escapes): a substring of the caller's string
// when New was given one, else a copy. Invalid UTF-8 in a string without
// escapes is kept as it is, where encoding/json would replace it with U+FFFD:
// callers that need one reading check utf8.Valid first, as policy does.
func (s *Scanner) Text(start, end int, escaped bool) string {
	if !escaped {
		if len(s.s) == len(s.b) {
			return s.s[start+1 : end-1]
		}
		return string(s.b[start+1 : end-1])
	}
	var out string
	_ = json.Unmarshal(s.b[start:end], &out) // valid by construction
	return out
}

// Member is where one member of a JSON object lies in the scanned input.
type Member struct {
	KeyStart, KeyEnd int  // the key, quotes included
	ValStart, ValEnd int  // the value
	Escaped          bool // the key holds escapes
}

// Member moves past the next member of an object whose '{' is behind the
// scanner; ok is false, and the scanner at the closing '}', when there is
// none. Every walk over an object's members goes through here.
func (s *Scanner) Member() (m Member, ok bool) {
	s.Space()
	if s.b[s.i] == '}' {
		return Member{}, false
	}
	if s.b[s.i] == ',' {
		s.i++
		s.Space()
	}
	m.KeyStart, m.Escaped = s.strEnd()
	m.KeyEnd = s.i
	s.Space()
	s.i++ // ':'
	s.Space()
	m.ValStart = s.i
	s.Skip()
	m.ValEnd = s.i
	return m, true
}

// Skip moves past one value.
func (s *Scanner) Skip() {
	switch s.b[s.i] {
	case '"':
		s.strEnd()
	case '{', '[':
		depth := 0
		for {
			switch s.b[s.i] {
			case '"':
				s.strEnd()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// TrimSpace returns b without its leading JSON white space. Unlike the rest
// of the package it takes any input.
func TrimSpace(b []byte) []byte {
	s := Scanner{b: b}
	s.Space()
	return b[s.i:]
}

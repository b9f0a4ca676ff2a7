package policy

import "strings"

// The string types of response fields, matched byte by byte: they run on
// every listed field of every success. Each accepts exactly what the
// regular expression in its comment accepts (fieldtypes_test.go checks it).

// isFieldID: ^[A-Za-z0-9_-]{1,256}$
func isFieldID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnumByte(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isFieldEmail: ^[A-Za-z0-9.!#$%&'*+/=?^_~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$
func isFieldEmail(s string) bool {
	at := strings.IndexByte(s, '@') // the local part holds none
	if at < 1 || at > 64 {
		return false
	}
	for i := 0; i < at; i++ {
		if c := s[i]; !isAlnumByte(c) && strings.IndexByte(".!#$%&'*+/=?^_~-", c) < 0 {
			return false
		}
	}
	labels, n := s[at+1:], 0
	for {
		dot := strings.IndexByte(labels, '.')
		label := labels
		if dot >= 0 {
			label = labels[:dot]
		}
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnumByte(c) && c != '-' {
				return false
			}
		}
		n++
		if dot < 0 {
			return n >= 2
		}
		labels = labels[dot+1:]
	}
}

// isFieldDatetime: ^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$
// Each optional part starts with a byte no later part starts with, so
// reading greedily decides as the expression does.
func isFieldDatetime(s string) bool {
	if len(s) < 10 || !digitsAt(s, 0, 4) || s[4] != '-' || !digitsAt(s, 5, 2) || s[7] != '-' || !digitsAt(s, 8, 2) {
		return false
	}
	s = s[10:]
	if s == "" {
		return true
	}
	if s[0] != 'T' && s[0] != ' ' || len(s) < 6 || !digitsAt(s, 1, 2) || s[3] != ':' || !digitsAt(s, 4, 2) {
		return false
	}
	s = s[6:]
	if s != "" && s[0] == ':' {
		if len(s) < 3 || !digitsAt(s, 1, 2) {
			return false
		}
		s = s[3:]
		if s != "" && s[0] == '.' {
			n := 1
			for n < len(s) && s[n] >= '0' && s[n] <= '9' {
				n++
			}
			if n == 1 || n > 10 { // one to nine digits
				return false
			}
			s = s[n:]
		}
	}
	switch {
	case s == "" || s == "Z":
		return true
	case s[0] != '+' && s[0] != '-':
		return false
	}
	s = s[1:]
	if len(s) == 5 && s[2] == ':' {
		s = s[:2] + s[3:]
	}
	return len(s) == 4 && digitsAt(s, 0, 4)
}

// digitsAt reports whether s[i:i+n] is n ASCII digits; s is long enough.
func digitsAt(s string, i, n int) bool {
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isAlnumByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

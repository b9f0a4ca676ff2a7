// Package leak tells whether a string shows a client an internal detail of
// the system behind keygate: a host, an address, a path, a stack trace, a
// driver error, a credential, or a value of the request it must not repeat.
// It errs on the safe side and knows nothing of routes or contracts: callers
// decide what to do with a string it refuses.
package leak

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Classes: why a string would show a client internal detail.
const (
	Control     = "control" // control characters, or not UTF-8
	Markup      = "markup"  // <, >, { or }: HTML, templates, serialized objects
	URL         = "url"     // scheme://, or user:password@host
	Host        = "host"    // a dotted name (host, FQDN, file name), localhost, host:port
	IP          = "ip"      // an IP address in any notation: dotted, IPv6, hex, one integer
	Path        = "path"    // a file path
	Stack       = "stack"   // a stack trace or runtime error
	Driver      = "driver"  // an SQL or driver error signature, an identifier with _
	Secret      = "secret"  // a long hex or base64 run, a credential word
	Echo        = "echo"    // the request's own token or secret parameter
	Length      = "length"  // longer than any value a backend has reason to send
	maxLeakText = 4 << 10   // the longest string the detector passes
	minEchoLen  = 6         // secrets shorter than this are not looked for
	minHexRun   = 16        // hex runs this long are taken for secrets
	minB64Run   = 20        // base64-alphabet runs with digits and letters this long too
	minIntIP    = 1 << 24   // integers from here to 2^32-1 may be IPv4 addresses
	maxIntIP    = 1<<32 - 1 //
	maxIntLen   = len("4294967295")
)

// leakWords are lower-case fragments that only internals contain.
var leakWords = []string{
	"exception", "traceback", "goroutine", "panic", "stack", "sqlstate", "errno", "at line",
	"constraint", "violates", "duplicate key", "foreign key", "syntax error", "deadlock",
	"mysql", "mariadb", "postgres", "psql", "sqlite", "mongo", "redis", "jdbc", "odbc", "oracle",
	"password", "passwd", "pwd=", "secret", "credential", "apikey", "api key", "access key",
	"private key", "bearer ", "insert into", "delete from", "localhost", "null pointer",
	"nil pointer", "segmentation", "undefined method", "cannot read propert",
}

// leakIndex lists leakWords by first byte, so one pass over a string finds
// them all without lower-casing it.
var leakIndex = func() (idx [256][]string) {
	for _, w := range leakWords {
		idx[w[0]] = append(idx[w[0]], w)
	}
	return idx
}()

// Class reports the class of internal detail s shows, or "" when it shows
// none. It errs on the safe side: any dotted name that is not a plain word
// counts as a host name, any integer in the IPv4 range as an address, any
// long run of hex or base64 as a secret. secrets are values the answer must
// not repeat (the request's token and secret parameters), matched ignoring
// case and punctuation.
func Class(s string, secrets ...string) string { return class(s, secrets, nil, false) }

// Class is leak.Class with the prepared secrets.
func (n Needles) Class(s string) string { return class(s, nil, n.list, true) }

// class is Class; the secrets are needles when prepared.
func class(s string, secrets []string, needles []needle, prepared bool) string {
	if len(s) > maxLeakText {
		return Length
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if c < 0x20 || c == 0x7f {
			return Control
		}
	}
	if !ascii {
		if !utf8.ValidString(s) {
			return Control
		}
		for _, r := range s {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
				return Control
			}
		}
	}
	if strings.ContainsAny(s, "<>{}") {
		return Markup
	}
	if prepared {
		if c := echoes(s, needles); c != "" {
			return c
		}
	} else if c := Echoes(s, secrets); c != "" {
		return c
	}
	if strings.Contains(s, "://") {
		return URL
	}
	for i := 0; i < len(s); i++ {
		c := lowerByte(s[i])
		for _, w := range leakIndex[c] {
			if hasPrefixFold(s[i:], w) {
				return wordClass(w)
			}
		}
	}
	if i := indexFold(s, "select "); i >= 0 && indexFold(s[i:], " from ") >= 0 {
		return Driver
	}
	if ascii {
		return asciiWords(s)
	}
	for rest := s; rest != ""; {
		i := strings.IndexFunc(rest, func(r rune) bool { return !isSeparator(r) })
		if i < 0 {
			break
		}
		rest = rest[i:]
		j := strings.IndexFunc(rest, isSeparator)
		if j < 0 {
			j = len(rest)
		}
		w := strings.Trim(rest[:j], "\"'`(),;!?")
		rest = rest[j:]
		if c := leakWord(strings.TrimRight(w, ".:")); c != "" {
			return c
		}
	}
	return ""
}

// asciiWords is the word loop of Class for a string of ASCII bytes: the
// same words, split and trimmed byte by byte instead of rune by rune.
func asciiWords(s string) string {
	for i := 0; i < len(s); {
		for i < len(s) && asciiSeparator[s[i]] {
			i++
		}
		j := i
		for j < len(s) && !asciiSeparator[s[j]] {
			j++
		}
		if i == j {
			break
		}
		w, k := s[i:j], 0
		for k < len(w) && wordTrim[w[k]] {
			k++
		}
		w = w[k:]
		k = len(w)
		for k > 0 && wordTrim[w[k-1]] {
			k--
		}
		w = w[:k]
		for k > 0 && (w[k-1] == '.' || w[k-1] == ':') {
			k--
		}
		if c := leakWord(w[:k]); c != "" {
			return c
		}
		i = j
	}
	return ""
}

// asciiSeparator is isSeparator for ASCII bytes; wordTrim, the punctuation
// Class trims off both ends of a word.
var asciiSeparator, wordTrim = func() (sep, trim [256]bool) {
	for c := range utf8.RuneSelf {
		sep[c] = isSeparator(rune(c))
	}
	for _, c := range []byte("\"'`(),;!?") {
		trim[c] = true
	}
	return sep, trim
}()

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case; prefix is lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return i
		}
	}
	return -1
}

func wordClass(w string) string {
	switch w {
	case "exception", "traceback", "goroutine", "panic", "stack", "at line", "null pointer", "nil pointer",
		"segmentation", "undefined method", "cannot read propert":
		return Stack
	case "password", "passwd", "pwd=", "secret", "credential", "apikey", "api key", "access key", "private key", "bearer ":
		return Secret
	case "localhost":
		return Host
	}
	return Driver
}

func isSeparator(r rune) bool {
	return unicode.IsSpace(r) || r == ',' || r == ';' || r == '(' || r == ')' || r == '"' || r == '\'' || r == '`' || r == '='
}

// leakWord checks one word of a string, its surrounding punctuation removed.
func leakWord(w string) string {
	if w == "" {
		return ""
	}
	switch {
	case w[0] == '/' || w[0] == '\\' || w[0] == '~' || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "../"):
		if len(w) > 1 {
			return Path
		}
	case len(w) > 2 && w[1] == ':' && (w[2] == '\\' || w[2] == '/'): // C:\ or C:/
		return Path
	case strings.Count(w, "/") >= 2 || strings.Contains(w, "\\"):
		return Path
	}
	if at := strings.IndexByte(w, '@'); at >= 0 && strings.IndexByte(w[:at], ':') >= 0 {
		return URL // user:password@host
	}
	if c := dotted(w); c != "" {
		return c
	}
	if c := colons(w); c != "" {
		return c
	}
	if len(w) > 2 && (w[0] == '0') && (w[1] == 'x' || w[1] == 'X') {
		return IP // hex literal: 0x7f000001, an address or a pointer
	}
	if isDigits(w) && len(w) <= maxIntLen {
		if n := atoiSmall(w); n >= minIntIP && n <= maxIntIP {
			return IP
		}
	}
	if c := identifier(w); c != "" {
		return c
	}
	return secretRun(w)
}

// dotted finds a dot with a letter or digit on both sides: a host name, an
// IPv4 address, a file or class name.
func dotted(w string) string {
	for i := 1; i+1 < len(w); i++ {
		if w[i] == '.' && isAlnum(w[i-1]) && isAlnum(w[i+1]) {
			digits := true
			for j := 0; j < len(w); j++ {
				if c := w[j]; c != '.' && (c < '0' || c > '9') {
					digits = false
					break
				}
			}
			if digits {
				return IP
			}
			return Host
		}
	}
	return ""
}

// colons finds IPv6 addresses (two colons or more between hex digits) and
// host:port.
func colons(w string) string {
	n := strings.Count(w, ":")
	if n == 0 {
		return ""
	}
	if n >= 2 {
		hex := true
		for i := 0; i < len(w); i++ {
			if c := w[i]; c != ':' && c != '%' && c != '[' && c != ']' && c != '.' && !isHex(c) {
				hex = false
				break
			}
		}
		if hex {
			return IP
		}
	}
	// host:port, name:1234
	i := strings.LastIndexByte(w, ':')
	if i > 0 && i+1 < len(w) && isDigits(w[i+1:]) && (isAlnum(w[i-1]) || w[i-1] == ']') {
		return Host
	}
	return ""
}

// identifier finds code identifiers: snake_case (constraint and table
// names), ER_ and ORA- error codes, E-prefixed errno names (ECONNREFUSED).
func identifier(w string) string {
	for i := 1; i+1 < len(w); i++ {
		if w[i] == '_' && isAlnum(w[i-1]) && isAlnum(w[i+1]) {
			return Driver
		}
	}
	if strings.HasPrefix(w, "ORA-") || strings.HasPrefix(w, "SQLITE_") {
		return Driver
	}
	if len(w) >= 5 && w[0] == 'E' {
		upper := true
		for i := 0; i < len(w); i++ {
			if w[i] < 'A' || w[i] > 'Z' {
				upper = false
				break
			}
		}
		if upper && w != "ERROR" {
			return Driver
		}
	}
	return ""
}

// secretRun finds runs of hex (minHexRun) or of the base64 alphabet with
// both letters and digits (minB64Run): keys, hashes, access key ids.
func secretRun(w string) string {
	run, hexRun, letters, digits := 0, 0, false, false
	for i := 0; i <= len(w); i++ {
		if i < len(w) && isB64(w[i]) {
			run++
			c := w[i]
			if isHex(c) {
				hexRun++
			} else {
				hexRun = 0
			}
			if c >= '0' && c <= '9' {
				digits = true
			} else if isAlpha(c) {
				letters = true
			}
			if hexRun >= minHexRun || (run >= minB64Run && letters && digits) {
				return Secret
			}
			continue
		}
		run, hexRun, letters, digits = 0, 0, false, false
	}
	return ""
}

// Echoes reports Echo when s repeats one of secrets, ignoring case and
// anything but letters and digits (a key echoed without its dashes), and ""
// when it repeats none; no secrets means "".
func Echoes(s string, secrets []string) string {
	if len(secrets) == 0 {
		return ""
	}
	var sbuf [512]byte
	var folded []byte
	for _, sec := range secrets {
		var buf [128]byte
		f := appendFold(buf[:0], sec)
		if len(f) < minEchoLen {
			if len(sec) >= minEchoLen && indexFold(s, strings.ToLower(sec)) >= 0 {
				return Echo
			}
			continue
		}
		if folded == nil {
			folded = appendFold(sbuf[:0], s)
		}
		if bytes.Contains(folded, f) {
			return Echo
		}
	}
	return ""
}

// Needles are the secrets an answer must not repeat, folded once for the
// many strings of one answer: Class and Echoes without folding every secret
// again for each string. The zero value looks for none.
type Needles struct {
	list []needle
}

type needle struct {
	folded []byte // the secret's letters and digits, lower-cased
	end    int    // where folded ends in the array of all of them
	lower  string // when folded is shorter than minEchoLen and the secret is not: the secret lower-cased; else ""
}

// Prepare folds secrets for Needles.Class and Needles.Echoes.
func Prepare(secrets []string) Needles {
	if len(secrets) == 0 {
		return Needles{}
	}
	list := make([]needle, len(secrets))
	size := 0
	for _, sec := range secrets {
		size += len(sec) + len(sec)/2 // lower-casing may lengthen a rune by half
	}
	all := make([]byte, 0, size) // every secret's letters and digits, one after the other
	for i, sec := range secrets {
		all = appendFold(all, sec)
		list[i].end = len(all)
	}
	start := 0
	for i, sec := range secrets {
		list[i].folded = all[start:list[i].end:list[i].end]
		if len(list[i].folded) < minEchoLen && len(sec) >= minEchoLen {
			list[i].lower = strings.ToLower(sec)
		}
		start = list[i].end
	}
	return Needles{list: list}
}

// First returns the needles of the first k secrets (all when there are
// fewer).
func (n Needles) First(k int) Needles { return Needles{list: n.list[:min(k, len(n.list))]} }

// Echoes is leak.Echoes with the prepared secrets.
func (n Needles) Echoes(s string) string { return echoes(s, n.list) }

func echoes(s string, needles []needle) string {
	var sbuf [512]byte
	var folded []byte
	for _, nd := range needles {
		if len(nd.folded) < minEchoLen {
			if nd.lower != "" && indexFold(s, nd.lower) >= 0 {
				return Echo
			}
			continue
		}
		if 2*len(s) < len(nd.folded) { // folding at most doubles a rune's bytes: s is too short to hold it
			continue
		}
		if folded == nil {
			folded = appendFold(sbuf[:0], s)
		}
		if bytes.Contains(folded, nd.folded) {
			return Echo
		}
	}
	return ""
}

// appendFold appends the letters and digits of s, lower-cased.
func appendFold(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			if c := lowerByte(byte(r)); isAlnum(c) {
				b = append(b, c)
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b = utf8.AppendRune(b, unicode.ToLower(r))
		}
	}
	return b
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }
func isHex(c byte) bool   { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isB64(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

func atoiSmall(s string) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

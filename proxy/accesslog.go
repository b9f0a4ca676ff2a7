package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate/policy"
)

// AccessLog writes the access line of each answered API request straight to
// a writer, byte for byte as log/slog's JSON or text handler would write the
// record (same keys, order and value formats), without a slog.Record, its
// attributes, the handler's locking or one string per hash: a busy keygate
// writes one such line per request. Build it on the sink and in the format
// of Options.Logger, whose level still decides whether lines are written.
// It is safe for concurrent use.
type AccessLog struct {
	w    io.Writer
	text bool
}

// NewAccessLog returns an AccessLog writing one line per Write call to w,
// which must be safe for concurrent use. format "text" is the format of
// slog.NewTextHandler; anything else, that of slog.NewJSONHandler.
func NewAccessLog(w io.Writer, format string) *AccessLog {
	return &AccessLog{w: w, text: format == "text"}
}

// lines recycles line buffers; a line longer than maxPooledLine (a long
// route name or client address) is not kept.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledLine = 4 << 10

// accessLine builds one line in a pooled buffer.
type accessLine struct {
	b     *[]byte
	text  bool
	first bool // no attribute written yet (text separates them by spaces)
}

// begin starts a record at t with level and msg, as slog's handlers write
// the built-in attributes.
func (l *AccessLog) begin(t time.Time, level slog.Level, msg string) accessLine {
	line := accessLine{b: lines.Get().(*[]byte), text: l.text, first: true}
	b := (*line.b)[:0]
	if l.text {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t)
		b = append(b, " level="...)
	} else {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":`...)
	}
	*line.b = b
	line.first = false
	line.rawString(level.String())
	line.key("msg")
	line.rawString(msg)
	return line
}

// appendRFC3339Millis appends t as slog's text handler does: RFC 3339 with
// exactly three digits of fraction, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	// RFC3339Nano trims trailing zeros: a tenth of a millisecond added to
	// the truncated time keeps four digits, the fourth then dropped.
	const prefix = len("2006-01-02T15:04:05.000")
	n := len(b)
	b = t.Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefix], b[n+prefix+1:]...)
}

// key writes the separator and key of the next attribute.
func (l *accessLine) key(k string) {
	b := *l.b
	switch {
	case l.text && l.first:
	case l.text:
		b = append(b, ' ')
	default:
		b = append(b, ',')
	}
	l.first = false
	*l.b = b
	l.rawString(k)
	if l.text {
		*l.b = append(*l.b, '=')
	} else {
		*l.b = append(*l.b, ':')
	}
}

// rawString writes s as slog writes a string: quoted and escaped in JSON,
// bare in text unless it needs quoting.
func (l *accessLine) rawString(s string) {
	b := *l.b
	switch {
	case l.text && !textNeedsQuoting(s):
		b = append(b, s...)
	case l.text:
		b = strconv.AppendQuote(b, s)
	default:
		b = append(b, '"')
		b = appendJSONEscaped(b, s)
		b = append(b, '"')
	}
	*l.b = b
}

func (l *accessLine) str(k, v string) {
	l.key(k)
	l.rawString(v)
}

func (l *accessLine) int(k string, v int) {
	l.key(k)
	*l.b = strconv.AppendInt(*l.b, int64(v), 10)
}

// float writes v as slog does: 'g' in text; in JSON, as encoding/json
// writes a float64 (plain decimals from 1e-6 to 1e21, which durations in
// milliseconds always are; json itself otherwise).
func (l *accessLine) float(k string, v float64) {
	l.key(k)
	b := *l.b
	abs := math.Abs(v)
	switch {
	case l.text:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	case abs == 0 || abs >= 1e-6 && abs < 1e21:
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	default:
		if j, err := json.Marshal(v); err == nil {
			b = append(b, j...)
		} else { // NaN and infinities: slog writes its error instead
			b = append(b, `"!ERROR:`...)
			b = appendJSONEscaped(b, err.Error())
			b = append(b, '"')
		}
	}
	*l.b = b
}

// hash writes the label policy.HashToken gives secret, without the string.
func (l *accessLine) hash(k, secret string) {
	l.key(k)
	b := *l.b
	if !l.text {
		b = append(b, '"')
	}
	b = policy.AppendHashToken(b, secret) // hex digits: never quoted nor escaped
	if !l.text {
		b = append(b, '"')
	}
	*l.b = b
}

// end finishes the line, writes it and recycles the buffer.
func (l *accessLine) end(w io.Writer) {
	if l.text {
		*l.b = append(*l.b, '\n')
	} else {
		*l.b = append(*l.b, "}\n"...)
	}
	_, _ = w.Write(*l.b) // as slog.Logger: a broken sink does not fail the request
	if cap(*l.b) <= maxPooledLine {
		lines.Put(l.b)
	}
	l.b = nil
}

// textNeedsQuoting reports whether slog's text handler quotes s: when it is
// empty or holds a space, '=', '"', an ASCII control character, or a rune
// that is invalid, U+FFFD, a space or not printable. A backslash alone does
// not need quoting.
func textNeedsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendJSONEscaped appends s escaped as slog's JSON handler escapes it:
// '"' and '\', \n, \r, \t, other ASCII controls as \u00XX, invalid UTF-8
// as \ufffd, U+2028 and U+2029 as \u2028 and \u2029; nothing else (not <,
// > nor &).
func appendJSONEscaped(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && size == 1:
			esc = `\ufffd`
		case r == '\u2028':
			esc = `\u2028`
		case r == '\u2029':
			esc = `\u2029`
		default:
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// request writes the access line of one answered request: the fields and
// order of finish's slog record.
func (l *AccessLog) request(t time.Time, w *statusWriter, a *attempt, route string, durationMS float64) {
	line := l.begin(t, slog.LevelInfo, "request")
	line.str("request_id", w.requestID)
	line.str("route", route)
	line.int("status", w.status)
	line.str("code", w.codeLabel())
	line.float("duration_ms", durationMS)
	line.str("ip", a.ip)
	for _, p := range a.route.SecretParams() { // the policy says which values are secret: log their hashes only
		if v, ok := a.values.Get(p.Name); ok {
			line.hash(p.LogKey(), v)
		}
	}
	if a.token != "" {
		line.hash("token_hash", a.token)
	}
	line.end(l.w)
}

// statusLabels are the metric labels of the statuses keygate answers with,
// made once: strconv.Itoa allocates for numbers past 99.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// statusLabel is strconv.Itoa(status) without the allocation.
func statusLabel(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return strconv.Itoa(status)
}

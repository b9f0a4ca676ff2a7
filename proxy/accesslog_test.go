package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate/policy"
)

// accessFields is a record as finish writes it, for comparing AccessLog
// with slog's handlers.
type accessFields struct {
	t          time.Time
	msg        string
	strs       [][2]string // key, value
	status     int
	durationMS float64
	secret     string // hashed under "token_hash"
}

// viaSlog is what slog's handler in format writes for f.
func (f accessFields) viaSlog(format string) string {
	var out bytes.Buffer
	var h slog.Handler = slog.NewJSONHandler(&out, nil)
	if format == "text" {
		h = slog.NewTextHandler(&out, nil)
	}
	r := slog.NewRecord(f.t, slog.LevelInfo, f.msg, 0)
	for _, kv := range f.strs {
		r.AddAttrs(slog.String(kv[0], kv[1]))
	}
	r.AddAttrs(slog.Int("status", f.status), slog.Float64("duration_ms", f.durationMS), slog.String("token_hash", policy.HashToken(f.secret)))
	_ = h.Handle(context.Background(), r)
	return out.String()
}

// viaAccessLog is what AccessLog in format writes for f.
func (f accessFields) viaAccessLog(format string) string {
	var out bytes.Buffer
	l := NewAccessLog(&out, format)
	line := l.begin(f.t, slog.LevelInfo, f.msg)
	for _, kv := range f.strs {
		line.str(kv[0], kv[1])
	}
	line.int("status", f.status)
	line.float("duration_ms", f.durationMS)
	line.hash("token_hash", f.secret)
	line.end(&out)
	return out.String()
}

// TestAccessLogMatchesSlog: AccessLog writes, byte for byte, the line
// slog's JSON and text handlers write for the same record, whatever the
// strings hold (quoting, escapes, invalid UTF-8), the time (zone, whole
// milliseconds) and the duration.
func TestAccessLogMatchesSlog(t *testing.T) {
	base := time.Date(2026, 11, 26, 5, 10, 20, 123456789, time.UTC)
	tests := []struct {
		name string
		f    accessFields
	}{
		{"plain", accessFields{t: base, msg: "request", strs: [][2]string{{"request_id", "4f2a9c1e77d03b58"}, {"route", "activate"}, {"code", "0"}, {"ip", "192.0.2.7"}}, status: 200, durationMS: 1.234}},
		{"empty code", accessFields{t: base, msg: "request", strs: [][2]string{{"code", ""}}, status: 499}},
		{"ipv6 with zone", accessFields{t: base, msg: "request", strs: [][2]string{{"ip", "fe80::1%eth0"}, {"ip2", "2001:db8::1"}}}},
		{"quotes and spaces", accessFields{t: base, msg: "a request", strs: [][2]string{{"route", `say "hi"`}, {"k=v", "a=b"}, {"back", `C:\dir`}}}},
		{"controls", accessFields{t: base, msg: "request", strs: [][2]string{{"r", "a\nb\rc\td\x00e\x1f\x7f"}}}},
		{"unicode", accessFields{t: base, msg: "request", strs: [][2]string{{"r", "ключ"}, {"sep", "a\u2028b\u2029c"}, {"nbsp", "a\u00a0b"}, {"fffd", "a\ufffdb"}, {"cf", "a\u200bb"}}}},
		{"invalid utf-8", accessFields{t: base, msg: "request", strs: [][2]string{{"r", "a\xffb\xc3"}, {"\xfe", "x"}}}},
		{"html", accessFields{t: base, msg: "request", strs: [][2]string{{"r", "<a href='x'>&amp;</a>"}}}},
		{"whole second", accessFields{t: base.Truncate(time.Second), msg: "request", durationMS: 0}},
		{"whole millisecond", accessFields{t: base.Truncate(time.Millisecond), msg: "request", durationMS: 0.001}},
		{"zone", accessFields{t: base.In(time.FixedZone("x", -(3*3600 + 30*60))), msg: "request", durationMS: 12345.678}},
		{"long duration", accessFields{t: base, msg: "request", durationMS: 1e7}},
		{"tiny duration", accessFields{t: base, msg: "request", durationMS: 1e-7}},
		{"huge duration", accessFields{t: base, msg: "request", durationMS: 1e22}},
		{"negative duration", accessFields{t: base, msg: "request", durationMS: -0.5}},
		{"long secret", accessFields{t: base, msg: "request", secret: strings.Repeat("s", 1000)}},
	}
	for _, tc := range tests {
		for _, format := range []string{"json", "text"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				want := tc.f.viaSlog(format)
				if got := tc.f.viaAccessLog(format); got != want {
					t.Errorf("AccessLog line = %q, want %q (slog)", got, want)
				}
			})
		}
	}
}

// FuzzAccessLine compares AccessLog with slog's handlers on any strings and
// duration.
func FuzzAccessLine(f *testing.F) {
	f.Add("4f2a9c1e77d03b58", "activate", "192.0.2.7", "tok", 1.234, int64(0))
	f.Add("", "a b", "x=\"y\"", "", 0.0, int64(-3600))
	f.Add("\xff\u2028", "\t\n", "\\", "ключ", 1e22, int64(19800))
	f.Fuzz(func(t *testing.T, id, route, ip, secret string, d float64, zone int64) {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return // slog writes its own error text for these; finish never logs one
		}
		fields := accessFields{
			t:   time.Date(2026, 11, 26, 5, 10, 20, int(zone%1e9+1e9)%1e9, time.FixedZone("z", int(zone%86400))),
			msg: "request", strs: [][2]string{{"request_id", id}, {"route", route}, {ip, ip}},
			status: len(route), durationMS: d, secret: secret,
		}
		for _, format := range []string{"json", "text"} {
			if got, want := fields.viaAccessLog(format), fields.viaSlog(format); got != want {
				t.Errorf("AccessLog %s line = %q, want %q (slog)", format, got, want)
			}
		}
	})
}

// accessVariable matches the fields of an access line that differ from one
// run to the next: the time and the duration.
var accessVariable = regexp.MustCompile(`"?time"?[=:]"?[^ ",]+"?[ ,]|"?duration_ms"?[=:][0-9.e+-]+`)

// TestAccessLogThroughGateway: a gateway with an AccessLog writes the access
// lines a gateway without one writes through its Logger (time and duration
// aside), for answers of every kind, in both formats; and none when the
// Logger's level is above info.
func TestAccessLogThroughGateway(t *testing.T) {
	calls := []call{
		{path: "/activate-key", token: testTokens["global"], body: activateBody(testKey)},
		{path: "/activate-key", token: "not-a-token", body: activateBody(testKey)},
		{path: "/get-key", token: testTokens["global"], body: `{"productId":1}`},
		{path: "/get-key", token: testTokens["global"], body: getBody(testKey)},
		{path: "/nowhere", body: `{}`},
		{method: "GET", path: "/activate-key"},
	}
	run := func(t *testing.T, format string, level slog.Level, access bool) []string {
		var logs syncBuffer
		opts := &slog.HandlerOptions{Level: level}
		var h slog.Handler = slog.NewJSONHandler(&logs, opts)
		if format == "text" {
			h = slog.NewTextHandler(&logs, opts)
		}
		g := newGateway(t, func(o *Options) {
			o.Logger = slog.New(h)
			if access {
				o.AccessLog = NewAccessLog(&logs, format)
			}
		})
		for i, c := range calls {
			c.header = map[string]string{"X-Request-Id": "req-" + string(rune('a'+i))}
			g.do(t, c)
		}
		var out []string
		for _, l := range strings.SplitAfter(logs.String(), "\n") {
			if strings.Contains(l, `"msg":"request"`) || strings.Contains(l, " msg=request ") {
				out = append(out, accessVariable.ReplaceAllString(l, "<var>"))
			}
		}
		return out
	}
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			want := run(t, format, slog.LevelInfo, false)
			if len(want) != len(calls) {
				t.Fatalf("slog wrote %d access lines, want %d:\n%s", len(want), len(calls), strings.Join(want, ""))
			}
			if got := run(t, format, slog.LevelInfo, true); !cmp.Equal(got, want) {
				t.Errorf("AccessLog lines differ from slog's (-want +got):\n%s", cmp.Diff(want, got))
			}
			if got := run(t, format, slog.LevelWarn, true); len(got) != 0 {
				t.Errorf("AccessLog at level warn wrote %d lines, want none:\n%s", len(got), strings.Join(got, ""))
			}
		})
	}
}

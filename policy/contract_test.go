package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestContractTable(t *testing.T) {
	tests := []struct {
		status   int
		contract bool
		code     int
		msg      string
	}{
		{200, true, CodeOK, MsgOK},
		{400, true, CodeInvalid, MsgBadRequest},
		{401, true, CodeInvalid, MsgInvalidToken},
		{403, true, CodeRefused, MsgForbidden},
		{404, true, CodeInvalid, MsgNotFound},
		{409, true, CodeRefused, MsgConflict},
		{429, true, CodeRateLimit, MsgTooMany},
		{500, true, CodeInvalid, MsgServerError},
		{201, false, CodeInvalid, MsgServerError},
		{302, false, CodeInvalid, MsgServerError},
		{418, false, CodeInvalid, MsgServerError},
		{502, false, CodeInvalid, MsgServerError},
		{0, false, CodeInvalid, MsgServerError},
	}
	for _, tt := range tests {
		if got := IsContractStatus(tt.status); got != tt.contract {
			t.Errorf("IsContractStatus(%d) = %v, want %v", tt.status, got, tt.contract)
		}
		if got := DefaultCode(tt.status); got != tt.code {
			t.Errorf("DefaultCode(%d) = %d, want %d", tt.status, got, tt.code)
		}
		if got := DefaultMessage(tt.status); got != tt.msg {
			t.Errorf("DefaultMessage(%d) = %q, want %q", tt.status, got, tt.msg)
		}
	}
}

// strictContract decodes a body that must be exactly {"message":string,
// "code":integer}: those two keys once each, in that order or the other, and
// nothing after. It returns the message and code.
func strictContract(body []byte) (string, int, error) {
	if !json.Valid(body) {
		return "", 0, fmt.Errorf("not valid JSON: %q", body)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return "", 0, fmt.Errorf("not an object: %q", body)
	}
	var msg string
	code, seen := 0, map[string]bool{}
	for d.More() {
		key, _ := d.Token()
		k, _ := key.(string)
		if seen[k] || (k != "message" && k != "code") {
			return "", 0, fmt.Errorf("key %q repeated or unexpected in %q", k, body)
		}
		seen[k] = true
		val, _ := d.Token()
		switch v := val.(type) {
		case string:
			if k != "message" {
				return "", 0, fmt.Errorf("code is a string in %q", body)
			}
			msg = v
		case json.Number:
			n, err := v.Int64()
			if k != "code" || err != nil {
				return "", 0, fmt.Errorf("bad %s %v in %q", k, v, body)
			}
			code = int(n)
		default:
			return "", 0, fmt.Errorf("bad %s %v in %q", k, val, body)
		}
	}
	if _, err := d.Token(); err != nil || len(seen) != 2 {
		return "", 0, fmt.Errorf("not exactly message and code: %q", body)
	}
	if _, err := d.Token(); err != io.EOF {
		return "", 0, fmt.Errorf("trailing data in %q", body)
	}
	return msg, code, nil
}

func TestRenderBody(t *testing.T) {
	tests := []struct {
		msg  string
		code int
		want string
	}{
		{"Missing required params", 1, `{"message":"Missing required params","code":1}`},
		{"", 0, `{"message":"","code":0}`},
		{`Key "A" is blocked`, 2, `{"message":"Key \"A\" is blocked","code":2}`},
		{`back\slash`, 1, `{"message":"back\\slash","code":1}`},
		{"<b>&</b>", 1, `{"message":"\u003cb\u003e\u0026\u003c/b\u003e","code":1}`},
		{"line\nbreak\ttab\x00", 1, `{"message":"line\nbreak\ttab\u0000","code":1}`},
		{"Schlüssel gesperrt 🔑", 2, `{"message":"Schlüssel gesperrt 🔑","code":2}`},
		{"bad \xff byte", 1, `{"message":"bad \ufffd byte","code":1}`},
		{"sep\u2028", 1, `{"message":"sep\u2028","code":1}`},
		{"x", -1, `{"message":"x","code":-1}`},
		{"x", math.MaxInt64, `{"message":"x","code":9223372036854775807}`},
	}
	for _, tt := range tests {
		got := RenderBody(tt.msg, tt.code)
		if string(got) != tt.want {
			t.Errorf("RenderBody(%q, %d) = %s, want %s", tt.msg, tt.code, got, tt.want)
		}
		if _, _, err := strictContract(got); err != nil {
			t.Errorf("RenderBody(%q, %d) is not a contract body: %v", tt.msg, tt.code, err)
		}
	}
}

func TestError(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:443: connection refused")
	e := Errorf(404, "Unknown product %s", "p1")
	if e.Status != 404 || e.Code != CodeInvalid || e.Message != "Unknown product p1" || e.Err != nil {
		t.Errorf("Errorf(404, ...) = %+v, want 404 code 1 \"Unknown product p1\"", e)
	}
	if got := Errorf(403, MsgForbidden).Code; got != CodeRefused {
		t.Errorf("Errorf(403).Code = %d, want %d", got, CodeRefused)
	}
	w := e.Wrap(cause)
	if w == e || e.Err != nil {
		t.Errorf("Wrap changed its receiver")
	}
	if !errors.Is(w, cause) || errors.Unwrap(w) != cause {
		t.Errorf("errors.Is(Wrap(cause), cause) = false, want true")
	}
	if got, want := w.Error(), "404 Unknown product p1: dial tcp 10.0.0.7:443: connection refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := e.Error(), "404 Unknown product p1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := string(w.Body()), `{"message":"Unknown product p1","code":1}`; got != want {
		t.Errorf("Body() = %s, want %s (the cause never leaves)", got, want)
	}

	if got := AsError(fmt.Errorf("reading: %w", w)); got != w {
		t.Errorf("AsError(wrapped *Error) = %v, want the *Error itself", got)
	}
	plain := AsError(cause)
	if plain.Status != 500 || plain.Code != CodeInvalid || plain.Message != MsgServerError || plain.Err != cause {
		t.Errorf("AsError(plain error) = %+v, want 500 code 1 %q with the cause kept", plain, MsgServerError)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{-time.Hour, 1},
		{0, 1},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{1500 * time.Millisecond, 2},
		{time.Minute, 60},
		{math.MaxInt64, 9223372037}, // an HTTP date far ahead saturates time.Until
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// TestGoldenBodies pins the exact bytes of a few answers clients see. Run
// `go test ./policy -run TestGoldenBodies -update` after a deliberate change.
func TestGoldenBodies(t *testing.T) {
	p := Default()
	create, get := p.Match("POST", "/create-key"), p.Match("POST", "/get-key")
	normalized := func(r *Route, status int, body string) *Error {
		pass, e, _ := r.Normalize(status, []byte(body), false, true)
		if pass {
			t.Fatalf("Normalize(%d, %s) passed, want a rewrite", status, body)
		}
		return e
	}
	validated := func(r *Route, body string) *Error {
		e := validate(r, []byte(body))
		if e == nil {
			t.Fatalf("validate(%s) = nil, want an error", body)
		}
		return e
	}
	tests := []struct {
		name string
		e    *Error
	}{
		{"missing-params", validated(get, `{"productId":"prd_0123456789abcdefgh"}`)},
		{"duplicate-param", validated(get, `{"licenseKey":"a","licenseKey":"b"}`)},
		{"bad-expiry", validated(create, `{"productId":"prd_0123456789abcdefgh","expiryDate":"31/01/2027"}`)},
		{"upstream-html-502", normalized(create, 502, "<html><body><h1>502 Bad Gateway</h1></body></html>")},
		{"upstream-stack-trace", normalized(get, 500, `{"message":"NullPointerException at Keys.get(Keys.java:42)","code":1}`)},
		{"customer-not-found", normalized(create, 404, `{"message":"Customer not found","code":1}`)},
		{"rate-limited", &Error{Status: 429, Code: CodeRateLimit, Message: "Too many failed attempts. Please try again later."}},
		{"escaped-message", Errorf(403, `Key "A&B" <blocked>`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.e.Body()
			path := filepath.Join("testdata", "golden", tt.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: Body() = %s, want %s (from %s)", tt.name, got, want, path)
			}
			if _, _, err := strictContract(got); err != nil {
				t.Errorf("%s: Body() is not a contract body: %v", tt.name, err)
			}
		})
	}
}

func BenchmarkRenderBody(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		RenderBody("Too many failed attempts. Please try again later.", CodeRateLimit)
	}
}

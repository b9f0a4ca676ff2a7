package policy

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// readable reports whether body is what VetSuccess's reader must accept, by
// encoding/json's reading: valid JSON in UTF-8, no object with a key twice
// (decoded), no value nested deeper than maxSuccessDepth.
func readable(body []byte) bool {
	if !utf8.Valid(body) || !json.Valid(body) {
		return false
	}
	type frame struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []frame
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		top := len(stack) - 1
		delim, isDelim := tok.(json.Delim)
		if top >= 0 && stack[top].obj && stack[top].wantKey {
			if isDelim && delim == '}' {
				stack = stack[:top]
				continue
			}
			k := tok.(string)
			if stack[top].keys[k] {
				return false
			}
			stack[top].keys[k] = true
			stack[top].wantKey = false
			continue
		}
		if isDelim && delim == ']' {
			stack = stack[:top]
			continue
		}
		if len(stack) > maxSuccessDepth {
			return false
		}
		if top >= 0 && stack[top].obj {
			stack[top].wantKey = true
		}
		if isDelim {
			stack = append(stack, frame{obj: delim == '{', keys: map[string]bool{}, wantKey: true})
		}
	}
}

func readerAccepts(body []byte) bool { return readSuccess(body) != nil }

// TestReaderSyntax: VetSuccess's reader, which replaced json.Valid before
// it, accepts exactly the JSON encoding/json accepts (less duplicate keys
// and deep nesting), in particular none of the near-JSON below.
func TestReaderSyntax(t *testing.T) {
	deep := strings.Repeat(`{"a":`, maxSuccessDepth) + "1" + strings.Repeat("}", maxSuccessDepth)
	tooDeep := strings.Repeat(`[`, maxSuccessDepth+1) + "1" + strings.Repeat("]", maxSuccessDepth+1)
	for _, body := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"x"}`, "\t{\"a\" : -0.5e+10 }\r\n", deep, tooDeep,
		`{"a":"\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"}`, `{"a":"\ud800"}`, `{"a":1,"\u0061":2}`, `{"a":{"a":1}}`,
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a"::1}`, `{a:1}`,
		`{'a':1}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1}}`, `{"a":1} x`, `{"a":1}{}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":truex}`, `{"a":True}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`,
		`{"a":+1}`, `{"a":0x10}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":1.5.5}`, `{"a":--1}`, `{"a":"x\q"}`,
		`{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"x\ty\"}", "{\"a\":\"x\x00\"}", `{"a":"x`, `{"a":"x\"}`,
		"{\"a\":1}\x00", "\ufeff{}", "{\"a\":\"\xff\"}", `{"a":1}/**/`, `["a"]`, `"a"`, `1`, `null`,
	} {
		if got, want := readerAccepts([]byte(body)), readable([]byte(body)); got != want {
			t.Errorf("reader accepts %q = %v, want %v (encoding/json)", body, got, want)
		}
	}
}

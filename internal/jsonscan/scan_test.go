package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

type pair struct{ Key, Value string }

// members walks the object in b, returning each member's decoded key and raw
// value; ok is false when b is not an object.
func members(b []byte, src string) ([]pair, bool) {
	s := New(b, src)
	if !s.Object() {
		return nil, false
	}
	var out []pair
	for {
		m, ok := s.Member()
		if !ok {
			if s.Offset() >= len(b) || b[s.Offset()] != '}' {
				panic("Member stopped off the closing brace")
			}
			return out, true
		}
		out = append(out, pair{s.Text(m.KeyStart, m.KeyEnd, m.Escaped), string(b[m.ValStart:m.ValEnd])})
	}
}

func TestMembers(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []pair // nil with ok false: not an object
		ok   bool
	}{
		{"empty object", " {\n} ", nil, true},
		{"scalars", `{"a":1,"b":-2.5e3,"c":true,"d":false,"e":null}`,
			[]pair{{"a", "1"}, {"b", "-2.5e3"}, {"c", "true"}, {"d", "false"}, {"e", "null"}}, true},
		{"white space everywhere", "\t{ \"a\" :\r\n \"x\" , \"b\"\n:\t[ 1 , 2 ] }\n",
			[]pair{{"a", `"x"`}, {"b", "[ 1 , 2 ]"}}, true},
		{"nested values skipped whole", `{"o":{"p":[{"q":"}]"}],"r":"{"},"s":1}`,
			[]pair{{"o", `{"p":[{"q":"}]"}],"r":"{"}`}, {"s", "1"}}, true},
		{"escaped keys decoded", `{"\u006b\"":"v\\\"","k\\":0}`,
			[]pair{{`k"`, `"v\\\""`}, {`k\`, "0"}}, true},
		{"a duplicate is two members", `{"a":1,"a":2}`, []pair{{"a", "1"}, {"a", "2"}}, true},
		{"a list", `[{"a":1}]`, nil, false},
		{"a string", `"{"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input %q is not valid JSON", tt.in)
			}
			for _, src := range []string{"", tt.in} {
				got, ok := members([]byte(tt.in), src)
				if ok != tt.ok {
					t.Fatalf("Object(%q) = %v, want %v", tt.in, ok, tt.ok)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("members(%q) mismatch (-want +got):\n%s", tt.in, diff)
				}
			}
		})
	}
}

// TestReadString: a string is decoded, in place when it holds no escapes and
// the caller gave its text, so that reading it allocates nothing.
func TestReadString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`"plain"`, "plain"},
		{`""`, ""},
		{`"tab\there \u00e9 \ud83d\udd11 \"q\" \\"`, "tab\there é 🔑 \"q\" \\"},
	} {
		s := New([]byte(tt.in), tt.in)
		if got := s.ReadString(); got != tt.want {
			t.Errorf("ReadString(%s) = %q, want %q", tt.in, got, tt.want)
		}
		if got := s.Offset(); got != len(tt.in) {
			t.Errorf("ReadString(%s) stops at %d, want %d", tt.in, got, len(tt.in))
		}
	}
	in := `"in place"`
	b := []byte(in)
	if n := testing.AllocsPerRun(100, func() {
		s := New(b, in)
		_ = s.ReadString()
	}); n != 0 {
		t.Errorf("ReadString of an unescaped string with its text = %v allocations, want 0", n)
	}
}

func TestTrimSpace(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {" \t\r\n", ""}, {"\n {} ", "{} "}, {"\v{}", "\v{}"}, {"\u00a0{}", "\u00a0{}"},
	} {
		if got := string(TrimSpace([]byte(tt.in))); got != tt.want {
			t.Errorf("TrimSpace(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoneSurrogate(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     bool
	}{
		{"high half at the end", `"a\ud800"`, true},
		{"low half alone", `"\uDC00"`, true},
		{"halves swapped", `"\udc00\ud800"`, true},
		{"high half then a letter", `"\uD83Dx"`, true},
		{"high half then another escape", `"\ud83d\u0041"`, true},
		{"two high halves", `"\ud83d\ud83d\udd11"`, true},
		{"high half then an escaped backslash", `"\ud83d\\udd11"`, true},
		{"in a key", `{"n\udfff":1}`, true},
		{"nested", `[{"y":["\ud800"]}]`, true},
		{"a pair", `"\ud83d\udd11"`, false},
		{"a pair in capitals", `"\uD83D\uDD11"`, false},
		{"escaped backslash before u", `"\\ud800"`, false},
		{"other escapes", `"\u00e9\n\\\"\/"`, false},
		{"no strings", `[1, true, null]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input %s is not valid JSON", tt.in)
			}
			if got := LoneSurrogate([]byte(tt.in)); got != tt.want {
				t.Errorf("LoneSurrogate(%s) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzMembers: on any object json.Valid and utf8.Valid accept, the members read are those
// encoding/json reads, in order: the same keys, decoded alike, and the same
// value bytes.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1,"b":"x"}`, ` { "a" : [ 1, {"b": "]}"} ] , "\u00e9\\" : null } `,
		`{"a":1,"a":2}`, `{"k":"\ud83d\udd11","l":-0.5e-3}`, `[1]`, `"s"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || !utf8.Valid(b) { // encoding/json replaces invalid UTF-8; Text keeps it
			return
		}
		got, ok := members(b, string(b))
		d := json.NewDecoder(bytes.NewReader(b))
		tok, _ := d.Token()
		if isObject := tok == json.Delim('{'); ok != isObject {
			t.Fatalf("Object(%q) = %v, want %v", b, ok, isObject)
		}
		if !ok {
			return
		}
		var want []pair
		for d.More() {
			k, err := d.Token()
			if err != nil {
				t.Fatalf("encoding/json Token(%q) = %v", b, err)
			}
			var raw json.RawMessage
			if err := d.Decode(&raw); err != nil {
				t.Fatalf("encoding/json Decode(%q) = %v", b, err)
			}
			want = append(want, pair{k.(string), string(raw)})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("members(%q) mismatch (-encoding/json +jsonscan):\n%s", b, diff)
		}
	})
}

func BenchmarkMembers(b *testing.B) {
	body := []byte(`{"productId":"0123456789abcdef012345","licenseKey":"ABCDE-FGHIJ-KLMNO-PQRST","hostId":"host-\u00e9","n":[1,{"x":"y"}]}`)
	src := string(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		s := New(body, src)
		s.Object()
		for {
			m, ok := s.Member()
			if !ok {
				break
			}
			_ = s.Text(m.KeyStart, m.KeyEnd, m.Escaped)
		}
	}
}

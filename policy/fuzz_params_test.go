package policy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"

	"github.com/keygate/keygate/internal/jsonscan"
)

// FuzzParseBody runs bodies through every built-in route and checks that
// what keygate accepts, a backend reads the same way: encoding/json, into a
// map (exact keys) and into a struct (keys matched regardless of case), must
// see the same members and the same value for every checked string field.
func FuzzParseBody(f *testing.F) {
	p, k := js(okProduct), js(okKey)
	for _, seed := range []string{
		"",
		"{}",
		obj("productId", p, "licenseKey", k),
		obj("productId", p, "licenseKey", k, "hostId", js(okHost), "deviceTag", `"d"`),
		obj("productId", p, "maxActivations", `"5"`, "expiryDate", `"2027-01-31T00:00:00Z"`, "newCustomer", `{"name":"Ada","email":"a@b.c"}`),
		obj("productId", p, "customerId", `"c"`, "newCustomer", `{"name":"Ada"}`),
		obj("productId", p, "licenseKey", k, "licenseKey", k),
		`{"productId":` + p + `,"licen\u0073eKey":` + k + `}`,
		`{"productId":` + p + `,"License\u212aey":` + k + `}`,
		obj("productId", p, "LicenseKey", k),
		obj("productId", p, "newCustomer", `{"name":"a","n\u0061me":"b"}`),
		obj("productId", `"prd_\u0030123456789abcdef\ud83d\udd11"`, "licenseKey", `"\"\\\/\b\f\n\r\t ABCDE-FGHIJ-KLMNO"`),
		obj("x", `[{"productId":1},"}",{"licenseKey":[]}]`, "productId", p, "licenseKey", k),
		"{\"productId\":\"\xff\"}",
		obj("productId", p, "licenseKey", k) + "}",
		`[]`, `null`, `"x"`, `{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`,
		obj("productId", p, "licenseKey", `"ABCDE-FGHIJ-KLMNO-PQRS\ud800"`),
		obj("productId", p, "licenseKey", `"ABCDE-FGHIJ-KLMNO-PQRS\udc00\ud800"`),
		obj("productId", p, "licenseKey", `"ABCDE-FGHIJ-KLMNO-PQR\\ud800"`),
		`{"x\uDBFF":1}`,
		obj("productId", p, "licenseKey", k, "note", `"\ud800 in an unchecked value"`),
	} {
		f.Add([]byte(seed))
	}
	routes := Default().Routes
	structs := make([]reflect.Type, len(routes))
	for i, r := range routes {
		structs[i] = structFor(r.params)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for i, r := range routes {
			v, e := r.ParseBody(body)
			if e == nil {
				e = v.Validate()
			}
			if e != nil {
				if e.Status != 400 || e.Code != CodeInvalid || e.Message == "" {
					t.Fatalf("%s: validate(%q) = %d code %d %q, want a 400 code 1 with a message", r.Name, body, e.Status, e.Code, e.Message)
				}
				continue
			}
			if len(jsonscan.TrimSpace(body)) == 0 {
				continue // an empty body reads as {}
			}
			if hasLoneSurrogate(body) {
				t.Fatalf("%s: accepted %q, which holds an unpaired surrogate escape", r.Name, body)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil || m == nil {
				t.Fatalf("%s: accepted %q, which encoding/json reads as %v, %v", r.Name, body, m, err)
			}
			if n := countMembers(t, body); n != len(m) {
				t.Fatalf("%s: accepted %q with %d members, encoding/json sees %d keys", r.Name, body, n, len(m))
			}
			agree(t, r.Name, body, r.params, v.vals, m)
			s := reflect.New(structs[i])
			if err := json.Unmarshal(body, s.Interface()); err != nil {
				t.Fatalf("%s: accepted %q, which encoding/json cannot read into a struct: %v", r.Name, body, err)
			}
			for j, prm := range r.params {
				if v.vals[j].kind != 's' {
					continue
				}
				if got, _ := s.Elem().Field(j).Interface().(string); got != v.vals[j].str {
					t.Fatalf("%s: %s of %q: keygate read %q, a struct reads %q", r.Name, prm.Name, body, v.vals[j].str, got)
				}
			}
		}
	})
}

// agree checks that the values keygate read for params are those of m, the
// same object as encoding/json reads it, descending into object params.
func agree(t *testing.T, route string, body []byte, params []*Param, vals []value, m map[string]any) {
	t.Helper()
	for key := range m {
		if paramIndexIn(params, key) < 0 && foldIndex(params, key) >= 0 {
			t.Fatalf("%s: accepted %q with key %q, a case variant of a checked param", route, body, key)
		}
	}
	for i, prm := range params {
		got, present := m[prm.Name]
		val := vals[i]
		switch val.kind {
		case 0:
			if present {
				t.Fatalf("%s: %s of %q: keygate saw nothing, encoding/json reads %v", route, prm.Name, body, got)
			}
		case 'z':
			if !present || got != nil {
				t.Fatalf("%s: %s of %q: keygate saw null, encoding/json reads %v", route, prm.Name, body, got)
			}
		case 's':
			if s, ok := got.(string); !ok || s != val.str {
				t.Fatalf("%s: %s of %q: keygate read %q, encoding/json reads %#v", route, prm.Name, body, val.str, got)
			}
		case 'o':
			sub, ok := got.(map[string]any)
			if !ok {
				t.Fatalf("%s: %s of %q: keygate read an object, encoding/json reads %#v", route, prm.Name, body, got)
			}
			subVals := make([]value, len(prm.fields))
			if e := scanObject(val.raw, prm.fields, subVals); e != nil {
				t.Fatalf("%s: %s of %q: accepted, but its object does not scan: %v", route, prm.Name, body, e)
			}
			if n := countMembers(t, val.raw); n != len(sub) {
				t.Fatalf("%s: %s of %q has %d members, encoding/json sees %d keys", route, prm.Name, body, n, len(sub))
			}
			agree(t, route, body, prm.fields, subVals, sub)
		}
	}
}

// countMembers counts the members of the JSON object in b, duplicates
// included.
func countMembers(t *testing.T, b []byte) int {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("countMembers(%q): not an object", b)
	}
	n := 0
	for d.More() {
		if _, err := d.Token(); err != nil { // key
			t.Fatalf("countMembers(%q): %v", b, err)
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatalf("countMembers(%q): %v", b, err)
		}
		n++
	}
	return n
}

// structFor builds a struct with one field per param, tagged with its name,
// so encoding/json fills it the way a Go backend would: keys matched without
// regard to case, the last match winning.
func structFor(params []*Param) reflect.Type {
	fields := make([]reflect.StructField, len(params))
	for i, p := range params {
		fields[i] = reflect.StructField{
			Name: "F" + string(rune('A'+i)),
			Type: reflect.TypeFor[any](),
			Tag:  reflect.StructTag(`json:"` + p.Name + `"`),
		}
	}
	return reflect.StructOf(fields)
}

// FuzzParseQuery checks query strings the same way against url.ParseQuery.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"", q("productId", okProduct, "licenseKey", okKey), "productId=a&productId=b", "LicenseKey=x",
		"licen%73eKey=" + okKey + "&productId=" + okProduct, "%zz", "a;b", "productId=%FF", "=&=", "+=+",
	} {
		f.Add(seed)
	}
	r := loadV2(f).Match("GET", "/key")
	f.Fuzz(func(t *testing.T, raw string) {
		v, e := r.ParseQuery(raw)
		if e == nil {
			e = v.Validate()
		}
		if e != nil {
			if e.Status != 400 || e.Code != CodeInvalid || e.Message == "" {
				t.Fatalf("ParseQuery(%q) = %d code %d %q, want a 400 code 1 with a message", raw, e.Status, e.Code, e.Message)
			}
			return
		}
		vals, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("ParseQuery(%q) accepted what url.ParseQuery refuses: %v", raw, err)
		}
		for _, name := range []string{"productId", "licenseKey"} {
			got, _ := v.Get(name)
			if all := vals[name]; len(all) != 1 || all[0] != got {
				t.Fatalf("ParseQuery(%q): keygate read %s = %q, url.ParseQuery reads %q", raw, name, got, all)
			}
		}
	})
}

var escapeRE = regexp.MustCompile(`\\+u[0-9a-fA-F]{4}`)

// hasLoneSurrogate is loneSurrogate written another way, for FuzzParseBody:
// every \u escape (after an even run of backslashes) in order, a surrogate
// accepted only as a high half whose escape is followed at once by a low one.
func hasLoneSurrogate(body []byte) bool {
	type unit struct {
		start, end int
		r          rune
	}
	var units []unit
	for _, m := range escapeRE.FindAllIndex(body, -1) {
		slashes := bytes.IndexByte(body[m[0]:m[1]], 'u')
		if slashes%2 == 0 {
			continue // the last backslash is escaped: no \u escape here
		}
		n, _ := strconv.ParseUint(string(body[m[1]-4:m[1]]), 16, 32)
		units = append(units, unit{m[0] + slashes - 1, m[1], rune(n)})
	}
	for i := 0; i < len(units); i++ {
		if !utf16.IsSurrogate(units[i].r) {
			continue
		}
		if i+1 < len(units) && units[i+1].start == units[i].end &&
			utf16.DecodeRune(units[i].r, units[i+1].r) != unicode.ReplacementChar {
			i++
			continue
		}
		return true
	}
	return false
}

// foldIndex returns the index of the param that name is a variant of
// (FoldName: the same name to some binder), or -1: the fuzz target's
// reference for the parser's variant check.
func foldIndex(ps []*Param, name string) int {
	return foldedIndex(ps, FoldName(name))
}

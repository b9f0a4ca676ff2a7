package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/policy"
)

// TestREADMEDocumentsEveryVariable keeps the README's variable table and the
// Config struct in step: the same names, and the same defaults.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(KEYGATE_[A-Z0-9_]+)` \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		def := strings.TrimSpace(m[2])
		if strings.HasPrefix(def, "`") {
			def = strings.Trim(def, "`")
		} else {
			def = "" // "(none)", "(required ...)": no default
		}
		documented[m[1]] = def
	}
	want := map[string]string{}
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if key := f.Tag.Get("env"); key != "" {
			want[envPrefix+key] = f.Tag.Get("envDefault")
		}
	}
	if diff := cmp.Diff(want, documented); diff != "" {
		t.Errorf("README variable table differs from Config (-code +README):\n%s", diff)
	}
	// The meanings: serve -h prints varMeanings, so the README must say the same.
	meaning := regexp.MustCompile("(?m)^\\| `KEYGATE_([A-Z0-9_]+)` \\| [^|]* \\| (.*) \\|$")
	readmeMeanings := map[string]string{}
	for _, m := range meaning.FindAllStringSubmatch(string(readme), -1) {
		readmeMeanings[m[1]] = m[2]
	}
	codeMeanings := map[string]string{}
	for key := range want {
		key = strings.TrimPrefix(key, envPrefix)
		codeMeanings[key] = varMeanings[key]
	}
	if diff := cmp.Diff(codeMeanings, readmeMeanings); diff != "" {
		t.Errorf("README variable meanings differ from varMeanings in vars.go, which serve -h prints (-code +README):\n%s", diff)
	}
}

// TestREADMEDocumentsEveryPolicyField checks that every field of the policy
// and tokens files appears in the README's reference tables.
func TestREADMEDocumentsEveryPolicyField(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, typ := range []any{policy.Route{}, policy.Param{}, policy.Limit{}, policy.ErrorRule{}, policy.Response{}, policy.Field{}, policy.Token{}} {
		rt := reflect.TypeOf(typ)
		for i := 0; i < rt.NumField(); i++ {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !regexp.MustCompile("(?m)^\\|[^|\n]*`[^|`\n]*\\b" + name + "\\b[^|`\n]*`").MatchString(text) {
				t.Errorf("README has no reference row for %s field %q", rt.Name(), name)
			}
		}
	}
}

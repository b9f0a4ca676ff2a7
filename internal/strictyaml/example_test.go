package strictyaml_test

import (
	"fmt"

	"github.com/keygate/keygate/internal/strictyaml"
)

func ExampleDecode() {
	type limit struct {
		Name string `yaml:"name"`
		Rate int    `yaml:"rate"`
	}
	type file struct {
		Limits []limit `yaml:"limits" what:"limit"`
	}
	doc := "limits:\n  - name: a\n    rate: fast\n  - name: b\n    rat: 2\n"
	var f file
	ps := strictyaml.Decode([]byte(doc), &f, func(v any, key string, p strictyaml.Pos) {
		if _, ok := v.(*limit); ok && key == "rate" {
			fmt.Printf("a rate at %d:%d (failed: %v)\n", p.Line, p.Col, p.Failed)
		}
	})
	fmt.Println(ps.Err("limits.yaml"))
	// Output:
	// a rate at 3:11 (failed: true)
	// limits.yaml:3:11: rate in limit must be a whole number, not "fast"
	// limits.yaml:5:5: unknown field "rat" in limit (did you mean rate?)
}

package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/keygate/keygate/internal/suggest"
)

// configVar is one variable of Config, as serve -h lists it.
type configVar struct {
	Name, Default, Meaning string
}

// configVars lists Config's variables in struct order, from its tags and
// varMeanings.
func configVars() []configVar {
	var vars []configVar
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("env")
		if key == "" {
			continue
		}
		vars = append(vars, configVar{Name: envPrefix + key, Default: f.Tag.Get("envDefault"), Meaning: varMeanings[key]})
	}
	return vars
}

// printVars writes the variable list of serve -h: name, default, meaning
// (the README's text without its Markdown backquotes).
func printVars(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range configVars() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, strings.ReplaceAll(v.Meaning, "`", ""))
	}
	tw.Flush()
}

// unknownVars returns a warning for every KEYGATE_* variable of environ that
// keygate does not read, with the closest known name when one is near.
func unknownVars(environ []string) []string {
	var known []string
	for _, v := range configVars() {
		known = append(known, v.Name)
	}
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || slices.Contains(known, name) {
			continue
		}
		msg := fmt.Sprintf("%s is not a keygate variable and is ignored", name)
		if s := suggest.Closest(name, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		warnings = append(warnings, msg)
	}
	sort.Strings(warnings)
	return warnings
}

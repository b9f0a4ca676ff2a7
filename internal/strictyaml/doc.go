// Package strictyaml decodes one YAML document into Go structs strictly, the
// way a configuration file that guards something should be read: every
// syntax error, line out of step, unknown or repeated field, value of the
// wrong type, alias used inside what it names and alias bomb is reported at
// its line and column, all of them in one run, and nothing is guessed. It
// knows nothing of what the structs mean: the caller checks its own rules
// and reports their problems at the places Decode tells it of.
package strictyaml

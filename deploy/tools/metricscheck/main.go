// Command metricscheck checks that every metric the Grafana dashboard and the
// Prometheus alert rules query is one keygate exports, as read from a running
// keygate's /metrics (saved by imagecheck -metrics-out):
//
//	metricscheck -metrics metrics.txt -rules alerts.yaml -dashboard dashboard.json
//
// A histogram or summary family also exports name_bucket, name_sum and
// name_count. Expressions are read without a PromQL parser: string literals,
// label matchers, ranges, groupings and Grafana variables are removed, and
// every remaining identifier that is not a function, keyword or number is a
// metric name.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metricscheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metrics := fs.String("metrics", "", "a running keygate's /metrics, saved")
	rules := fs.String("rules", "", "Prometheus rules file")
	dashboard := fs.String("dashboard", "", "Grafana dashboard JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *metrics == "" || *rules == "" || *dashboard == "" {
		fmt.Fprintln(stderr, "metricscheck: -metrics, -rules and -dashboard are required")
		return 2
	}
	exported, err := readExposition(*metrics)
	if err != nil {
		fmt.Fprintln(stderr, "metricscheck:", err)
		return 2
	}
	var problems []string
	total := 0
	for _, src := range []struct {
		file string
		read func(string) ([]query, error)
	}{{*rules, ruleQueries}, {*dashboard, dashboardQueries}} {
		qs, err := src.read(src.file)
		if err != nil {
			fmt.Fprintln(stderr, "metricscheck:", err)
			return 2
		}
		if len(qs) == 0 {
			problems = append(problems, src.file+": no queries found")
		}
		for _, q := range qs {
			names := metricNames(q.expr)
			if len(names) == 0 {
				problems = append(problems, fmt.Sprintf("%s: %s: queries no metric", src.file, q.where))
			}
			for _, n := range names {
				total++
				if !exported.has(n) {
					problems = append(problems, fmt.Sprintf("%s: %s: %s is not a metric keygate exports", src.file, q.where, n))
				}
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "metricscheck: %d metric references, all exported by keygate\n", total)
	return 0
}

// exposition is the families of a /metrics page, with their types.
type exposition map[string]string

func readExposition(file string) (exposition, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e := exposition{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 4 && fields[0] == "#" && fields[1] == "TYPE" {
			e[fields[2]] = fields[3]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(e) == 0 {
		return nil, errors.New(file + ": no # TYPE lines: not a /metrics page")
	}
	return e, nil
}

func (e exposition) has(name string) bool {
	if _, ok := e[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if t := e[base]; t == "histogram" || (t == "summary" && suffix != "_bucket") {
				return true
			}
		}
	}
	return false
}

// query is one expression and where it was found.
type query struct{ where, expr string }

func ruleQueries(file string) ([]query, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Groups []struct {
			Name  string
			Rules []struct{ Alert, Record, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	var qs []query
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{g.Name + "/" + r.Alert + r.Record, r.Expr})
		}
	}
	return qs, nil
}

func dashboardQueries(file string) ([]query, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	type target struct{ RefID, Expr string }
	type panel struct {
		Title   string
		Targets []target
		Panels  []panel // rows
	}
	var d struct {
		Panels     []panel
		Templating struct {
			List []struct {
				Name  string
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				qs = append(qs, query{fmt.Sprintf("panel %q target %s", p.Title, t.RefID), t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query)
		}
		if m := labelValues.FindStringSubmatch(strings.TrimSpace(q.Query)); m != nil {
			qs = append(qs, query{"variable " + v.Name, m[1]})
		}
	}
	return qs, nil
}

var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
	ranges     = regexp.MustCompile(`\[[^\]]*\]`)
	groupings  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	variables  = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords   = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
		"bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"}
)

// metricNames lists the metric names an expression selects, sorted.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = matchers.ReplaceAllString(s, " ")
	s = ranges.ReplaceAllString(s, " ")
	s = groupings.ReplaceAllString(s, " ")
	s = variables.ReplaceAllString(s, " ")
	var names []string
	for _, m := range identifier.FindAllStringSubmatchIndex(s, -1) {
		if m[2] >= 0 { // a function call
			continue
		}
		if m[0] > 0 && (s[m[0]-1] >= '0' && s[m[0]-1] <= '9' || s[m[0]-1] == '.') {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		name := s[m[0]:m[1]]
		if slices.Contains(keywords, name) || slices.Contains(names, name) {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Command envcheck checks the KEYGATE_* variables of rendered Helm output and
// plain Kubernetes manifests against keygate's README:
//
//   - every KEYGATE_* variable set on any container is a row of README.md's
//     variable table, and none is set twice on one container;
//   - every keygate container sets each -require variable to something
//     non-empty (and not "false"); an entry A|B|C asks for one of A, B, C.
//     By default KEYGATE_UPSTREAM_URL and a token source: the tokens file,
//     the Redis token store, a JWT key or an introspection endpoint;
//   - a variable whose _FILE twin is in the table (KEYGATE_JWT_SECRET and
//     KEYGATE_JWT_SECRET_FILE) holds a credential: it is never set to a
//     literal value, only mounted and named by the _FILE variable (or taken
//     from a Secret with valueFrom);
//   - every KEYGATE_*_FILE path of a keygate container lies on a volume mount
//     whose ConfigMap or Secret provides it; when that object is in the same
//     file and -keygate names a keygate binary, `keygate check` validates the
//     policy and tokens files found there;
//   - with -cover, every variable of the README's table is set on a keygate
//     container in at least one file, so a new variable cannot be forgotten
//     by the chart and its examples. A credential variable counts as set
//     when its _FILE twin is, since the examples only ever mount
//     credentials.
//
// Usage:
//
//	envcheck -readme README.md [-require A,B] [-keygate ./keygate] [-cover] FILE...
//
// It prints one line per problem, naming the file, the object and the
// container, and exits 1 when there is any.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// defaultRequire is what every keygate container must set: the upstream, and
// a token source (keygate's tokenSourceConfigured), as the built-in policy
// has routes with auth: token.
const defaultRequire = "KEYGATE_UPSTREAM_URL," +
	"KEYGATE_TOKENS_FILE|KEYGATE_TOKENS_STORE|KEYGATE_JWT_SECRET|KEYGATE_JWT_SECRET_FILE|" +
	"KEYGATE_JWT_PUBLIC_KEYS_FILE|KEYGATE_JWKS_URL|KEYGATE_INTROSPECT_URL"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("envcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	readme := fs.String("readme", "README.md", "keygate's README, whose variable table is the reference")
	require := fs.String("require", defaultRequire, "comma-separated variables every keygate container must set; A|B means one of A and B")
	keygate := fs.String("keygate", "", "keygate binary; when set, its check command validates the policy and tokens files found in the manifests")
	cover := fs.Bool("cover", false, "require every variable of the README's table to be set on a keygate container in some file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "envcheck: no manifest files given")
		return 2
	}
	documented, err := readmeVariables(*readme)
	if err != nil {
		fmt.Fprintln(stderr, "envcheck:", err)
		return 2
	}
	c := checker{documented: documented, readme: *readme, keygate: *keygate, set: map[string]bool{}}
	if *require != "" {
		c.require = strings.Split(*require, ",")
	}
	for _, file := range fs.Args() {
		n, err := c.checkFile(file)
		if err != nil {
			c.problem("%v", err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %d keygate container(s)\n", file, n)
		c.keygates += n
	}
	if c.keygates == 0 {
		c.problem("no keygate container in any of the %d files: nothing was checked", fs.NArg())
	}
	if *cover {
		for _, name := range sortedKeys(documented) {
			if !c.set[name] && !(documented[name+"_FILE"] && c.set[name+"_FILE"]) {
				c.problem("%s is in %s's variable table but no keygate container in these files sets it: give the chart a value for it (deploy/helm/keygate/values.yaml, _container.tpl) and set it in a ci/*.yaml", name, *readme)
			}
		}
	}
	for _, p := range c.problems {
		fmt.Fprintln(stderr, p)
	}
	if len(c.problems) > 0 {
		fmt.Fprintf(stderr, "envcheck: %d problem(s)\n", len(c.problems))
		return 1
	}
	fmt.Fprintf(stdout, "envcheck: %d keygate container(s) in %d file(s): every KEYGATE_* variable is documented in %s\n", c.keygates, fs.NArg(), *readme)
	return 0
}

// readmeRow matches a row of the README's variable table:
// | `KEYGATE_X` | default | meaning |
var readmeRow = regexp.MustCompile("(?m)^\\| `(KEYGATE_[A-Z0-9_]+)` \\|")

// readmeVariables returns the variables of the README's table.
func readmeVariables(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	vars := map[string]bool{}
	for _, m := range readmeRow.FindAllStringSubmatch(string(data), -1) {
		vars[m[1]] = true
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("%s has no variable table rows (| `KEYGATE_...` | ... |)", file)
	}
	return vars, nil
}

type checker struct {
	documented map[string]bool
	readme     string
	require    []string
	keygate    string
	keygates   int
	set        map[string]bool // KEYGATE_* variables set on some keygate container
	problems   []string
}

func (c *checker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// checkFile checks every container of a file and returns how many are
// keygate's.
func (c *checker) checkFile(file string) (int, error) {
	m, err := readManifests(file)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range m.pods {
		for _, ctr := range slices.Concat(p.spec.InitContainers, p.spec.Containers) {
			where := fmt.Sprintf("%s: %s container %q", file, p.owner, ctr.Name)
			env := c.environment(where, m, ctr)
			if !isKeygate(ctr) {
				continue
			}
			n++
			for name := range env {
				c.set[name] = true
			}
			for _, req := range c.require {
				names := strings.Split(req, "|")
				if !slices.ContainsFunc(names, func(name string) bool { return isSet(env, name) }) {
					if len(names) == 1 {
						c.problem("%s: %s is not set; keygate needs it", where, req)
					} else {
						c.problem("%s: none of %s is set; keygate needs one", where, strings.Join(names, ", "))
					}
				}
			}
			for _, name := range sortedKeys(env) {
				if v := env[name]; c.documented[name+"_FILE"] && v.Value != "" {
					c.problem("%s: %s is set to a literal value, but it holds a credential: mount it from a Secret and set %s_FILE", where, name, name)
				}
			}
			c.checkFiles(where, m, p.spec, ctr, env)
		}
	}
	return n, nil
}

// isSet reports whether a variable is set to something: a non-empty value
// other than "false", or a valueFrom.
func isSet(env map[string]envVar, name string) bool {
	v, ok := env[name]
	return ok && (v.ValueFrom != nil || (v.Value != "" && v.Value != "false"))
}

// environment returns a container's variables (env, and envFrom of the
// ConfigMaps and Secrets in the same file), reporting undocumented KEYGATE_*
// names and names set twice.
func (c *checker) environment(where string, m *manifests, ctr container) map[string]envVar {
	env := map[string]envVar{}
	add := func(v envVar, from string) {
		if !strings.HasPrefix(v.Name, "KEYGATE_") {
			env[v.Name] = v
			return
		}
		if !c.documented[v.Name] {
			c.problem("%s: %s%s is not in %s's variable table: keygate does not read it (a typo, or a variable the README must document)", where, v.Name, from, c.readme)
		}
		if _, dup := env[v.Name]; dup {
			c.problem("%s: %s%s is set more than once", where, v.Name, from)
		}
		env[v.Name] = v
	}
	for _, ef := range ctr.EnvFrom {
		var data map[string]string
		var from string
		switch {
		case ef.ConfigMapRef != nil:
			data, from = m.configMaps[ef.ConfigMapRef.Name], " (envFrom ConfigMap "+ef.ConfigMapRef.Name+")"
		case ef.SecretRef != nil:
			data, from = m.secrets[ef.SecretRef.Name], " (envFrom Secret "+ef.SecretRef.Name+")"
		}
		for _, k := range sortedKeys(data) {
			add(envVar{Name: ef.Prefix + k, Value: data[k]}, from)
		}
	}
	for _, v := range ctr.Env {
		add(v, "")
	}
	return env
}

// checkFiles checks that every KEYGATE_*_FILE path is provided by a volume,
// and runs `keygate check` on the policy and tokens files it can read.
func (c *checker) checkFiles(where string, m *manifests, p podSpec, ctr container, env map[string]envVar) {
	contents := map[string]string{} // variable → file content, when in the manifests
	for _, name := range sortedKeys(env) {
		v := env[name]
		if !strings.HasPrefix(name, "KEYGATE_") || !strings.HasSuffix(name, "_FILE") || v.Value == "" {
			continue
		}
		src, err := resolveFile(p, ctr, v.Value)
		if err != nil {
			c.problem("%s: %s=%s: %v", where, name, v.Value, err)
			continue
		}
		objs := m.configMaps
		if src.kind == "Secret" {
			objs = m.secrets
		}
		data, ok := objs[src.name]
		if !ok {
			continue // an existing object, not in these manifests
		}
		content, ok := data[src.key]
		if !ok {
			c.problem("%s: %s=%s: %s %s has no key %q", where, name, v.Value, src.kind, src.name, src.key)
			continue
		}
		contents[name] = content
	}
	if c.keygate == "" {
		return
	}
	tokens, ok := contents["KEYGATE_TOKENS_FILE"]
	if !ok {
		return
	}
	if err := c.keygateCheck(contents["KEYGATE_POLICY_FILE"], tokens, literalEnv(env)); err != nil {
		c.problem("%s: keygate check: %v", where, err)
	}
}

// literalEnv returns the container's KEYGATE_* variables that have a literal
// value, as NAME=value, for `keygate check` to validate as serve would. The
// *_FILE variables are left out: they name paths inside the container, and
// the policy and tokens files they point at are passed by flag.
func literalEnv(env map[string]envVar) []string {
	var out []string
	for _, name := range sortedKeys(env) {
		v := env[name]
		if strings.HasPrefix(name, "KEYGATE_") && !strings.HasSuffix(name, "_FILE") && v.ValueFrom == nil {
			out = append(out, name+"="+v.Value)
		}
	}
	return out
}

// keygateCheck runs `keygate check` on a policy (empty: the built-in one) and
// a tokens file, with the container's literal KEYGATE_* variables (env) and
// none from this process.
func (c *checker) keygateCheck(policy, tokens string, env []string) error {
	dir, err := os.MkdirTemp("", "envcheck")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	args := []string{"check"}
	if policy != "" {
		p := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(p, []byte(policy), 0o600); err != nil {
			return err
		}
		args = append(args, "-policy", p)
	}
	t := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(t, []byte(tokens), 0o600); err != nil {
		return err
	}
	args = append(args, "-tokens", t)
	cmd := exec.Command(c.keygate, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

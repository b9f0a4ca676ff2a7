package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/internal/redisconn"
)

// TestRedisConfigProblemsNameVariables checks that redisconn.Config's problems
// reach the user naming the KEYGATE_REDIS_* variables, every field the
// message mentions included, one line per problem.
func TestRedisConfigProblemsNameVariables(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"two ways", []string{"KEYGATE_REDIS_URL=redis://h", "KEYGATE_REDIS_CLUSTER_ADDRS=h:1"},
			[]string{"KEYGATE_REDIS_URL: set together with KEYGATE_REDIS_CLUSTER_ADDRS: set only one"}},
		{"password twice", []string{"KEYGATE_REDIS_URL=redis://u:secret@h", "KEYGATE_REDIS_PASSWORD=other"},
			[]string{"KEYGATE_REDIS_PASSWORD: also set in KEYGATE_REDIS_URL; set it in one place"}},
		{"CA without TLS", []string{"KEYGATE_REDIS_URL=redis://h", "KEYGATE_REDIS_CA_FILE=ca.pem"},
			[]string{"KEYGATE_REDIS_CA_FILE: set but TLS is off; set KEYGATE_REDIS_TLS or use a rediss:// URL"}},
		{"cluster with DB and a bad address", []string{"KEYGATE_REDIS_CLUSTER_ADDRS=h:1,h", "KEYGATE_REDIS_DB=2"}, []string{
			"KEYGATE_REDIS_DB: must be 0 with KEYGATE_REDIS_CLUSTER_ADDRS: a Redis Cluster has database 0 only",
			`KEYGATE_REDIS_CLUSTER_ADDRS[1]: "h" must be host:port`,
		}},
		{"sentinel password alone", []string{"KEYGATE_REDIS_URL=redis://h", "KEYGATE_REDIS_SENTINEL_PASSWORD=p"},
			[]string{"KEYGATE_REDIS_SENTINEL_PASSWORD: set without KEYGATE_REDIS_SENTINEL_ADDRS"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(append(tc.env, "KEYGATE_UPSTREAM_URL=http://127.0.0.1:3000"), true)
			if err == nil {
				t.Fatalf("loadConfig(%q) = nil error, want %q", tc.env, tc.want)
			}
			if diff := cmp.Diff(tc.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("loadConfig(%q) error lines (-want +got):\n%s", tc.env, diff)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("loadConfig(%q) error = %q, reveals the password", tc.env, err)
			}
		})
	}
}

// TestRedisVarsMatchConfig checks redisVars against the code it describes:
// each redisconn.Config field that a KEYGATE_REDIS_* variable sets is in it,
// under that variable, and nothing else is. It sets one REDIS_* field of
// Config at a time and sees which redisconn.Config field redisConfig fills.
func TestRedisVarsMatchConfig(t *testing.T) {
	var c Config
	cv := reflect.ValueOf(&c).Elem()
	for i := range cv.NumField() {
		f := cv.Type().Field(i)
		if !strings.HasPrefix(f.Tag.Get("env"), "REDIS_") {
			continue
		}
		switch v := cv.Field(i); v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"x"}))
		case reflect.Int:
			v.SetInt(1)
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int64: // durations: no redisconn.Config field comes from one
			v.SetInt(1)
		default:
			t.Fatalf("Config.%s: kind %s not handled by this test", f.Name, v.Kind())
		}
		rc := reflect.ValueOf(c.redisConfig())
		var set []string
		for j := range rc.NumField() {
			if !rc.Field(j).IsZero() {
				set = append(set, rc.Type().Field(j).Name)
			}
		}
		mapped := slices.Contains(mapValues(redisVars), f.Tag.Get("env"))
		if len(set) > 1 || (len(set) == 1 && redisVars[set[0]] != f.Tag.Get("env")) || (len(set) == 0 && mapped) {
			t.Errorf("Config.%s (%s) sets redisconn.Config fields %v, but redisVars maps it from %v", f.Name, f.Tag.Get("env"), set, fieldsOf(f.Tag.Get("env")))
		}
		cv.Field(i).SetZero()
	}
	for field := range redisVars {
		if _, ok := reflect.TypeFor[redisconn.Config]().FieldByName(field); !ok {
			t.Errorf("redisVars names redisconn.Config.%s, which does not exist", field)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func fieldsOf(envVar string) []string {
	var out []string
	for k, v := range redisVars {
		if v == envVar {
			out = append(out, k)
		}
	}
	return out
}

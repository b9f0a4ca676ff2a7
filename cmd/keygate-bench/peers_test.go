package main

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPeersKey(t *testing.T) {
	base := peersKey("go1.26.8", []byte("module m\n"), []byte("a v1 h1:x\n"), []string{"-trimpath"})
	if len(base) != 16 {
		t.Fatalf("peersKey() = %q, want 16 hex digits", base)
	}
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"Go version", peersKey("go1.27.0", []byte("module m\n"), []byte("a v1 h1:x\n"), []string{"-trimpath"})},
		{"go.mod", peersKey("go1.26.8", []byte("module m\ngo 1.27\n"), []byte("a v1 h1:x\n"), []string{"-trimpath"})},
		{"go.sum", peersKey("go1.26.8", []byte("module m\n"), []byte("a v2 h1:y\n"), []string{"-trimpath"})},
		{"flags", peersKey("go1.26.8", []byte("module m\n"), []byte("a v1 h1:x\n"), []string{"-trimpath", "-race"})},
		{"go.mod and go.sum not just concatenated", peersKey("go1.26.8", []byte("module m\na"), []byte(" v1 h1:x\n"), []string{"-trimpath"})},
	} {
		if tc.key == base {
			t.Errorf("peersKey with another %s = %q, the same key", tc.name, tc.key)
		}
	}
	if again := peersKey("go1.26.8", []byte("module m\n"), []byte("a v1 h1:x\n"), []string{"-trimpath"}); again != base {
		t.Errorf("peersKey() = %q then %q, want the same", base, again)
	}
}

// TestCaddyConfig checks what the Caddy target is: one HTTP/1.1 server on
// the loopback address, reverse_proxy with a keep-alive pool, and nothing
// that would cost it work the other proxies do not do (admin API, saved
// config, automatic HTTPS, access log).
func TestCaddyConfig(t *testing.T) {
	b, err := caddyConfig("127.0.0.1:4000", "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("caddyConfig() is not JSON: %v", err)
	}
	var want any
	if err := json.Unmarshal([]byte(`{
  "admin": {"disabled": true, "config": {"persist": false}},
  "logging": {"logs": {"default": {"level": "ERROR"}}},
  "apps": {"http": {"servers": {"bench": {
    "listen": ["127.0.0.1:4000"],
    "protocols": ["h1"],
    "automatic_https": {"disable": true},
    "routes": [{"handle": [{
      "handler": "reverse_proxy",
      "upstreams": [{"dial": "127.0.0.1:5000"}],
      "transport": {"protocol": "http", "keep_alive": {"enabled": true, "max_idle_conns": 1024, "max_idle_conns_per_host": 1024}}
    }]}]
  }}}}
}`), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("caddyConfig() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFlagsTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wants   []string
		not     []string
		wantErr bool
	}{
		{"defaults", nil, []string{"direct", "reverseproxy-pooled", "caddy", "nginx", "keygate", "keygate-warn"}, []string{"reverseproxy-default", "keygate-compare"}, false},
		{"all", []string{"-targets", "all"}, []string{"reverseproxy-default", "caddy", "keygate-compare"}, nil, false},
		{"compare adds its target", []string{"-targets", "keygate", "-compare", "/bin/old"}, []string{"keygate", "keygate-compare"}, []string{"direct"}, false},
		{"the old names are gone", []string{"-targets", "bare"}, nil, nil, true},
		{"unknown loader", []string{"-loader", "ab"}, nil, nil, true},
		{"fewer connections than threads", []string{"-c", "1", "-threads", "2"}, nil, nil, true},
		{"stray argument", []string{"now"}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tc.args, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			for _, n := range tc.wants {
				if !o.wants(n) {
					t.Errorf("parseFlags(%q).wants(%s) = false, want true", tc.args, n)
				}
			}
			for _, n := range tc.not {
				if o.wants(n) {
					t.Errorf("parseFlags(%q).wants(%s) = true, want false", tc.args, n)
				}
			}
		})
	}
}

func TestBuildError(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"go: downloading github.com/caddyserver/caddy/v2 v2.11.9\ngo: github.com/caddyserver/caddy/v2@v2.11.9: module lookup disabled by GOPROXY=off\n",
			"go: github.com/caddyserver/caddy/v2@v2.11.9: module lookup disabled by GOPROXY=off"},
		{"a\nb\nc\nd\ne\nf\ng", "c\nd\ne\nf\ng"},
		{"", ""},
	} {
		if got := buildError([]byte(tc.out)); got != tc.want {
			t.Errorf("buildError(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

package main

import (
	"archive/tar"
	"strings"
	"testing"
)

// The checks must refuse what they exist to catch; each case breaks one
// property of a good image or process.

func TestCheckBuildSettings(t *testing.T) {
	good := "build\t-tags=timetzdata\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=0\nbuild\tGOOS=linux\n"
	tests := []struct {
		name, out, want string
	}{
		{"good", good, ""},
		{"cgo", strings.Replace(good, "CGO_ENABLED=0", "CGO_ENABLED=1", 1), "CGO_ENABLED"},
		{"no trimpath", strings.Replace(good, "build\t-trimpath=true\n", "", 1), "-trimpath"},
		{"no tzdata", strings.Replace(good, "timetzdata", "netgo", 1), "timetzdata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBuildSettings(parseBuildInfo(tt.out), "v1")
			if got := errText(err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("checkBuildSettings(%s) = %q, want an error naming %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	good := func() imageConfig {
		return imageConfig{User: "65532:65532", Entrypoint: []string{"/keygate"}, Cmd: []string{"serve"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}}}
	}
	tests := []struct {
		name   string
		change func(*imageConfig)
		want   string
	}{
		{"good", func(*imageConfig) {}, ""},
		{"named user", func(c *imageConfig) { c.User = "nonroot" }, "User"},
		{"root", func(c *imageConfig) { c.User = "" }, "User"},
		{"shell entrypoint", func(c *imageConfig) { c.Entrypoint = []string{"/bin/sh", "-c"} }, "Entrypoint"},
		{"extra port", func(c *imageConfig) { c.ExposedPorts["22/tcp"] = struct{}{} }, "ExposedPorts"},
		{"baked-in config", func(c *imageConfig) { c.Env = []string{"KEYGATE_UPSTREAM_URL=http://x"} }, "KEYGATE_UPSTREAM_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			if got := errText(checkConfig(c)); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("checkConfig(%s) = %q, want an error naming %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestCheckFiles(t *testing.T) {
	good := func() map[string]*tar.Header {
		m := map[string]*tar.Header{}
		for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs"} {
			m[d] = &tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}
		}
		for f, mode := range imageFiles {
			m[f] = &tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: int64(mode)}
		}
		return m
	}
	tests := []struct {
		name   string
		change func(map[string]*tar.Header)
		want   string
	}{
		{"good", func(map[string]*tar.Header) {}, ""},
		{"a shell", func(m map[string]*tar.Header) {
			m["bin/sh"] = &tar.Header{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o755}
		}, "/bin/sh"},
		{"a tmp dir", func(m map[string]*tar.Header) {
			m["tmp"] = &tar.Header{Name: "tmp", Typeflag: tar.TypeDir, Mode: 0o1777}
		}, "/tmp"},
		{"writable binary", func(m map[string]*tar.Header) { m["keygate"].Mode = 0o755 }, "/keygate mode"},
		{"owned by keygate", func(m map[string]*tar.Header) { m["etc/passwd"].Uid = 65532 }, "owned by 65532"},
		{"writable dir", func(m map[string]*tar.Header) { m["etc"].Mode = 0o777 }, "/etc is writable"},
		{"no CA bundle", func(m map[string]*tar.Header) { delete(m, "etc/ssl/certs/ca-certificates.crt") }, "missing"},
		{"a symlink", func(m map[string]*tar.Header) {
			m["keygate"] = &tar.Header{Name: "keygate", Typeflag: tar.TypeSymlink, Linkname: "/bin/sh"}
		}, "/keygate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.change(m)
			if got := errText(checkFiles(m)); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("checkFiles(%s) = %q, want an error naming %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestProcCheck(t *testing.T) {
	const status = "Name:\tkeygate\nUid:\t65532\t65532\t65532\t65532\nGid:\t65532\t65532\t65532\t65532\n" +
		"Groups:\t\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
	const mounts = "600 500 0:50 / / ro,relatime - overlay overlay rw,lowerdir=x\n601 600 0:51 / /proc rw - proc proc rw\n"
	tests := []struct {
		name, status, mounts, want string
	}{
		{"good", status, mounts, ""},
		{"root", strings.Replace(status, "Uid:\t65532", "Uid:\t0", 1), mounts, "Uid"},
		{"a capability", strings.Replace(status, "CapEff:\t0000000000000000", "CapEff:\t0000000000000400", 1), mounts, "CapEff"},
		{"may escalate", strings.Replace(status, "NoNewPrivs:\t1", "NoNewPrivs:\t0", 1), mounts, "NoNewPrivs"},
		{"no seccomp filter", strings.Replace(status, "Seccomp:\t2", "Seccomp:\t0", 1), mounts, "Seccomp"},
		{"writable root", status, strings.Replace(mounts, " ro,relatime", " rw,relatime", 1), "read-write"},
		{"root remounted writable", status, mounts + "700 600 0:52 / / rw - tmpfs tmpfs rw\n", "read-write"},
		{"no root mount", status, "601 600 0:51 / /proc rw - proc proc rw\n", "no mount on /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := parseProc(tt.status, tt.mounts)
			if err == nil {
				err = ps.check()
			}
			if got := errText(err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("check(%s) = %q, want an error naming %q", tt.name, got, tt.want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMapIDs(t *testing.T) {
	tests := []struct {
		name  string
		ids   []string
		idMap string
		want  string
	}{
		{"rootful", []string{"65532", "65532"}, "         0          0 4294967295\n", "65532 65532"},
		{"rootless", []string{"165531", "1000"}, "0 1000 1\n1 100000 65536\n", "65532 0"},
		{"outside the map", []string{"5"}, "0 1000 1\n", "unmapped"},
	}
	for _, tt := range tests {
		got, err := mapIDs(tt.ids, tt.idMap)
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("mapIDs(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

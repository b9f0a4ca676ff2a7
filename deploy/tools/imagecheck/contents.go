package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// parseBuildInfo reads the "build" lines of `go version -m`.
func parseBuildInfo(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "build" {
			continue
		}
		k, v, _ := strings.Cut(strings.Join(f[1:], " "), "=")
		m[k] = v
	}
	return m
}

// checkBuildSettings wants a static, path-free Linux build with the time
// zone database inside. (-ldflags is not recorded with -trimpath: the
// version is checked by running the binary.)
func checkBuildSettings(s map[string]string, version string) error {
	var errs []error
	want := map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux"}
	for _, k := range []string{"CGO_ENABLED", "-trimpath", "GOOS"} {
		if s[k] != want[k] {
			errs = append(errs, fmt.Errorf("build setting %s = %q, want %q", k, s[k], want[k]))
		}
	}
	if !slices.Contains(strings.Split(s["-tags"], ","), "timetzdata") {
		errs = append(errs, fmt.Errorf("build tags %q lack timetzdata: the image has no /usr/share/zoneinfo", s["-tags"]))
	}
	return errors.Join(errs...)
}

// imageConfig is the part of the image's config the chart relies on.
type imageConfig struct {
	User         string              `json:"User"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Env          []string            `json:"Env"`
}

func checkConfig(c imageConfig) error {
	var errs []error
	if c.User != "65532:65532" {
		errs = append(errs, fmt.Errorf("User = %q, want 65532:65532", c.User))
	}
	if !slices.Equal(c.Entrypoint, []string{"/keygate"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		errs = append(errs, fmt.Errorf("Entrypoint, Cmd = %q, %q, want [/keygate], [serve]", c.Entrypoint, c.Cmd))
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	if !slices.Equal(ports, []string{"8080/tcp", "9090/tcp"}) {
		errs = append(errs, fmt.Errorf("ExposedPorts = %q, want 8080/tcp 9090/tcp", ports))
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e, "KEYGATE_") {
			errs = append(errs, fmt.Errorf("Env sets %s: configuration belongs to the deployment", e))
		}
	}
	return errors.Join(errs...)
}

// imageFiles are the only files the image may hold, with their modes: no
// shell, nothing writable, owned by root.
var imageFiles = map[string]fs.FileMode{
	"keygate":                           0o555,
	"etc/passwd":                        0o444,
	"etc/group":                         0o444,
	"etc/ssl/certs/ca-certificates.crt": 0o444,
}

// layerStats is what an image archive holds.
type layerStats struct {
	layers           int
	size, compressed int64 // bytes of the layer tars, and gzipped as a registry stores them
	files            map[string]*tar.Header
}

// readArchive reads an image saved by `podman save` or `docker save`
// (manifest.json names the layer tars).
func readArchive(file string) (*layerStats, error) {
	dir, err := os.MkdirTemp("", "imagecheck-archive")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := untar(file, dir); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(raw, &manifest); err != nil || len(manifest) != 1 {
		return nil, fmt.Errorf("manifest.json: want one image (%v)", err)
	}
	st := &layerStats{layers: len(manifest[0].Layers), files: map[string]*tar.Header{}}
	for _, l := range manifest[0].Layers {
		if !filepath.IsLocal(l) {
			return nil, fmt.Errorf("manifest.json: layer path %q", l)
		}
		if err := st.addLayer(filepath.Join(dir, l)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (st *layerStats) addLayer(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st.size += fi.Size()
	var cw countWriter
	zw := gzip.NewWriter(&cw)
	tr := tar.NewReader(io.TeeReader(f, zw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %v", filepath.Base(file), err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		st.files[name] = h
	}
	if _, err := io.Copy(zw, f); err != nil { // the tar's padding
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	st.compressed += cw.n
	return nil
}

// checkFiles compares the image's files with imageFiles: directories are
// allowed only as their parents.
func checkFiles(files map[string]*tar.Header) error {
	dirs := map[string]bool{}
	for f := range imageFiles {
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var errs []error
	for name, h := range files {
		if name == "" {
			continue
		}
		mode := h.FileInfo().Mode()
		switch {
		case h.Typeflag == tar.TypeDir && dirs[name]:
			if mode.Perm()&0o022 != 0 {
				errs = append(errs, fmt.Errorf("/%s is writable by group or others (%v)", name, mode))
			}
		case h.Typeflag == tar.TypeReg && imageFiles[name] != 0:
			if mode.Perm() != imageFiles[name] {
				errs = append(errs, fmt.Errorf("/%s mode %v, want %v", name, mode.Perm(), imageFiles[name]))
			}
		default:
			errs = append(errs, fmt.Errorf("/%s (%v) is not on the image's list of files", name, mode))
			continue
		}
		if h.Uid != 0 || h.Gid != 0 {
			errs = append(errs, fmt.Errorf("/%s is owned by %d:%d, want 0:0 (keygate must not own its files)", name, h.Uid, h.Gid))
		}
	}
	for f := range imageFiles {
		if _, ok := files[f]; !ok {
			errs = append(errs, fmt.Errorf("/%s is missing", f))
		}
	}
	return errors.Join(errs...)
}

// imageContents checks the image's config, its files and its size.
func (c *checker) imageContents(ctx context.Context) error {
	raw, err := c.eng.inspect(ctx, c.o.image, "{{json .Config}}")
	if err != nil {
		return err
	}
	var cfg imageConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fmt.Errorf("image config: %v", err)
	}
	errs := []error{checkConfig(cfg)}
	dir, err := os.MkdirTemp("", "imagecheck")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	archive := filepath.Join(dir, "image.tar")
	if _, err := c.eng.cmd(ctx, "save", "-o", archive, c.o.image); err != nil {
		return err
	}
	st, err := readArchive(archive)
	if err != nil {
		return err
	}
	errs = append(errs, checkFiles(st.files))
	c.logf("%d layer(s), %d files; %.2f MiB uncompressed, %.2f MiB compressed (budget: compressed < %.2f MiB)",
		st.layers, len(st.files), mib(st.size), mib(st.compressed), mib(c.o.maxBytes))
	if st.compressed >= c.o.maxBytes {
		errs = append(errs, fmt.Errorf("compressed size %d bytes is over the budget of %d", st.compressed, c.o.maxBytes))
	}
	return errors.Join(errs...)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// untar unpacks a saved image's regular files and directories into dir.
func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("%s: entry %q leaves the archive", file, h.Name)
		}
		target := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

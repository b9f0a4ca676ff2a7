package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGoodChart(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(doc, []byte("# Values\n"+beginMarker+"\nold\n"+endMarker+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-chart", "testdata/good", "-doc", doc}, &stdout, &stderr); code != 1 {
		t.Errorf("check of a stale table = %d, want 1; stderr:\n%s", code, &stderr)
	}
	if code := run([]string{"-chart", "testdata/good", "-doc", doc, "-update"}, &stdout, &stderr); code != 0 {
		t.Fatalf("update = %d, want 0; stderr:\n%s", code, &stderr)
	}
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Values\n" + beginMarker + "\n" +
		"| Key | Type | Default | Description |\n|---|---|---|---|\n" +
		"| `mode` | string | `\"a\"` | Mode. |\n" +
		"| `image.repository` | string | `\"r\"` | Repository. |\n" +
		"| `image.tag` | string | `\"\"` | Tag; `a\\|b`. Second line. |\n" +
		"| `resources` | object | (small) | Resources. |\n" +
		endMarker + "\nafter\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("updated README (-want +got):\n%s", diff)
	}
	stderr.Reset()
	if code := run([]string{"-chart", "testdata/good", "-doc", doc}, &stdout, &stderr); code != 0 {
		t.Errorf("check of a fresh table = %d, want 0; stderr:\n%s", code, &stderr)
	}
}

func TestBadChart(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-chart", "testdata/bad", "-doc", "/nonexistent"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("run = %d, want 1; stderr:\n%s", code, &stderr)
	}
	for _, want := range []string{
		"values.yaml:1: mode has no `# --` comment",
		"values.yaml:5: image.tag has no `# --` comment",
		"values.yaml:7: mdoe is not a property of values.schema.json",
		"image.digest is in values.schema.json but not in values.yaml",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	}
}

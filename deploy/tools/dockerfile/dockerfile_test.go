package dockerfile

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerfilePath lets a broken copy be checked, to see the checks fail.
var dockerfilePath = flag.String("dockerfile", "../../Dockerfile", "Dockerfile to check")

// offlineImages answers BuildKit's base-image look-ups with an empty linux
// image config, so the checks run without a registry.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	cfg, err := json.Marshal(ocispecs.Image{Platform: p})
	return ref, digest.FromBytes(cfg), cfg, err
}

// TestBuildChecks runs BuildKit's build checks over every stage and fails on
// any warning, as `docker build --check` with `check=error=true` would.
func TestBuildChecks(t *testing.T) {
	dt, err := os.ReadFile(*dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	smap := llb.NewSourceMap(&src, "Dockerfile", "Dockerfile", dt)
	smap.Definition = def
	linux := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	res, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{
		Config:         dockerui.Config{BuildPlatforms: []ocispecs.Platform{linux}},
		SourceMap:      smap,
		TargetPlatform: &linux,
		MetaResolver:   offlineImages{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Errorf("Dockerfile does not convert: %s", res.Error.Message)
	}
	for _, w := range res.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		t.Errorf("Dockerfile:%d: %s: %s (%s)", line, w.RuleName, w.Detail, w.URL)
	}
}

// TestFinalImage checks the properties the Helm chart and manifests rely on:
// one stage on the empty base (nothing to pull, nothing run at build time),
// the platform's prepared root copied whole, a numeric user, exec-form
// entrypoint, the two ports, no HEALTHCHECK. Only the instructions listed
// here may appear.
func TestFinalImage(t *testing.T) {
	f, err := os.Open(*dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 1 {
		t.Fatalf("stages = %d, want 1: the binary is built by deploy/image/build.sh, not in a build stage", len(stages))
	}
	final := stages[0]
	if final.BaseName != "scratch" {
		t.Errorf("FROM = %q, want scratch (no registry is reachable where the image is built)", final.BaseName)
	}
	var user string
	var entrypoint, cmd, copies []string
	var entrypointShell, cmdShell bool
	var ports []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint, entrypointShell = c.CmdLine, c.PrependShell
		case *instructions.CmdCommand:
			cmd, cmdShell = c.CmdLine, c.PrependShell
		case *instructions.ExposeCommand:
			ports = append(ports, c.Ports...)
		case *instructions.CopyCommand:
			if c.From != "" || c.Chown != "" || c.Chmod != "" {
				t.Errorf("COPY at line %d has --from, --chown or --chmod; the prepared root carries its own modes", c.Location()[0].Start.Line)
			}
			copies = append(copies, strings.Join(append(append([]string{}, c.SourcePaths...), c.DestPath), " "))
		case *instructions.ArgCommand, *instructions.LabelCommand:
		default:
			t.Errorf("Dockerfile:%d: %s is not on the list of instructions the image may use (ARG, COPY, LABEL, USER, EXPOSE, ENTRYPOINT, CMD)", c.Location()[0].Start.Line, c.Name())
		}
	}
	if want := []string{"${TARGETOS}-${TARGETARCH}/ /"}; !slices.Equal(copies, want) {
		t.Errorf("COPY = %q, want %q (the root deploy/image/build.sh prepares per platform)", copies, want)
	}
	if user != "65532:65532" {
		t.Errorf("final USER = %q, want numeric 65532:65532 (runAsNonRoot can only verify a numeric user)", user)
	}
	if entrypointShell || !slices.Equal(entrypoint, []string{"/keygate"}) {
		t.Errorf("ENTRYPOINT = %q (shell form %v), want exec form [\"/keygate\"]", entrypoint, entrypointShell)
	}
	if cmdShell || !slices.Equal(cmd, []string{"serve"}) {
		t.Errorf("CMD = %q (shell form %v), want exec form [\"serve\"]", cmd, cmdShell)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []string{"8080", "9090"}) {
		t.Errorf("EXPOSE = %q, want 8080 9090", ports)
	}
}

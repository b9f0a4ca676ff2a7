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

// TestFinalImage checks the properties the Helm chart and manifests rely on.
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
	if len(stages) < 2 {
		t.Fatalf("stages = %d, want a build stage and a final stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	var buildCmd string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			buildCmd += strings.Join(r.CmdLine, " ") + "\n"
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/keygate"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("build stage RUN lacks %q:\n%s", want, buildCmd)
		}
	}

	if want := "gcr.io/distroless/static-debian12:nonroot"; final.BaseName != want {
		t.Errorf("final FROM = %q, want %q", final.BaseName, want)
	}
	var user string
	var entrypoint, cmd []string
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
		case *instructions.HealthCheckCommand:
			t.Errorf("final stage has HEALTHCHECK at line %d; probes belong to the orchestrator", c.Location()[0].Start.Line)
		}
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

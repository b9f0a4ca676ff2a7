// Command containermatch checks that hand-written manifests carry the same
// keygate container as the chart's named templates render (the sidecar
// examples copy it, since plain manifests and kustomize cannot include a
// template):
//
//	containermatch -want rendered-by-the-chart.yaml FILE...
//
// The first pod of -want with a container named keygate is the reference;
// every pod of each FILE with such a container must match it: the container
// whole (image, args, ports, env, probes, lifecycle, resources, security
// context), except that volume mounts are compared by mount path and
// read-only flag (volume names are the manifest's own), and the pod's
// terminationGracePeriodSeconds, enableServiceLinks and security context.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("containermatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wantFile := fs.String("want", "", "manifests rendered from the chart's named templates")
	name := fs.String("container", "keygate", "container to compare")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *wantFile == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: containermatch -want FILE FILE...")
		return 2
	}
	wants, err := podsWith(*wantFile, *name)
	if err != nil || len(wants) == 0 {
		fmt.Fprintf(stderr, "containermatch: %s: no pod with a %s container (%v)\n", *wantFile, *name, err)
		return 2
	}
	want := wants[0]
	failed := false
	for _, file := range fs.Args() {
		got, err := podsWith(file, *name)
		if err != nil {
			fmt.Fprintf(stderr, "containermatch: %s: %v\n", file, err)
			return 2
		}
		if len(got) == 0 {
			fmt.Fprintf(stderr, "%s: no pod with a %s container\n", file, *name)
			failed = true
		}
		for _, g := range got {
			if diff := cmp.Diff(want.view, g.view); diff != "" {
				fmt.Fprintf(stderr, "%s: %s differs from the chart's (%s) (-chart +file):\n%s", file, g.where, want.where, diff)
				failed = true
			}
		}
	}
	if failed {
		return 1
	}
	fmt.Fprintf(stdout, "containermatch: the %s container of %d file(s) matches the chart's\n", *name, fs.NArg())
	return 0
}

// view is what must match.
type view struct {
	Container          corev1.Container
	Mounts             []mount
	GracePeriodSeconds *int64
	EnableServiceLinks *bool
	PodSecurity        *corev1.PodSecurityContext
}

type mount struct {
	Path     string
	ReadOnly bool
}

type found struct {
	where string
	view  view
}

// podsWith returns the pods of file (Deployments and Pods) that have the
// named container.
func podsWith(file, name string) ([]found, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []found
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				corev1.PodSpec
				Template struct {
					Spec corev1.PodSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
		spec := obj.Spec.Template.Spec
		if obj.Kind == "Pod" {
			spec = obj.Spec.PodSpec
		}
		for _, c := range spec.Containers {
			if c.Name != name {
				continue
			}
			v := view{Container: c, GracePeriodSeconds: spec.TerminationGracePeriodSeconds,
				EnableServiceLinks: spec.EnableServiceLinks, PodSecurity: spec.SecurityContext}
			for _, m := range c.VolumeMounts {
				v.Mounts = append(v.Mounts, mount{m.MountPath, m.ReadOnly})
			}
			sort.Slice(v.Mounts, func(i, j int) bool { return v.Mounts[i].Path < v.Mounts[j].Path })
			v.Container.VolumeMounts = nil
			out = append(out, found{obj.Kind + "/" + obj.Metadata.Name, v})
		}
	}
}

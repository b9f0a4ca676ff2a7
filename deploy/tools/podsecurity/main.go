// Command podsecurity evaluates every pod in Kubernetes manifests with the
// official Pod Security Standards evaluator (k8s.io/pod-security-admission,
// the code of the PodSecurity admission controller) at the "restricted"
// level, latest version:
//
//	podsecurity FILE...
//
// Pods, and the pod templates of Deployments, StatefulSets, DaemonSets,
// ReplicaSets, Jobs and CronJobs, are checked; other kinds are skipped. It
// prints each violation as file: Kind/name: check: reason (detail) and exits
// 1 if there is any.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: podsecurity FILE...")
		return 2
	}
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "podsecurity:", err)
		return 2
	}
	level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	pods, violations := 0, 0
	for _, file := range files {
		found, err := readPods(file)
		if err != nil {
			fmt.Fprintf(stderr, "podsecurity: %s: %v\n", file, err)
			return 2
		}
		for _, p := range found {
			pods++
			for _, r := range eval.EvaluatePod(level, &p.meta, &p.spec) {
				if !r.Allowed {
					violations++
					fmt.Fprintf(stderr, "%s: %s: %s (%s)\n", file, p.name, r.ForbiddenReason, r.ForbiddenDetail)
				}
			}
		}
	}
	if violations > 0 {
		fmt.Fprintf(stderr, "podsecurity: %d violation(s) of Pod Security %q\n", violations, level.String())
		return 1
	}
	fmt.Fprintf(stdout, "podsecurity: %d pod(s) in %d file(s) pass Pod Security %q\n", pods, len(files), level.String())
	return 0
}

// pod is one pod spec found in a manifest.
type pod struct {
	name string // Kind/name
	meta metav1.ObjectMeta
	spec corev1.PodSpec
}

type template struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     corev1.PodSpec    `json:"spec"`
}

// readPods reads every YAML document of file and returns its pods.
func readPods(file string) ([]pod, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var pods []pod
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return pods, nil
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, err
		}
		name := head.Kind + "/" + head.Metadata.Name
		var t template
		switch head.Kind {
		case "Pod":
			var p struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Spec     corev1.PodSpec    `json:"spec"`
			}
			if err := yaml.UnmarshalStrict(doc, &p); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			t = template{p.Metadata, p.Spec}
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			var w struct {
				Spec struct {
					Template template `json:"template"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(doc, &w); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			t = w.Spec.Template
		case "CronJob":
			var w struct {
				Spec struct {
					JobTemplate struct {
						Spec struct {
							Template template `json:"template"`
						} `json:"spec"`
					} `json:"jobTemplate"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(doc, &w); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			t = w.Spec.JobTemplate.Spec.Template
		default:
			continue
		}
		if len(t.Spec.Containers) == 0 {
			return nil, fmt.Errorf("%s: no containers in its pod spec", name)
		}
		pods = append(pods, pod{name: name, meta: t.Metadata, spec: t.Spec})
	}
}

package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// object is the part of a Kubernetes object envcheck reads.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`       // ConfigMap, Secret (base64)
	StringData map[string]string `yaml:"stringData"` // Secret
	Spec       struct {
		podSpec     `yaml:",inline"` // Pod
		Template    podTemplate      `yaml:"template"` // Deployment, StatefulSet, DaemonSet, ReplicaSet, Job
		JobTemplate struct {         // CronJob
			Spec struct {
				Template podTemplate `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type podTemplate struct {
	Spec podSpec `yaml:"spec"`
}

type podSpec struct {
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []volume    `yaml:"volumes"`
}

type container struct {
	Name         string        `yaml:"name"`
	Image        string        `yaml:"image"`
	Env          []envVar      `yaml:"env"`
	EnvFrom      []envFrom     `yaml:"envFrom"`
	VolumeMounts []volumeMount `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string         `yaml:"name"`
	Value     string         `yaml:"value"`
	ValueFrom map[string]any `yaml:"valueFrom"`
}

type envFrom struct {
	Prefix       string `yaml:"prefix"`
	ConfigMapRef *struct {
		Name string `yaml:"name"`
	} `yaml:"configMapRef"`
	SecretRef *struct {
		Name string `yaml:"name"`
	} `yaml:"secretRef"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
}

type volume struct {
	Name      string     `yaml:"name"`
	ConfigMap *volSource `yaml:"configMap"`
	Secret    *volSource `yaml:"secret"`
}

// volSource is a configMap or secret volume; a ConfigMap names itself with
// name, a Secret with secretName.
type volSource struct {
	Name       string `yaml:"name"`
	SecretName string `yaml:"secretName"`
	Items      []struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	} `yaml:"items"`
}

// pod is one pod spec found in a file, with the name of what holds it.
type pod struct {
	owner string // "Deployment/keygate"
	spec  podSpec
}

// manifests is what one file holds: the pods, and the ConfigMaps and Secrets
// by name, with their data decoded.
type manifests struct {
	pods       []pod
	configMaps map[string]map[string]string
	secrets    map[string]map[string]string
}

// readManifests decodes every YAML document of a file.
func readManifests(file string) (*manifests, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &manifests{configMaps: map[string]map[string]string{}, secrets: map[string]map[string]string{}}
	dec := yaml.NewDecoder(f)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		owner := o.Kind + "/" + o.Metadata.Name
		switch o.Kind {
		case "ConfigMap":
			m.configMaps[o.Metadata.Name] = o.Data
		case "Secret":
			data := map[string]string{}
			for k, v := range o.Data {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: data.%s is not base64: %w", file, owner, k, err)
				}
				data[k] = string(b)
			}
			for k, v := range o.StringData {
				data[k] = v
			}
			m.secrets[o.Metadata.Name] = data
		case "Pod":
			m.pods = append(m.pods, pod{owner, o.Spec.podSpec})
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			m.pods = append(m.pods, pod{owner, o.Spec.Template.Spec})
		case "CronJob":
			m.pods = append(m.pods, pod{owner, o.Spec.JobTemplate.Spec.Template.Spec})
		}
	}
}

// isKeygate tells keygate's container from the others: its image is
// .../keygate[:tag][@digest], or it is named keygate.
func isKeygate(c container) bool {
	repo, _, _ := strings.Cut(c.Image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "keygate" || c.Name == "keygate"
}

// fileSource says where a file path in a container comes from: the volume's
// ConfigMap or Secret and the key in it.
type fileSource struct {
	kind, name, key string // kind "ConfigMap" or "Secret"
}

// resolveFile maps a path in container c of pod p to the ConfigMap or Secret
// key that provides it. An error says why the path is provided by none.
func resolveFile(p podSpec, c container, file string) (fileSource, error) {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if vm.SubPath != "" {
			if file != vm.MountPath {
				continue
			}
			rel, ok = vm.SubPath, true
		}
		if !ok {
			continue
		}
		for _, v := range p.Volumes {
			if v.Name != vm.Name {
				continue
			}
			src, kind := v.ConfigMap, "ConfigMap"
			name := ""
			if src != nil {
				name = src.Name
			} else if v.Secret != nil {
				src, kind, name = v.Secret, "Secret", v.Secret.SecretName
			} else {
				return fileSource{}, fmt.Errorf("volume %q is neither a ConfigMap nor a Secret", v.Name)
			}
			if len(src.Items) == 0 {
				return fileSource{kind, name, rel}, nil
			}
			for _, it := range src.Items {
				if it.Path == rel {
					return fileSource{kind, name, it.Key}, nil
				}
			}
			return fileSource{}, fmt.Errorf("volume %q (%s %s) lists no item with path %q", v.Name, kind, name, rel)
		}
		return fileSource{}, fmt.Errorf("volume mount %q names no volume of the pod", vm.Name)
	}
	return fileSource{}, fmt.Errorf("no volume mount of container %q holds %s", c.Name, file)
}

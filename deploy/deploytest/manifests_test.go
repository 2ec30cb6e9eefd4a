package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifests are the objects of a manifest directory, typed, by name.
type manifests struct {
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	services        map[string]*corev1.Service
	statefulSets    map[string]*appsv1.StatefulSet
	pdbs            map[string]*policyv1.PodDisruptionBudget
	serviceMonitors map[string]*monitoringv1.ServiceMonitor
}

// loadManifests decodes every .yaml and .yml file under fsys (subdirectories
// too), each document strictly into the typed object its apiVersion and
// kind name: a field the type lacks, a duplicate key, a kind this
// deployment does not use or two objects of one kind and name are errors.
func loadManifests(fsys fs.FS) (*manifests, error) {
	m := &manifests{
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		services:        map[string]*corev1.Service{},
		statefulSets:    map[string]*appsv1.StatefulSet{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		serviceMonitors: map[string]*monitoringv1.ServiceMonitor{},
	}
	var errs []error
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return nil
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for i := 1; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := m.add(fmt.Sprintf("%s (document %d)", p, i), doc); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return m, errors.Join(errs...)
}

// add decodes one document into its typed object.
func (m *manifests) add(src string, doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if s := strings.TrimSpace(string(js)); s == "null" || s == "" {
		return nil // comments only
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	switch gvk := tm.APIVersion + ", Kind=" + tm.Kind; gvk {
	case "v1, Kind=ConfigMap":
		return decodeInto(m.configMaps, src, doc)
	case "v1, Kind=Secret":
		return decodeInto(m.secrets, src, doc)
	case "v1, Kind=Service":
		return decodeInto(m.services, src, doc)
	case "apps/v1, Kind=StatefulSet":
		return decodeInto(m.statefulSets, src, doc)
	case "policy/v1, Kind=PodDisruptionBudget":
		return decodeInto(m.pdbs, src, doc)
	case "monitoring.coreos.com/v1, Kind=ServiceMonitor":
		return decodeInto(m.serviceMonitors, src, doc)
	default:
		return fmt.Errorf("%s: unexpected object %s (the test knows ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget and ServiceMonitor)", src, gvk)
	}
}

// decodeInto decodes doc strictly into a new T and files it by name.
func decodeInto[T any, PT interface {
	*T
	metav1.Object
}](into map[string]PT, src string, doc []byte) error {
	obj := PT(new(T))
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	name := obj.GetName()
	if name == "" {
		return fmt.Errorf("%s: no metadata.name", src)
	}
	if obj.GetNamespace() != "" {
		return fmt.Errorf("%s: %s names namespace %q: the manifests go to the namespace kubectl is given", src, name, obj.GetNamespace())
	}
	if _, dup := into[name]; dup {
		return fmt.Errorf("%s: a second object named %q of this kind", src, name)
	}
	into[name] = obj
	return nil
}

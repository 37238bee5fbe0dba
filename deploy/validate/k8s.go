package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty typed object for an apiVersion and kind, or nil when unknown.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	}
	return nil
}

// splitDocuments splits multi-document YAML on `---` lines, dropping empty documents.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if strings.TrimSpace(stripComments(cur.String())) != "" {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func validateK8s(files []string) error {
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var objects []any
		for i, doc := range splitDocuments(data) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				return fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			obj := newObject(meta.APIVersion, meta.Kind)
			if obj == nil {
				return fmt.Errorf("%s: document %d: unknown kind %s %s", file, i+1, meta.APIVersion, meta.Kind)
			}
			// Strict: unknown fields and duplicate keys are errors, as `kubectl apply
			// --validate=strict` would report them.
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				return fmt.Errorf("%s: %s %q: %w", file, meta.Kind, meta.Metadata.Name, err)
			}
			if meta.Metadata.Name == "" {
				return fmt.Errorf("%s: document %d (%s) has no metadata.name", file, i+1, meta.Kind)
			}
			objects = append(objects, obj)
			fmt.Printf("ok  %-40s %s/%s\n", meta.APIVersion+" "+meta.Kind, file, meta.Metadata.Name)
		}
		if err := checkChart(objects); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		total += len(objects)
	}
	fmt.Printf("%d manifests valid\n", total)
	return nil
}

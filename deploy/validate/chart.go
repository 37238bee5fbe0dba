package main

import (
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// secretVariables must never appear with a literal value in a Deployment.
var secretVariables = []string{
	"NOTIFY_JWT_SECRET", "NOTIFY_PUBLISH_KEY", "NOTIFY_MONGO_URI", "NOTIFY_SMTP_URL",
	"NOTIFY_WEBHOOK_SECRET",
}

// checkChart checks what the chart promises beyond schema validity, across the objects of one
// rendering: probes, drain, rollout, security, secrets, and that selectors match the pods.
func checkChart(objects []any) error {
	var deployments []*appsv1.Deployment
	for _, o := range objects {
		if d, ok := o.(*appsv1.Deployment); ok {
			deployments = append(deployments, d)
		}
	}
	if len(deployments) != 1 {
		return fmt.Errorf("expected one Deployment, found %d", len(deployments))
	}
	d := deployments[0]
	pod := d.Spec.Template
	if d.Spec.Selector == nil {
		return fmt.Errorf("Deployment has no selector")
	}
	selector, err := metaSelector(d.Spec.Selector.MatchLabels)
	if err != nil {
		return err
	}
	if !selector.Matches(labels.Set(pod.Labels)) {
		return fmt.Errorf("Deployment selector does not match its pod labels")
	}
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("expected one container, found %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if err := checkProbe("readinessProbe", c.ReadinessProbe, "/health/ready"); err != nil {
		return err
	}
	if err := checkProbe("livenessProbe", c.LivenessProbe, "/health/live"); err != nil {
		return err
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return fmt.Errorf("container has no preStop hook (draining)")
	}
	// The server needs up to 10 s after SIGTERM; preStop comes first.
	grace := int64(30)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if grace < 15 {
		return fmt.Errorf("terminationGracePeriodSeconds %d leaves no room for the 10 s drain", grace)
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil {
		return fmt.Errorf("Deployment strategy is not RollingUpdate")
	}
	if ps := pod.Spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		return fmt.Errorf("pod does not require runAsNonRoot")
	}
	for _, e := range c.Env {
		for _, s := range secretVariables {
			if e.Name == s && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				return fmt.Errorf("%s is not read from a Secret", s)
			}
		}
	}
	if !hasEnvFromSecret(c, "NOTIFY_PUBLISH_KEY") {
		return fmt.Errorf("NOTIFY_PUBLISH_KEY is not set from a Secret")
	}
	if !hasEnvFromSecret(c, "NOTIFY_JWT_SECRET") && !hasEnv(c, "NOTIFY_JWT_PUBLIC_KEY_FILE") {
		return fmt.Errorf("neither NOTIFY_JWT_SECRET (from a Secret) nor NOTIFY_JWT_PUBLIC_KEY_FILE is set")
	}
	for _, o := range objects {
		switch o := o.(type) {
		case *corev1.Service:
			if !selectsPod(o.Spec.Selector, pod.Labels) {
				return fmt.Errorf("Service %s does not select the pods", o.Name)
			}
		case *policyv1.PodDisruptionBudget:
			if o.Spec.Selector == nil || !selectsPod(o.Spec.Selector.MatchLabels, pod.Labels) {
				return fmt.Errorf("PodDisruptionBudget %s does not select the pods", o.Name)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			if o.Spec.ScaleTargetRef.Kind != "Deployment" || o.Spec.ScaleTargetRef.Name != d.Name {
				return fmt.Errorf("HorizontalPodAutoscaler %s does not target the Deployment", o.Name)
			}
		case *monitoringv1.ServiceMonitor:
			for _, ep := range o.Spec.Endpoints {
				if ep.Path != "/metrics" {
					return fmt.Errorf("ServiceMonitor %s scrapes %q, not /metrics", o.Name, ep.Path)
				}
			}
		}
	}
	return nil
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromSet(m), nil
}

func selectsPod(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

func checkProbe(name string, p *corev1.Probe, path string) error {
	if p == nil || p.HTTPGet == nil {
		return fmt.Errorf("%s is not an HTTP probe", name)
	}
	if p.HTTPGet.Path != path {
		return fmt.Errorf("%s path is %q, want %q", name, p.HTTPGet.Path, path)
	}
	return nil
}

func hasEnv(c corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

func hasEnvFromSecret(c corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			strings.TrimSpace(e.ValueFrom.SecretKeyRef.Key) != "" {
			return true
		}
	}
	return false
}

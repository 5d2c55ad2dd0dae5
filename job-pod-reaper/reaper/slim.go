package reaper

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// slimPod keeps of a pod only what the reaper's decisions, Events and
// accounting need (memory: a cached pod is a few hundred bytes whatever its
// spec): name, namespace, UID, resourceVersion, labels, the lifetime
// annotation, the creation and deletion timestamps, the deletion's and the
// spec's grace periods, status.startTime, and
// the CPU and memory requests summed over its containers (as one
// container). It is the pod informer's transform and is applied to each
// page of a --once LIST.
func (r *Reaper) slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return stripManagedFields(obj)
	}
	return r.slim(p), nil
}

// slim returns the slim copy of p. Of the labels it keeps the job and
// account labels, or all of them when pods are chosen by label (no prefix).
func (r *Reaper) slim(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: r.keptLabels(p.Labels), CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
			DeletionGracePeriodSeconds: p.DeletionGracePeriodSeconds,
		},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: p.Spec.TerminationGracePeriodSeconds},
	}
	if v, ok := p.Annotations[identity.LifetimeAnnotation]; ok {
		out.Annotations = map[string]string{identity.LifetimeAnnotation: v}
	}
	var cpu, mem resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			mem.Add(q)
		}
	}
	if !cpu.IsZero() || !mem.IsZero() {
		out.Spec.Containers = []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}}}}
	}
	out.Status.StartTime = p.Status.StartTime
	return out
}

// keptLabels returns the labels the reaper reads: the job label (and, on
// pods, the account label); all of them when objects are chosen by label
// client-side (no prefix).
func (r *Reaper) keptLabels(l map[string]string) map[string]string {
	if !r.cfg.byPrefix() {
		return l
	}
	var out map[string]string
	for _, k := range []string{r.jobLabel, identity.AccountLabel} {
		if v, ok := l[k]; ok && k != "" {
			if out == nil {
				out = make(map[string]string, 2)
			}
			out[k] = v
		}
	}
	return out
}

// slimMetadata keeps of a Service's or ConfigMap's metadata only what the
// reaper reads: name, namespace, UID, creation time and the job label.
func (r *Reaper) slimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return stripManagedFields(obj)
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, Labels: r.keptLabels(m.Labels),
	}}, nil
}

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
// annotation, the creation and deletion timestamps, status.startTime, and
// the CPU and memory requests summed over its containers (as one
// container). It is the pod informer's transform and is applied to each
// page of a --once LIST.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return stripManagedFields(obj)
	}
	return slim(p), nil
}

func slim(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp,
		},
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

package reaper

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// Pod is what the reaper reads of a pod, and all that its caches keep
// (memory: a few hundred bytes a pod, whatever its spec). Its metadata
// holds the name, namespace, UID, resourceVersion, the labels the reaper
// reads (see keptLabels), the lifetime annotation alone, and the creation
// and deletion timestamps and the deletion's grace period.
type Pod struct {
	metav1.ObjectMeta
	// StartTime is status.startTime: nil for a pod that never started, and
	// in the metadata-only cache (SpecKnown false), which is used only when
	// the walltime counts from creation.
	StartTime *metav1.Time
	// SpecKnown says whether the fields below were read. The daemon's pod
	// cache holds metadata only; the pod is read (one LIST by name) when it
	// is deleted, for the grace period and the accounting record.
	SpecKnown bool
	// TerminationGracePeriodSeconds is spec.terminationGracePeriodSeconds.
	TerminationGracePeriodSeconds *int64
	// CPURequestMillicores and MemoryRequestBytes are the requests summed
	// over the pod's containers.
	CPURequestMillicores int64
	MemoryRequestBytes   int64
}

// ref is the reference an Event on the pod names.
func (p *Pod) ref() *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion}
}

// GetObjectKind and DeepCopyObject make a Pod a runtime.Object (the
// informer caches hold Pods).
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns a deep copy of p.
func (p *Pod) DeepCopyObject() runtime.Object {
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.StartTime = p.StartTime.DeepCopy()
	if p.TerminationGracePeriodSeconds != nil {
		g := *p.TerminationGracePeriodSeconds
		out.TerminationGracePeriodSeconds = &g
	}
	return &out
}

// slimPod is the transform of the daemon's pod informer: a pod, or its
// metadata (the metadata-only informer, when the walltime counts from
// creation), becomes a Pod.
func (r *Reaper) slimPod(obj any) (any, error) {
	switch p := obj.(type) {
	case *corev1.Pod:
		return r.slim(p), nil
	case *metav1.PartialObjectMetadata:
		return &Pod{ObjectMeta: r.podMeta(&p.ObjectMeta)}, nil
	default:
		return stripManagedFields(obj)
	}
}

// slim returns the Pod of p: its metadata, status.startTime, its
// terminationGracePeriodSeconds and its summed CPU and memory requests.
// It is the typed pod informer's transform and is applied to each page of
// a --once LIST.
func (r *Reaper) slim(p *corev1.Pod) *Pod {
	out := &Pod{ObjectMeta: r.podMeta(&p.ObjectMeta), StartTime: p.Status.StartTime, SpecKnown: true,
		TerminationGracePeriodSeconds: p.Spec.TerminationGracePeriodSeconds}
	var cpu, mem resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			mem.Add(q)
		}
	}
	out.CPURequestMillicores, out.MemoryRequestBytes = cpu.MilliValue(), mem.Value()
	return out
}

// podMeta keeps of a pod's metadata what the reaper reads.
func (r *Reaper) podMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: r.keptLabels(m.Labels), CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
		DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
	}
	if v, ok := m.Annotations[identity.LifetimeAnnotation]; ok {
		out.Annotations = map[string]string{identity.LifetimeAnnotation: v}
	}
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

// cachedObject is a Service's or ConfigMap's metadata as the companion
// caches keep it: name, namespace, UID, creation time and the job label's
// value (not the labels map: memory).
type cachedObject struct {
	metav1.ObjectMeta
	Job string
}

// GetObjectKind and DeepCopyObject make a cachedObject a runtime.Object.
func (o *cachedObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns a deep copy of o.
func (o *cachedObject) DeepCopyObject() runtime.Object {
	out := *o
	o.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// slimMetadata is the transform of the companion informers.
func (r *Reaper) slimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return stripManagedFields(obj)
	}
	return &cachedObject{ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, CreationTimestamp: m.CreationTimestamp,
	}, Job: JobOf(m.Labels, r.jobLabel)}, nil
}

// stripManagedFields drops managedFields from cached objects (memory).
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// object is the cached object o of kind as the plan sees it.
func (o *cachedObject) object(kind string) Object {
	return Object{Kind: kind, Namespace: o.Namespace, Name: o.Name, UID: o.UID, Job: o.Job, Created: o.CreationTimestamp.Time}
}

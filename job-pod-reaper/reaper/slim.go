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
// (memory: a few hundred bytes a pod, whatever its spec and its other
// labels and annotations). Its metadata holds the name, namespace, UID,
// resourceVersion, the creation and deletion timestamps and the
// deletion's grace period; no labels or annotations: the few the reaper
// reads are fields.
type Pod struct {
	metav1.ObjectMeta
	// Job is the value of the job label ("" without one, or with
	// --job-label=none), Account that of the account label.
	Job, Account string
	// Lifetime is the value of the lifetime annotation, when HasLifetime.
	Lifetime    string
	HasLifetime bool
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
		return r.podOf(&p.ObjectMeta), nil
	default:
		return stripManagedFields(obj)
	}
}

// slim returns the Pod of p: its metadata, status.startTime, its
// terminationGracePeriodSeconds and its summed CPU and memory requests.
// It is the typed pod informer's transform and is applied to each page of
// a --once LIST.
func (r *Reaper) slim(p *corev1.Pod) *Pod {
	out := r.podOf(&p.ObjectMeta)
	out.StartTime, out.SpecKnown, out.TerminationGracePeriodSeconds = p.Status.StartTime, true, p.Spec.TerminationGracePeriodSeconds
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

// podOf is the Pod of a pod's metadata m: what the reaper reads of it.
func (r *Reaper) podOf(m *metav1.ObjectMeta) *Pod {
	out := &Pod{ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
		DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
	}, Job: JobOf(m.Labels, r.jobLabel), Account: m.Labels[identity.AccountLabel]}
	out.Lifetime, out.HasLifetime = m.Annotations[identity.LifetimeAnnotation]
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

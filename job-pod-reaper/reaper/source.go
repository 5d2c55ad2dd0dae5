package reaper

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The companion kinds and their resources.
var companionKinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{KindService, corev1.SchemeGroupVersion.WithResource("services")},
	{KindConfigMap, corev1.SchemeGroupVersion.WithResource("configmaps")},
	{KindSecret, corev1.SchemeGroupVersion.WithResource("secrets")},
}

// snapshot is what a pass sees: the pods and companion objects in scope.
type snapshot struct {
	pods      []*corev1.Pod
	objects   []Object
	forbidden []string
}

// source gives a pass its snapshot.
type source interface {
	snapshot(ctx context.Context) (*snapshot, error)
}

// listSource reads the cluster with LISTs (the --once mode): in the
// cluster-wide mode one label-selected LIST per kind (and one for the
// namespaces), whatever the number of namespaces.
type listSource struct {
	r *Reaper
}

func (s *listSource) snapshot(ctx context.Context) (*snapshot, error) {
	r := s.r
	snap := &snapshot{}
	if !r.cfg.perNamespace() {
		inScope, err := s.namespaces(ctx, false)
		if err != nil {
			return nil, err
		}
		if err := s.read(ctx, metav1.NamespaceAll, inScope, snap); err != nil {
			return nil, err
		}
		return snap, nil
	}
	list := r.cfg.namespaceList()
	inScope, err := s.namespaces(ctx, list == nil)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = slices.Sorted(maps.Keys(inScope))
	}
	for _, ns := range list {
		if inScope != nil && !inScope[ns] {
			continue
		}
		part := &snapshot{}
		err := s.read(ctx, ns, nil, part)
		switch {
		case err == nil:
			snap.pods = append(snap.pods, part.pods...)
			snap.objects = append(snap.objects, part.objects...)
		case apierrors.IsForbidden(err):
			r.log.Warn("Skipped namespace the reaper may not read", zap.String("namespace", ns), zap.Error(err))
			snap.forbidden = append(snap.forbidden, ns)
		default:
			return nil, err
		}
	}
	return snap, nil
}

// namespaces returns the namespaces matching --namespace-labels (one LIST),
// or nil when there is no namespace selector and always is false.
func (s *listSource) namespaces(ctx context.Context, always bool) (map[string]bool, error) {
	r := s.r
	if r.cfg.nsSelector.Empty() && !always {
		return nil, nil
	}
	sel := r.cfg.nsSelector.String()
	l, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list namespaces %q: %w", sel, err)
	}
	out := make(map[string]bool, len(l.Items))
	for _, ns := range l.Items {
		out[ns.Name] = true
	}
	return out, nil
}

// read LISTs pods and companions in ns (all namespaces when ""), keeping
// those in inScope (every one when nil).
func (s *listSource) read(ctx context.Context, ns string, inScope map[string]bool, snap *snapshot) error {
	r := s.r
	keep := func(n string) bool { return inScope == nil || inScope[n] }
	pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.podSelector.String()})
	if err != nil {
		return fmt.Errorf("list pods in %q: %w", nsName(ns), err)
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; keep(p.Namespace) {
			snap.pods = append(snap.pods, p)
		}
	}
	if r.jobLabel == "" {
		return nil
	}
	for _, ck := range companionKinds {
		l, err := r.meta.Resource(ck.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: r.objSelector.String()})
		if err != nil {
			return fmt.Errorf("list %s in %q: %w", ck.gvr.Resource, nsName(ns), err)
		}
		for i := range l.Items {
			m := &l.Items[i]
			if keep(m.Namespace) {
				snap.objects = append(snap.objects, objectFromAccessor(ck.kind, m, r.jobLabel))
			}
		}
	}
	return nil
}

func nsName(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return ns
}

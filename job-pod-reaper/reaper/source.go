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

// The companion kinds the reaper reads (metadata only) and their resources.
// Secrets are not among them: the reaper may not read Secrets at all, and
// deletes a job's Secrets with one DELETE collection call (deleteJobSecrets).
var companionKinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{KindService, corev1.SchemeGroupVersion.WithResource("services")},
	{KindConfigMap, corev1.SchemeGroupVersion.WithResource("configmaps")},
}

// snapshot is what a pass sees: the pods and companion objects in scope.
type snapshot struct {
	pods      []*Pod
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
		inScope, err := s.namespaces(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.read(ctx, metav1.NamespaceAll, inScope, snap); err != nil {
			return nil, err
		}
		return snap, nil
	}
	list := r.cfg.namespaceList()
	inScope, err := s.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = slices.Sorted(maps.Keys(inScope))
	}
	for _, ns := range list {
		if (inScope != nil && !inScope[ns]) || !r.cfg.userNamespace(ns) {
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

// namespaces returns the namespaces in scope (one LIST): those matching
// --namespace-labels, or, in the per-namespace mode without a list, the user
// namespaces; nil when the reaper need not read namespaces.
func (s *listSource) namespaces(ctx context.Context) (map[string]bool, error) {
	r := s.r
	if !r.cfg.listsNamespaces() {
		return nil, nil
	}
	sel := r.cfg.namespaceSelector().String()
	l, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list namespaces %q: %w", sel, err)
	}
	out := make(map[string]bool, len(l.Items))
	for _, ns := range l.Items {
		if r.cfg.userNamespace(ns.Name) {
			out[ns.Name] = true
		}
	}
	return out, nil
}

// read LISTs pods and companions in ns (all namespaces when ""), keeping
// those in inScope (every one when nil).
func (s *listSource) read(ctx context.Context, ns string, inScope map[string]bool, snap *snapshot) error {
	r := s.r
	keep := func(n string) bool { return (inScope == nil || inScope[n]) && r.cfg.userNamespace(n) }
	// Pages of listPageSize pods, each slimmed before the next is read:
	// memory stays that of the slim pods, not of one 10,000-pod answer.
	opts := metav1.ListOptions{LabelSelector: r.podSelector.String(), Limit: listPageSize}
	for {
		pods, err := r.client.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list pods in %q: %w", nsName(ns), err)
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; keep(p.Namespace) {
				snap.pods = append(snap.pods, r.slim(p))
			}
		}
		if opts.Continue = pods.Continue; opts.Continue == "" {
			break
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

// listPageSize is the page size of a --once pass's pod LIST.
const listPageSize = 1000

func nsName(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return ns
}

// snapshot is the full resync of a pass, from the caches. In per-namespace
// mode it first starts the caches of listed namespaces it may now read.
func (w *watch) snapshot(ctx context.Context) (*snapshot, error) {
	snap := &snapshot{}
	caches := []*objCache{}
	if w.all != nil {
		caches = append(caches, w.all)
	} else {
		cands := w.candidates()
		w.stopOthers(cands)
		for _, ns := range cands {
			c, err := w.ensure(ctx, ns)
			if apierrors.IsForbidden(err) {
				w.r.log.Warn("Skipped namespace the reaper may not read", zap.String("namespace", ns), zap.Error(err))
				snap.forbidden = append(snap.forbidden, ns)
				continue
			}
			if err != nil {
				return nil, err
			}
			caches = append(caches, c)
		}
	}
	for _, c := range caches {
		for _, o := range c.pods.GetStore().List() {
			if p, ok := o.(*Pod); ok && w.inScope(p.Namespace) {
				snap.pods = append(snap.pods, p)
			}
		}
		for _, ck := range companionKinds {
			inf := c.objects[ck.kind]
			if inf == nil {
				continue
			}
			for _, o := range inf.GetStore().List() {
				if co, ok := o.(*cachedObject); ok && w.inScope(co.Namespace) {
					snap.objects = append(snap.objects, co.object(ck.kind))
				}
			}
		}
	}
	return snap, nil
}

func objectFromAccessor(kind string, m metav1.Object, jobLabel string) Object {
	return Object{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
		Job: JobOf(m.GetLabels(), jobLabel), Created: m.GetCreationTimestamp().Time}
}

package mapsync

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehpc/kubehpc/pkg/daemon"
)

var _ daemon.Starter = (*Pass)(nil)

// Start watches namespaces while this replica acts (the daemon calls it
// beside the passes; --once does not), so that a pass reads the namespaces'
// annotations from memory instead of listing every namespace: at 5,000 user
// namespaces the list is most of what a pass with nothing changed costs.
// Until the watch has synced, a pass lists as --once does. Without
// --namespace-annotations there is nothing to watch.
func (p *Pass) Start(ctx context.Context) error {
	if !p.cfg.NamespaceAnnotations {
		<-ctx.Done()
		return nil
	}
	nsClient := p.client.CoreV1().Namespaces()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return nsClient.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return nsClient.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Namespace{}, 0, cache.Indexers{})
	if err := inf.SetTransform(trimNamespace); err != nil {
		return fmt.Errorf("watch namespaces: %w", err)
	}
	p.nsInformer.Store(&inf)
	defer p.nsInformer.Store(nil)
	inf.RunWithContext(ctx)
	return nil
}

// trimNamespace keeps what a pass reads of a namespace (its name,
// annotations and deletion mark), so that the watched copy of 50,000
// namespaces stays small.
func trimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil // a tombstone: kept as it is
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, ResourceVersion: ns.ResourceVersion,
		Annotations: ns.Annotations, DeletionTimestamp: ns.DeletionTimestamp}}, nil
}

// watchedNamespaces returns the annotations of every namespace not being
// deleted, from the watch; ok is false when there is no synced watch.
func (p *Pass) watchedNamespaces() (map[string]map[string]string, bool) {
	inf := p.nsInformer.Load()
	if inf == nil || !(*inf).HasSynced() {
		return nil, false
	}
	items := (*inf).GetStore().List()
	out := make(map[string]map[string]string, len(items))
	for _, o := range items {
		if ns, ok := o.(*corev1.Namespace); ok && ns.DeletionTimestamp == nil {
			out[ns.Name] = ns.Annotations
		}
	}
	return out, true
}

// listNamespaces lists the annotations of every namespace not being
// deleted, page by page.
func (p *Pass) listNamespaces(ctx context.Context) (map[string]map[string]string, error) {
	namespaces := map[string]map[string]string{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := p.client.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list namespaces (nothing written): %w", err)
		}
		for i := range list.Items {
			ns := &list.Items[i]
			if ns.DeletionTimestamp != nil {
				continue
			}
			namespaces[ns.Name] = ns.Annotations
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	return namespaces, nil
}

package reaper

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// objCache is the pod and companion informers of one namespace, or of all.
type objCache struct {
	pods    cache.SharedIndexInformer
	objects map[string]cache.SharedIndexInformer // by kind
	// stop stops the informers.
	stop context.CancelFunc
}

// candidates are the namespaces the per-namespace mode reads: the listed
// ones in scope, or every namespace in scope.
func (w *watch) candidates() []string {
	var out []string
	if w.listed != nil {
		for ns := range w.listed {
			if w.inScope(ns) {
				out = append(out, ns)
			}
		}
	} else {
		for _, ns := range w.nsInformer.GetStore().ListKeys() {
			if w.r.cfg.userNamespace(ns) {
				out = append(out, ns)
			}
		}
	}
	slices.Sort(out)
	return out
}

// stopOthers stops the caches of namespaces that left the scope.
func (w *watch) stopOthers(keep []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ns, c := range w.perNS {
		if !slices.Contains(keep, ns) {
			c.stop()
			delete(w.perNS, ns)
			w.r.log.Info("Stopped watching namespace", zap.String("namespace", ns))
		}
	}
}

// ensure returns the started, synced cache of a listed namespace, starting
// it if needed; a Forbidden probe leaves it unstarted (retried next pass).
func (w *watch) ensure(ctx context.Context, ns string) (*objCache, error) {
	w.mu.Lock()
	c := w.perNS[ns]
	w.mu.Unlock()
	if c == nil {
		if err := w.probe(ctx, ns); err != nil {
			return nil, err
		}
		var start func()
		var err error
		if c, start, err = w.newObjCache(ns); err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.perNS[ns] = c
		w.mu.Unlock()
		start()
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced()...) {
		return nil, fmt.Errorf("sync caches of namespace %s: %w", ns, ctx.Err())
	}
	return c, nil
}

// probe LISTs one item of each kind in ns, to find out whether the reaper
// may read it before starting informers that would retry forever.
func (w *watch) probe(ctx context.Context, ns string) error {
	r := w.r
	opts := metav1.ListOptions{Limit: 1, LabelSelector: r.podSelector.String()}
	if _, err := r.client.CoreV1().Pods(ns).List(ctx, opts); err != nil {
		return fmt.Errorf("list pods in %q: %w", nsName(ns), err)
	}
	if r.jobLabel == "" {
		return nil
	}
	opts.LabelSelector = r.objSelector.String()
	for _, ck := range companionKinds {
		if _, err := r.meta.Resource(ck.gvr).Namespace(ns).List(ctx, opts); err != nil {
			return fmt.Errorf("list %s in %q: %w", ck.gvr.Resource, nsName(ns), err)
		}
	}
	return nil
}

func (w *watch) probeNamespaces(ctx context.Context) error {
	if _, err := w.r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: w.r.cfg.namespaceSelector().String()}); err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	return nil
}

// newObjCache builds the label-filtered informers of ns, and the function
// that starts them.
func (w *watch) newObjCache(ns string) (*objCache, func(), error) {
	r := w.r
	ctx, stop := context.WithCancel(w.ctx)
	podSel := r.podSelector.String()
	byNamespace := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	c := &objCache{objects: map[string]cache.SharedIndexInformer{}, stop: stop}
	var starts []func()
	if r.cfg.AgeFrom == AgeFromStart {
		// status.startTime is not metadata: whole pods are read (and
		// slimmed as they arrive).
		f := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = podSel }))
		c.pods = f.Core().V1().Pods().Informer()
		starts = append(starts, func() { f.Start(ctx.Done()) })
	} else {
		c.pods = metadatainformer.NewFilteredMetadataInformer(r.meta, corev1.SchemeGroupVersion.WithResource("pods"), ns, 0,
			byNamespace, func(o *metav1.ListOptions) { o.LabelSelector = podSel }).Informer()
		starts = append(starts, func() { go c.pods.RunWithContext(ctx) })
	}
	if err := c.pods.SetTransform(r.slimPod); err != nil {
		return nil, nil, fmt.Errorf("set pod transform: %w", err)
	}
	if _, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.podChanged(obj) },
		UpdateFunc: func(_, obj any) { w.podChanged(obj) },
		DeleteFunc: func(obj any) { w.podDeleted(obj) },
	}); err != nil {
		return nil, nil, fmt.Errorf("add pod handler: %w", err)
	}
	if r.jobLabel != "" {
		objSel := r.objSelector.String()
		tweak := func(o *metav1.ListOptions) { o.LabelSelector = objSel }
		for _, ck := range companionKinds {
			inf := metadatainformer.NewFilteredMetadataInformer(r.meta, ck.gvr, ns, 0, byNamespace, tweak).Informer()
			if err := inf.SetTransform(r.slimMetadata); err != nil {
				return nil, nil, fmt.Errorf("set %s transform: %w", ck.kind, err)
			}
			c.objects[ck.kind] = inf
			starts = append(starts, func() { go inf.RunWithContext(ctx) })
		}
	}
	return c, func() {
		for _, s := range starts {
			s()
		}
	}, nil
}

func (c *objCache) synced() []cache.InformerSynced {
	out := []cache.InformerSynced{c.pods.HasSynced}
	for _, inf := range c.objects {
		out = append(out, inf.HasSynced)
	}
	return out
}

func (w *watch) podChanged(obj any) {
	if pod, ok := obj.(*Pod); ok {
		w.schedule(pod)
	}
}

func (w *watch) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if pod, ok := obj.(*Pod); ok {
		w.r.forget(pod.UID)
	}
}

// namespaceChanged schedules the pods of a namespace that came into scope.
func (w *watch) namespaceChanged(obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	c := w.cacheFor(ns.Name)
	if c == nil {
		return
	}
	pods, _ := c.pods.GetIndexer().ByIndex(cache.NamespaceIndex, ns.Name)
	for _, o := range pods {
		if p, ok := o.(*Pod); ok {
			w.schedule(p)
		}
	}
}

// podCount is the number of pods in scope in the caches.
func (w *watch) podCount() int {
	caches := []*objCache{w.all}
	if w.all == nil {
		w.mu.Lock()
		caches = slices.Collect(maps.Values(w.perNS))
		w.mu.Unlock()
	}
	n := 0
	for _, c := range caches {
		for _, key := range c.pods.GetStore().ListKeys() {
			if ns, _, _ := cache.SplitMetaNamespaceKey(key); w.inScope(ns) {
				n++
			}
		}
	}
	return n
}

// cacheFor returns the cache holding namespace ns, or nil.
func (w *watch) cacheFor(ns string) *objCache {
	if w.all != nil {
		return w.all
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.perNS[ns]
}

// pod returns the cached pod with key "namespace/name", or nil.
func (w *watch) pod(key string) *Pod {
	ns, _, _ := cache.SplitMetaNamespaceKey(key)
	c := w.cacheFor(ns)
	if c == nil {
		return nil
	}
	o, ok, err := c.pods.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	p, _ := o.(*Pod)
	return p
}

// nsSelected says whether ns matches --namespace-labels.
func (w *watch) nsSelected(ns string) bool {
	if w.nsInformer == nil {
		return true
	}
	_, ok, err := w.nsInformer.GetStore().GetByKey(ns)
	return err == nil && ok
}

// inScope says whether the reaper acts in namespace ns.
func (w *watch) inScope(ns string) bool {
	if w.listed != nil && !w.listed[ns] {
		return false
	}
	if w.r.cfg.byPrefix() {
		return w.r.cfg.userNamespace(ns)
	}
	return w.nsSelected(ns)
}

package reaper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// workers is the number of goroutines deleting pods whose time has come.
const workers = 16

// watch holds the informer caches of the daemon mode.
type watch struct {
	r *Reaper
	// ctx lives while this replica leads; informers stop with it.
	ctx context.Context
	// nsInformer caches the namespaces matching --namespace-labels (nil
	// when there is no namespace selector).
	nsInformer cache.SharedIndexInformer
	// all is the cluster-wide cache, or nil in per-namespace mode.
	all *objCache

	mu     sync.Mutex
	perNS  map[string]*objCache // per-namespace mode: started caches
	listed map[string]bool
}

// objCache is the pod and companion informers of one namespace, or of all.
type objCache struct {
	pods    cache.SharedIndexInformer
	objects map[string]cache.SharedIndexInformer // by kind
	// stop stops the informers.
	stop context.CancelFunc
}

// Start runs the informers and the workers that delete each pod when its
// walltime ends, until ctx is done. It runs only while this replica leads.
func (r *Reaper) Start(ctx context.Context) error {
	started := false
	r.startOnce.Do(func() { started = true })
	if !started {
		return errors.New("reaper: Start called twice")
	}
	err := r.start(ctx)
	if err != nil {
		r.startErr = err
		close(r.failed)
	}
	return err
}

func (r *Reaper) start(ctx context.Context) error {
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBaseDelay, retryMaxDelay),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "job-pod-reaper", Clock: r.clock})
	defer r.queue.ShutDown()
	w := &watch{r: r, ctx: ctx, perNS: map[string]*objCache{}}
	var syncs []cache.InformerSynced
	var starts []func()
	list := r.cfg.namespaceList()
	if r.cfg.listsNamespaces() {
		if err := w.probeNamespaces(ctx); err != nil {
			return err
		}
		sel := r.cfg.namespaceSelector().String()
		f := informers.NewSharedInformerFactoryWithOptions(r.client, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }),
			informers.WithTransform(stripManagedFields))
		w.nsInformer = f.Core().V1().Namespaces().Informer()
		if _, err := w.nsInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.namespaceChanged(obj) },
			UpdateFunc: func(_, obj any) { w.namespaceChanged(obj) },
		}); err != nil {
			return fmt.Errorf("add namespace handler: %w", err)
		}
		starts = append(starts, func() { f.Start(ctx.Done()) })
		syncs = append(syncs, w.nsInformer.HasSynced)
	}
	if r.cfg.perNamespace() {
		if list != nil {
			w.listed = map[string]bool{}
			for _, ns := range list {
				w.listed[ns] = true
			}
		}
	} else {
		if err := w.probe(ctx, metav1.NamespaceAll); err != nil {
			return fmt.Errorf("the reaper may not read every namespace (cluster-wide mode): %w", err)
		}
		c, start, err := w.newObjCache(metav1.NamespaceAll)
		if err != nil {
			return err
		}
		w.all = c
		starts = append(starts, start)
		syncs = append(syncs, c.synced()...)
	}
	for _, start := range starts {
		start()
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return ctx.Err()
	}
	r.watch = w
	close(r.ready)
	r.log.Info("Started watching", zap.Bool("clusterWide", w.all != nil))

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	return nil
}

// A failed deletion is retried with a per-pod exponential backoff from
// retryBaseDelay to retryMaxDelay: within seconds of the API server
// answering again, whatever --interval is.
const (
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = 5 * time.Second
)

// processNext handles one due pod; false when the queue is shut down. A
// failed deletion goes back into the queue with the rate limiter's backoff.
func (r *Reaper) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	err := r.syncPod(ctx, key)
	switch {
	case err == nil:
		r.queue.Forget(key)
	case errors.Is(err, errStopped) || ctx.Err() != nil:
		r.queue.Forget(key)
	default:
		r.metrics.retries.Inc()
		r.log.Warn("Failed to reap pod; retrying", zap.String("key", key), zap.Int("attempts", r.queue.NumRequeues(key)+1), zap.Error(err))
		r.queue.AddRateLimited(key)
	}
	return true
}

// syncPod acts on one pod at the moment its warning or its deadline is due;
// it is idempotent, and reschedules the pod when it is early.
func (r *Reaper) syncPod(ctx context.Context, key string) error {
	w := r.watch
	pod := w.pod(key)
	if pod == nil || !w.inScope(pod.Namespace) {
		return nil
	}
	now := r.clock.Now()
	v := r.policy.Evaluate(pod, now)
	if v.Invalid != nil {
		r.reportInvalid(w.ctx, pod, v.Invalid)
	}
	if v.Skip != "" {
		return nil
	}
	job := JobOf(pod.Labels, r.jobLabel)
	e := Expiry{Pod: pod, Verdict: v, Job: job}
	if !v.Expired {
		if v.Warn {
			r.warn(e)
		}
		r.queue.AddAfter(key, v.Next.Sub(now))
		return nil
	}
	if r.brake.surprising(v.Deadline, now) {
		if why := r.brake.checkOne(w.podCount()); why != "" {
			r.stop(why)
		}
	}
	if err := r.throttle(ctx); err != nil {
		return err
	}
	if job != "" {
		e.Companions, e.LastOfJob = w.companions(pod, job, now)
	}
	return r.reapPod(ctx, e)
}

// schedule puts a pod in the queue for its next due time.
func (w *watch) schedule(pod *Pod) {
	r := w.r
	now := r.clock.Now()
	v := r.policy.Evaluate(pod, now)
	if v.Invalid != nil && w.inScope(pod.Namespace) {
		r.reportInvalid(w.ctx, pod, v.Invalid)
	}
	switch {
	case v.Skip != "":
	case v.Expired || v.Warn:
		r.queue.Add(keyOf(pod))
	default:
		r.queue.AddAfter(keyOf(pod), v.Next.Sub(now))
	}
}

// companions returns the objects of job, and true, when no other pod of the
// job in the namespace is still within its walltime. (The caches are
// indexed by namespace, not by job: an index entry per job would cost
// more than scanning a namespace's objects at each deletion.)
func (w *watch) companions(pod *Pod, job string, now time.Time) ([]Object, bool) {
	c := w.cacheFor(pod.Namespace)
	if c == nil {
		return nil, false
	}
	others, _ := c.pods.GetIndexer().ByIndex(cache.NamespaceIndex, pod.Namespace)
	for _, o := range others {
		p, ok := o.(*Pod)
		if !ok || p.UID == pod.UID || JobOf(p.Labels, w.r.jobLabel) != job {
			continue
		}
		if v := w.r.policy.Evaluate(p, now); !v.Expired {
			return nil, false
		}
	}
	var out []Object
	for _, ck := range companionKinds {
		inf := c.objects[ck.kind]
		if inf == nil {
			continue
		}
		items, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, pod.Namespace)
		for _, it := range items {
			if o, ok := it.(*cachedObject); ok && o.Job == job {
				out = append(out, o.object(ck.kind))
			}
		}
	}
	return out, true
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

func objectFromAccessor(kind string, m metav1.Object, jobLabel string) Object {
	return Object{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
		Job: JobOf(m.GetLabels(), jobLabel), Created: m.GetCreationTimestamp().Time}
}

// object is the cached object o of kind as the plan sees it.
func (o *cachedObject) object(kind string) Object {
	return Object{Kind: kind, Namespace: o.Namespace, Name: o.Name, UID: o.UID, Job: o.Job, Created: o.CreationTimestamp.Time}
}

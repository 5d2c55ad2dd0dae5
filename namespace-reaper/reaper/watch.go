package reaper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// watcher keeps namespace and pod caches and records each selected
// namespace's last pod activity on the namespace (LastActivityAnnotation),
// at most once per ActivityRecordInterval per namespace.
type watcher struct {
	r *Reaper

	ready      chan struct{} // closed once the caches are filled
	namespaces listerscorev1.NamespaceLister
	pods       cache.Indexer

	mu       sync.Mutex
	observed map[string]time.Time // last pod activity seen, by namespace
	written  map[string]time.Time // when the annotation was last written
	queue    workqueue.TypedDelayingInterface[string]
}

func newWatcher(r *Reaper) *watcher {
	return &watcher{
		r: r, ready: make(chan struct{}),
		observed: map[string]time.Time{}, written: map[string]time.Time{},
		queue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Clock: r.clock}),
	}
}

// Start watches namespaces and pods cluster-wide until ctx is done. It
// implements daemon.Starter; in --once mode it returns at once.
func (r *Reaper) Start(ctx context.Context) error {
	if r.watch == nil {
		return nil
	}
	return r.watch.run(ctx)
}

func (w *watcher) run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.r.client, 0, informers.WithTransform(slim))
	nsInformer := factory.Core().V1().Namespaces()
	podInformer := factory.Core().V1().Pods()
	_, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if initial {
				// Listed at start-up: the pod itself is in the cache, which
				// the passes read, so only note its own times; writing them
				// would patch every busy namespace at every restart.
				w.note(pod.Namespace, podOwnTime(pod))
				return
			}
			w.observe(pod.Namespace, PodActivity(pod, w.r.clock.Now()))
		},
		UpdateFunc: func(_, obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				w.observe(pod.Namespace, PodActivity(pod, w.r.clock.Now()))
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				w.observe(pod.Namespace, PodActivity(pod, w.r.clock.Now()))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("add pod event handler: %w", err)
	}
	_, err = nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if ns, ok := obj.(*corev1.Namespace); ok {
				w.forget(ns.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("add namespace event handler: %w", err)
	}
	w.namespaces = nsInformer.Lister()
	w.pods = podInformer.Informer().GetIndexer()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	defer w.queue.ShutDown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fill the %v cache", typ)
		}
	}
	w.r.log.Info("Filled the namespace and pod caches", zap.Int("pods", len(w.pods.ListKeys())))
	close(w.ready)
	go func() {
		for w.processNext(ctx) {
		}
	}()
	<-ctx.Done()
	return nil
}

// observe notes pod activity at t in namespace ns and, if it is the latest
// known, queues a write (record skips it if the annotation says as much).
func (w *watcher) observe(ns string, t time.Time) {
	if w.note(ns, t) {
		w.queue.Add(ns)
	}
}

// note records pod activity at t in memory; it reports whether t is the
// latest known (a time noted at start-up may not have been written yet).
func (w *watcher) note(ns string, t time.Time) bool {
	if t.IsZero() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.Before(w.observed[ns]) {
		return false
	}
	w.observed[ns] = t
	return true
}

// forget drops a deleted namespace's state.
func (w *watcher) forget(ns string) {
	w.mu.Lock()
	delete(w.observed, ns)
	delete(w.written, ns)
	w.mu.Unlock()
}

func (w *watcher) observedAt(ns string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.observed[ns]
}

func (w *watcher) processNext(ctx context.Context) bool {
	ns, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(ns)
	if err := w.record(ctx, ns); err != nil {
		w.r.metrics.errors.Inc()
		w.r.log.Error("Failed to record pod activity on namespace", zap.String("namespace", ns), zap.Error(err))
		w.queue.AddAfter(ns, time.Minute)
	}
	return true
}

// record writes the observed activity on a selected namespace, unless the
// annotation already says as much, or it was written less than
// ActivityRecordInterval ago (then it retries when the interval is over).
func (w *watcher) record(ctx context.Context, name string) error {
	ns, err := w.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		// A pod event can come before its new namespace reaches the cache.
		ns, err = w.r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if !w.r.policy.Matches(ns) || IsProtected(name, w.r.policy.Protected) || ns.DeletionTimestamp != nil {
		return nil
	}
	now := w.r.clock.Now()
	w.mu.Lock()
	seen, last := w.observed[name], w.written[name]
	w.mu.Unlock()
	if v, ok := ns.Annotations[identity.LastActivityAnnotation]; ok {
		if t, err := time.Parse(time.RFC3339, v); err == nil && !seen.Truncate(time.Second).After(t) {
			return nil
		}
	}
	if wait := last.Add(w.r.cfg.ActivityRecordInterval).Sub(now); !last.IsZero() && wait > 0 {
		w.queue.AddAfter(name, wait)
		return nil
	}
	value := seen.UTC().Format(time.RFC3339)
	if w.r.cfg.DryRun {
		w.r.log.Debug("Would record pod activity on namespace", zap.String("namespace", name), zap.String("lastActivity", value), zap.Bool("dryRun", true))
		w.mu.Lock()
		w.written[name] = now
		w.mu.Unlock()
		return nil
	}
	// A merge patch, not server-side apply: apply would re-create a
	// namespace deleted a moment ago, a patch fails with NotFound.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{identity.LastActivityAnnotation: value}}})
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	_, err = w.r.client.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: Tool.Name})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("annotate namespace %s with %s=%s: %w", name, identity.LastActivityAnnotation, value, err)
	}
	w.mu.Lock()
	w.written[name] = now
	w.mu.Unlock()
	w.r.metrics.activityRecords.Inc()
	w.r.log.Info("Recorded pod activity on namespace", zap.String("namespace", name), zap.String("lastActivity", value))
	return nil
}

// snapshot returns the cached namespaces and pods, waiting for the caches
// to fill (bounded by CacheSyncTimeout).
func (w *watcher) snapshot(ctx context.Context) (snapshot, error) {
	wait, cancel := context.WithTimeout(ctx, w.r.cfg.CacheSyncTimeout)
	defer cancel()
	select {
	case <-w.ready:
	case <-wait.Done():
		return snapshot{}, fmt.Errorf("wait for the namespace and pod caches: %w", errors.Join(wait.Err(), ctx.Err()))
	}
	nss, err := w.namespaces.List(labels.Everything())
	if err != nil {
		return snapshot{}, fmt.Errorf("list cached namespaces: %w", err)
	}
	s := snapshot{namespaces: nss, pods: map[string][]*corev1.Pod{}, observed: map[string]time.Time{}}
	for _, ns := range nss {
		if !w.r.policy.Matches(ns) {
			continue
		}
		objs, err := w.pods.ByIndex(cache.NamespaceIndex, ns.Name)
		if err != nil {
			return snapshot{}, fmt.Errorf("list cached pods of namespace %s: %w", ns.Name, err)
		}
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok {
				s.pods[ns.Name] = append(s.pods[ns.Name], p)
			}
		}
	}
	w.mu.Lock()
	for k, v := range w.observed {
		s.observed[k] = v
	}
	w.mu.Unlock()
	return s, nil
}

// podOwnTime is the latest time recorded in a pod: its activity if finished,
// else its creation or start (it is running now, which the cache shows).
func podOwnTime(pod *corev1.Pod) time.Time {
	if Finished(pod) {
		return PodActivity(pod, time.Time{})
	}
	t := pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		t = later(t, pod.Status.StartTime.Time)
	}
	return t
}

// slim keeps only what the decisions read, so 20,000 cached pods stay small.
func slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace, UID: o.UID, ResourceVersion: o.ResourceVersion,
			CreationTimestamp: o.CreationTimestamp, DeletionTimestamp: o.DeletionTimestamp,
		}}
		p.Status.Phase = o.Status.Phase
		p.Status.StartTime = o.Status.StartTime
		if fin := PodActivity(o, time.Time{}); Finished(o) && !fin.IsZero() {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(fin)}}}}
		}
		return p, nil
	case *corev1.Namespace:
		o.ManagedFields = nil
		return o, nil
	}
	return obj, nil
}

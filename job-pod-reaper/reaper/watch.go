package reaper

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
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

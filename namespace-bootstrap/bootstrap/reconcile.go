package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/pager"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

// Reconcile brings every managed namespace (labelled managed-by
// namespace-bootstrap) back to the template: objects that are missing,
// made from an older template or drifted are applied again. Fields and
// objects the template does not name are left alone, and nothing is
// deleted. It costs one paged list per kind and a write per difference.
func (b *Bootstrapper) Reconcile(ctx context.Context, workers int) error {
	selector := identity.ManagedByLabel + "=" + Tool.Name
	nsRes := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	namespaces, err := b.list(ctx, nsRes, selector)
	if err != nil {
		return err
	}
	if b.metrics != nil {
		b.metrics.managed.Set(float64(len(namespaces)))
	}
	indexes := map[schema.GroupVersionResource]map[string]*unstructured.Unstructured{}
	type job struct {
		ns   string
		objs []*unstructured.Unstructured
		why  []string
	}
	var jobs []job
	unchanged := 0
	for _, live := range namespaces {
		log := b.Log.With(zap.String("namespace", live.GetName()))
		user := live.GetAnnotations()[identity.UserAnnotation]
		if live.GetDeletionTimestamp() != nil {
			continue
		}
		if user == "" {
			log.Warn("Skipped managed namespace without a user annotation", zap.String("annotation", identity.UserAnnotation))
			b.countReconcile("skipped", 1)
			continue
		}
		if want, err := naming.NamespaceForUser(b.NamespacePrefix, user); err != nil || want != live.GetName() {
			log.Warn("Skipped managed namespace whose user does not map to it", zap.String("user", user), zap.String("prefix", b.NamespacePrefix))
			b.countReconcile("skipped", 1)
			continue
		}
		nsObj, objs, err := b.render(user, live.GetName(), live.GetAnnotations())
		if err != nil {
			log.Error("Skipped managed namespace: the template does not render for its user", zap.String("user", user), zap.Error(err))
			b.countReconcile("skipped", 1)
			continue
		}
		j := job{ns: live.GetName()}
		if need, why := NeedsApply(nsObj, live, preservedAnnotations()...); need {
			carryOver(nsObj, live)
			j.objs, j.why = append(j.objs, nsObj), append(j.why, why)
		}
		for _, o := range objs {
			m, err := b.Mapper.Map(o.GroupVersionKind())
			if err != nil {
				return err
			}
			idx, ok := indexes[m.Resource]
			if !ok {
				items, err := b.list(ctx, m.Resource, selector)
				if err != nil {
					return err
				}
				idx = map[string]*unstructured.Unstructured{}
				for _, it := range items {
					idx[it.GetNamespace()+"/"+it.GetName()] = it
				}
				indexes[m.Resource] = idx
			}
			// An object missing from the index (never made, deleted, or its
			// label removed) is applied: server-side apply makes that safe.
			if need, why := NeedsApply(o, idx[o.GetNamespace()+"/"+o.GetName()]); need {
				j.objs, j.why = append(j.objs, o), append(j.why, why)
			}
		}
		if len(j.objs) == 0 {
			unchanged++
			continue
		}
		jobs = append(jobs, j)
	}
	b.countReconcile("unchanged", unchanged)

	if workers < 1 {
		workers = 1
	}
	work := make(chan job)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				log := b.Log.With(zap.String("namespace", j.ns), zap.Bool("dryRun", b.DryRun))
				var err error
				for i, o := range j.objs {
					if err = b.apply(ctx, log, o, j.why[i]); err != nil {
						break
					}
				}
				if err != nil {
					log.Error("Failed to correct namespace", zap.Error(err))
					b.countReconcile("failed", 1)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				b.countReconcile("corrected", 1)
				if b.Recorder != nil && !b.DryRun {
					names := make([]string, len(j.objs))
					for i, o := range j.objs {
						names[i] = Describe(o) + " (" + j.why[i] + ")"
					}
					ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: j.ns, Namespace: j.ns}
					b.Recorder.Eventf(ref, corev1.EventTypeNormal, "Reconciled", "Brought back to the template: %s", strings.Join(names, ", "))
				}
			}
		})
	}
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	b.Log.Info("Reconciled managed namespaces", zap.Int("namespaces", len(namespaces)), zap.Int("corrected", len(jobs)-len(errs)),
		zap.Int("unchanged", unchanged), zap.Int("failed", len(errs)), zap.Bool("dryRun", b.DryRun))
	if len(errs) > 0 {
		return fmt.Errorf("reconcile %d of %d namespaces failed: %w", len(errs), len(jobs), errors.Join(errs...))
	}
	return ctx.Err()
}

func (b *Bootstrapper) countReconcile(result string, n int) {
	if b.metrics != nil && n > 0 {
		b.metrics.reconciled.WithLabelValues(result).Add(float64(n))
	}
}

// list lists every object of res with the label selector, in pages.
func (b *Bootstrapper) list(ctx context.Context, res schema.GroupVersionResource, selector string) ([]*unstructured.Unstructured, error) {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return b.Dynamic.Resource(res).List(ctx, opts)
	})
	p.PageSize = 500
	var out []*unstructured.Unstructured
	err := p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("list %s: unexpected %T", res.Resource, obj)
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s labelled %s: %w", res.Resource, selector, err)
	}
	return out, nil
}

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
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
// deleted. It costs one paged list per kind (per name for the kinds read
// by name: readByName) and a write per difference.
//
// A pass reads (readManaged), plans without a client (planReconcile,
// golden-tested from testdata/reconcile) and applies the plan with
// workers namespaces at a time.
func (b *Bootstrapper) Reconcile(ctx context.Context, workers int) error {
	namespaces, managed, existing, err := b.readManaged(ctx)
	if err != nil {
		return err
	}
	plan := planReconcile(managed, existing)
	b.countReconcile("unchanged", plan.Unchanged)
	errs := b.applyReconcile(ctx, plan.Corrections, workers)
	b.Log.Info("Reconciled managed namespaces", zap.Int("namespaces", namespaces), zap.Int("corrected", len(plan.Corrections)-len(errs)),
		zap.Int("unchanged", plan.Unchanged), zap.Int("failed", len(errs)), zap.Bool("dryRun", b.DryRun))
	if len(errs) > 0 {
		return fmt.Errorf("reconcile %d of %d namespaces failed: %w", len(errs), len(plan.Corrections), errors.Join(errs...))
	}
	return ctx.Err()
}

// managedNamespace is a managed namespace as a reconcile pass reads it: the
// namespace as it is (Live) and the template rendered for its user (the
// Namespace, and the objects in it).
type managedNamespace struct {
	Live      *unstructured.Unstructured
	Namespace *unstructured.Unstructured
	Objects   []*unstructured.Unstructured
}

// objectKey names an object across kinds and namespaces.
type objectKey struct {
	schema.GroupKind
	Namespace, Name string
}

func keyOf(o *unstructured.Unstructured) objectKey {
	return objectKey{GroupKind: o.GroupVersionKind().GroupKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// readByName are the resources a reconcile pass lists one name at a time
// (a field selector on metadata.name): the chart grants them only on the
// names the template writes (resourceNames: the pull secret, the default
// service account), so that the tool's token reads no other Secret.
var readByName = map[schema.GroupVersionResource]bool{
	{Version: "v1", Resource: "secrets"}:         true,
	{Version: "v1", Resource: "serviceaccounts"}: true,
}

// listKey is one list of a reconcile pass: every object of res, or with
// name only those of that name (readByName).
type listKey struct {
	res  schema.GroupVersionResource
	name string
}

// readManaged lists the managed namespaces (returning how many), renders
// the template for each one that is in use and names its user, and reads
// the live objects that the rendered objects name: one paged list per
// kind (per kind and name for readByName), by the managed-by label. Namespaces it cannot render are logged,
// counted as skipped and left out.
func (b *Bootstrapper) readManaged(ctx context.Context) (int, []managedNamespace, map[objectKey]*unstructured.Unstructured, error) {
	selector := identity.ManagedByLabel + "=" + Tool.Name
	nsRes := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	namespaces, err := b.list(ctx, nsRes, selector, "")
	if err != nil {
		return 0, nil, nil, err
	}
	if b.metrics != nil {
		b.metrics.managed.Set(float64(len(namespaces)))
	}
	indexes := map[listKey]map[string]*unstructured.Unstructured{}
	existing := map[objectKey]*unstructured.Unstructured{}
	var managed []managedNamespace
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
		for _, o := range objs {
			m, err := b.Mapper.Map(o.GroupVersionKind())
			if err != nil {
				return 0, nil, nil, err
			}
			key := listKey{res: m.Resource}
			if readByName[m.Resource] {
				key.name = o.GetName()
			}
			idx, ok := indexes[key]
			if !ok {
				items, err := b.list(ctx, m.Resource, selector, key.name)
				if err != nil {
					return 0, nil, nil, err
				}
				idx = map[string]*unstructured.Unstructured{}
				for _, it := range items {
					idx[it.GetNamespace()+"/"+it.GetName()] = it
				}
				indexes[key] = idx
			}
			if it, ok := idx[o.GetNamespace()+"/"+o.GetName()]; ok {
				existing[keyOf(o)] = it
			}
		}
		managed = append(managed, managedNamespace{Live: live, Namespace: nsObj, Objects: objs})
	}
	return len(namespaces), managed, existing, nil
}

// reconcilePlan is what a reconcile pass would write: the namespaces to
// correct, in the order read, and how many are unchanged.
type reconcilePlan struct {
	Corrections []correction
	Unchanged   int
}

// correction is one namespace to bring back to the template: the objects
// to apply, in template order (the Namespace first), and why each.
type correction struct {
	Namespace string
	Objects   []*unstructured.Unstructured
	Why       []string
}

// planReconcile decides, without a client, which rendered objects of each
// managed namespace differ from the live ones (existing, by key; an object
// missing from it is missing, deleted or unlabelled) and must be applied.
// The Namespace keeps the login and identity annotations this tool owns on
// the live one (carryOver).
func planReconcile(managed []managedNamespace, existing map[objectKey]*unstructured.Unstructured) reconcilePlan {
	var plan reconcilePlan
	for _, m := range managed {
		c := correction{Namespace: m.Live.GetName()}
		if need, why := NeedsApply(m.Namespace, m.Live, preservedAnnotations()...); need {
			carryOver(m.Namespace, m.Live)
			c.Objects, c.Why = append(c.Objects, m.Namespace), append(c.Why, why)
		}
		for _, o := range m.Objects {
			// An object missing from the index (never made, deleted, or its
			// label removed) is applied: server-side apply makes that safe.
			if need, why := NeedsApply(o, existing[keyOf(o)]); need {
				c.Objects, c.Why = append(c.Objects, o), append(c.Why, why)
			}
		}
		if len(c.Objects) == 0 {
			plan.Unchanged++
			continue
		}
		plan.Corrections = append(plan.Corrections, c)
	}
	return plan
}

// applyReconcile applies the corrections, workers namespaces at a time, and
// returns the error of every namespace that failed (its first failed
// write: the rest of that namespace is left to the next pass).
func (b *Bootstrapper) applyReconcile(ctx context.Context, corrections []correction, workers int) []error {
	var g errgroup.Group
	g.SetLimit(max(workers, 1))
	var mu sync.Mutex
	var errs []error
	for _, c := range corrections {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := b.correct(ctx, c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil // every namespace is tried: the errors are collected
		})
	}
	_ = g.Wait() // the funcs return nil
	return errs
}

// correct applies one namespace's correction, counts it, and records a
// Reconciled Event on the namespace.
func (b *Bootstrapper) correct(ctx context.Context, c correction) error {
	log := b.Log.With(zap.String("namespace", c.Namespace), zap.Bool("dryRun", b.DryRun))
	for i, o := range c.Objects {
		if err := b.apply(ctx, log, o, c.Why[i]); err != nil {
			log.Error("Failed to correct namespace", zap.Error(err))
			b.countReconcile("failed", 1)
			return err
		}
	}
	b.countReconcile("corrected", 1)
	if b.Recorder != nil && !b.DryRun {
		names := make([]string, len(c.Objects))
		for i, o := range c.Objects {
			names[i] = Describe(o) + " (" + c.Why[i] + ")"
		}
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: c.Namespace, Namespace: c.Namespace}
		b.Recorder.Eventf(ref, corev1.EventTypeNormal, "Reconciled", "Brought back to the template: %s", strings.Join(names, ", "))
	}
	return nil
}

func (b *Bootstrapper) countReconcile(result string, n int) {
	if b.metrics != nil && n > 0 {
		b.metrics.reconciled.WithLabelValues(result).Add(float64(n))
	}
}

// list lists every object of res with the label selector, in pages; with
// name, only the objects of that name (cluster-wide, which RBAC authorizes
// against resourceNames).
func (b *Bootstrapper) list(ctx context.Context, res schema.GroupVersionResource, selector, name string) ([]*unstructured.Unstructured, error) {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return b.Dynamic.Resource(res).List(ctx, opts)
	})
	p.PageSize = 500
	var out []*unstructured.Unstructured
	opts := metav1.ListOptions{LabelSelector: selector}
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	err := p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("list %s: unexpected %T", res.Resource, obj)
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		if name != "" {
			return nil, fmt.Errorf("list %s named %s labelled %s: %w", res.Resource, name, selector, err)
		}
		return nil, fmt.Errorf("list %s labelled %s: %w", res.Resource, selector, err)
	}
	return out, nil
}

package mapsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/ldap-configmap/directory"
	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// Deps are what a Pass needs from main (or a test).
type Deps struct {
	Client   kubernetes.Interface
	Log      *zap.Logger
	Registry prometheus.Registerer
	// Recorder receives Events; nil builds one on Client.
	Recorder record.EventRecorder
}

// Pass is one sync.
type Pass struct {
	cfg    *Config
	client kubernetes.Interface
	log    *zap.Logger
	m      *metrics
	rec    record.EventRecorder
	out    io.Writer
	guard  Guard

	// Stats of the last pass, for benchmarks and tests.
	LastLDAPRequests atomic.Int64
}

// New builds a pass. cfg must have been validated.
func New(cfg *Config, d Deps) (*Pass, error) {
	if d.Client == nil || d.Log == nil || d.Registry == nil {
		return nil, errors.New("mapsync: Client, Log and Registry are required")
	}
	p := &Pass{cfg: cfg, client: d.Client, log: d.Log, m: newMetrics(d.Registry), rec: d.Recorder, out: cfg.Out,
		guard: Guard{MaxDropFraction: cfg.MaxDropFraction, AllowEmpty: cfg.AllowEmpty, AllowLargeDrop: cfg.AllowLargeDrop, MaxBytes: cfg.MaxConfigMapBytes}}
	if p.out == nil {
		p.out = os.Stdout
	}
	if p.rec == nil {
		// Synchronous: a --once run (a CronJob) must not exit before its Events are written.
		p.rec = events.NewSyncRecorder(d.Client, ToolName, clock.RealClock{}, d.Log)
	}
	return p, nil
}

// views lists the filter pairs this configuration reads.
func (p *Pass) views(dir *directory.Config) []directory.View {
	var vs []directory.View
	for _, m := range p.cfg.Mappers {
		vs = append(vs, dir.For(m))
	}
	if p.cfg.NamespaceAnnotations {
		b, g, n := dir.AnnotationViews()
		vs = append(vs, b, g, n)
	}
	return vs
}

// RunOnce reads LDAP once and writes every output from that one snapshot.
func (p *Pass) RunOnce(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			p.m.lastError.Set(1)
		} else {
			p.m.lastError.Set(0)
		}
	}()
	dir, err := p.cfg.directory(true)
	if err != nil {
		p.m.ldapErrors.WithLabelValues(string(directory.OpBind)).Inc()
		return fmt.Errorf("LDAP configuration (outputs left untouched): %w", err)
	}
	views := p.views(dir)
	snap, reqs, err := directory.ReadAll(ctx, dir, views)
	p.m.ldapRequests.Add(float64(reqs))
	p.LastLDAPRequests.Store(reqs)
	if err != nil {
		op := directory.OpOf(err)
		if op == "" {
			op = directory.OpSearch
		}
		p.m.ldapErrors.WithLabelValues(string(op)).Inc()
		return fmt.Errorf("read LDAP (outputs left untouched): %w", err)
	}
	results := map[directory.View]directory.Result{}
	for _, v := range views {
		if _, ok := results[v]; !ok {
			results[v] = directory.Resolve(dir, p.cfg.UserPrefix, snap.Users[v.UserFilter], snap.Groups[v.GroupFilter])
		}
	}
	p.reportSkips(views, results)
	users := map[string]bool{}
	for _, r := range results {
		for k := range r.Identities {
			users[k] = true
		}
	}
	p.m.users.Set(float64(len(users)))
	p.log.Info("Read LDAP", zap.Int("users", len(users)), zap.Int64("ldapRequests", reqs))

	// Plan every output before writing any.
	cms, err := p.planConfigMaps(ctx, dir, results)
	if err != nil {
		return err
	}
	var ann *annotationPlan
	if p.cfg.NamespaceAnnotations {
		if ann, err = p.planAnnotations(ctx, dir, results); err != nil {
			return err
		}
	}
	// Count guards: one refusal holds back every write.
	var refusals []error
	if len(users) == 0 && !p.guard.AllowEmpty {
		refusals = append(refusals, p.guard.CheckCount("all outputs", 0, 0))
	} else {
		for _, c := range cms {
			if err := p.guard.CheckCount("ConfigMap "+c.name, len(c.current), len(c.desired)); err != nil {
				refusals = append(refusals, err)
			}
		}
		// LDAP answered with users (checked above), so no annotated namespace
		// yet is not an empty answer: no user has a namespace so far. Only a
		// drop from namespaces annotated now is guarded.
		if ann != nil && ann.current > 0 {
			if err := p.guard.CheckCount("namespace annotations", ann.current, ann.desired); err != nil {
				refusals = append(refusals, err)
			}
		}
	}
	if len(refusals) > 0 {
		for _, r := range refusals {
			var re *RefusedError
			if errors.As(r, &re) {
				p.m.refused.WithLabelValues(re.Reason).Inc()
			}
		}
		p.m.errors.WithLabelValues("all").Inc()
		return fmt.Errorf("nothing written: %w", errors.Join(refusals...))
	}
	var errs []error
	// Size guard: ConfigMaps are all held back if one is too large (they
	// come from one snapshot); the annotations still go.
	var sizeErrs []error
	for _, c := range cms {
		if err := p.guard.CheckSize("ConfigMap "+c.name, c.size); err != nil {
			sizeErrs = append(sizeErrs, err)
			p.m.refused.WithLabelValues(RefusedSize).Inc()
			p.m.errors.WithLabelValues(c.mapper).Inc()
		}
	}
	if len(sizeErrs) > 0 {
		errs = append(errs, fmt.Errorf("no ConfigMap written: %w", errors.Join(sizeErrs...)))
	} else {
		for _, c := range cms {
			if err := p.writeConfigMap(ctx, c); err != nil {
				p.m.errors.WithLabelValues(c.mapper).Inc()
				errs = append(errs, err)
			}
		}
	}
	if ann != nil {
		if err := p.writeAnnotations(ctx, ann); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxSkipLogs bounds the per-entry log lines of one pass (a directory with
// thousands of machine accounts would otherwise flood the log).
const maxSkipLogs = 100

// reportSkips logs and counts each skipped entry once per pass.
func (p *Pass) reportSkips(views []directory.View, results map[directory.View]directory.Result) {
	seen := map[directory.Skip]bool{}
	for _, v := range views {
		for _, s := range results[v].Skipped {
			if seen[s] {
				continue
			}
			seen[s] = true
			p.m.skipped.WithLabelValues(s.Reason).Inc()
			if len(seen) <= maxSkipLogs {
				p.log.Warn("Skipped LDAP entry", zap.String("dn", s.DN), zap.String("name", s.Name),
					zap.String("reason", s.Reason), zap.String("detail", s.Detail))
			}
		}
	}
	if len(seen) > maxSkipLogs {
		p.log.Warn("Skipped more LDAP entries (not logged one by one)", zap.Int("more", len(seen)-maxSkipLogs), zap.Int("skipped", len(seen)))
	}
}

type cmPlan struct {
	mapper, name string
	current      map[string]string
	exists       bool
	labelled     bool
	desired      map[string]string
	diff         Diff
	size         int
}

func (p *Pass) planConfigMaps(ctx context.Context, dir *directory.Config, results map[directory.View]directory.Result) ([]cmPlan, error) {
	var out []cmPlan
	for _, m := range p.cfg.Mappers {
		c := cmPlan{mapper: m, name: ConfigMapName(m), desired: Render(m, results[dir.For(m)].Identities)}
		cur, err := p.client.CoreV1().ConfigMaps(p.cfg.Namespace).Get(ctx, c.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("get ConfigMap %s/%s (nothing written): %w", p.cfg.Namespace, c.name, err)
		default:
			c.exists = true
			c.current = cur.Data
			c.labelled = cur.Labels[identity.ManagedByLabel] == ToolName
		}
		c.diff = DiffData(c.current, c.desired)
		c.size = DataSize(c.desired)
		p.m.keys.WithLabelValues(c.name).Set(float64(len(c.desired)))
		p.m.size.WithLabelValues(c.name).Set(float64(c.size))
		out = append(out, c)
	}
	return out, nil
}

const logKeysMax = 50

func firstN(s []string) []string {
	if len(s) > logKeysMax {
		return s[:logKeysMax]
	}
	return s
}

func (p *Pass) writeConfigMap(ctx context.Context, c cmPlan) error {
	ref := p.cfg.Namespace + "/" + c.name
	if c.exists && c.labelled && c.diff.Empty() {
		p.log.Debug("ConfigMap unchanged", zap.String("configMap", ref), zap.Int("keys", len(c.desired)))
		return nil
	}
	fields := []zap.Field{zap.String("configMap", ref), zap.Bool("dryRun", p.cfg.DryRun), zap.Int("keys", len(c.desired)),
		zap.Int("added", len(c.diff.Added)), zap.Int("removed", len(c.diff.Removed)), zap.Int("changed", len(c.diff.Changed)),
		zap.Strings("addedKeys", firstN(c.diff.Added)), zap.Strings("removedKeys", firstN(c.diff.Removed)), zap.Strings("changedKeys", firstN(c.diff.Changed)),
		zap.Int("bytes", c.size)}
	if p.cfg.DryRun {
		p.printConfigMapDiff(ref, c)
		p.log.Info("Would update ConfigMap", fields...)
		return nil
	}
	ac := corev1ac.ConfigMap(c.name, p.cfg.Namespace).
		WithLabels(map[string]string{identity.ManagedByLabel: ToolName}).
		WithData(c.desired)
	res, err := p.client.CoreV1().ConfigMaps(p.cfg.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: ToolName, Force: true})
	if err != nil {
		p.m.writes.WithLabelValues("configmap", "error").Inc()
		return fmt.Errorf("apply ConfigMap %s: %w", ref, err)
	}
	p.m.writes.WithLabelValues("configmap", "success").Inc()
	// Keys another field manager owns (e.g. written by the original tool
	// with Update) survive an apply that omits them: remove them.
	var stale []string
	for k := range res.Data {
		if _, ok := c.desired[k]; !ok {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		if res, err = p.removeKeys(ctx, c.name, stale); err != nil {
			p.m.writes.WithLabelValues("configmap", "error").Inc()
			return err
		}
		p.m.writes.WithLabelValues("configmap", "success").Inc()
	}
	p.log.Info("Updated ConfigMap", fields...)
	p.rec.Eventf(res, corev1.EventTypeNormal, "Synced", "Synced %d users from LDAP: %d added, %d removed, %d changed",
		len(c.desired), len(c.diff.Added), len(c.diff.Removed), len(c.diff.Changed))
	return nil
}

func (p *Pass) removeKeys(ctx context.Context, name string, keys []string) (*corev1.ConfigMap, error) {
	null := map[string]any{}
	for _, k := range keys {
		null[k] = nil
	}
	var res *corev1.ConfigMap
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		body, _ := json.Marshal(map[string]any{"data": null})
		var err error
		res, err = p.client.CoreV1().ConfigMaps(p.cfg.Namespace).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: ToolName})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("remove %d keys owned by another field manager from ConfigMap %s/%s: %w", len(keys), p.cfg.Namespace, name, err)
	}
	p.log.Info("Removed ConfigMap keys owned by another field manager", zap.String("configMap", p.cfg.Namespace+"/"+name), zap.Strings("keys", firstN(keys)))
	return res, nil
}

func (p *Pass) printConfigMapDiff(ref string, c cmPlan) {
	fmt.Fprintf(p.out, "--- ConfigMap %s: %d added, %d removed, %d changed\n", ref, len(c.diff.Added), len(c.diff.Removed), len(c.diff.Changed))
	for _, k := range c.diff.Added {
		fmt.Fprintf(p.out, "+ %s: %q\n", k, c.desired[k])
	}
	for _, k := range c.diff.Removed {
		fmt.Fprintf(p.out, "- %s: %q\n", k, c.current[k])
	}
	for _, k := range c.diff.Changed {
		fmt.Fprintf(p.out, "~ %s: %q -> %q\n", k, c.current[k], c.desired[k])
	}
}

type annotationPlan struct {
	changes          []AnnotationChange
	current, desired int
	before           map[string]map[string]string
}

func (p *Pass) planAnnotations(ctx context.Context, dir *directory.Config, results map[directory.View]directory.Result) (*annotationPlan, error) {
	b, g, n := dir.AnnotationViews()
	ids := directory.AnnotationIdentities(results[b], results[g], results[n])
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
	plan := &annotationPlan{changes: PlanAnnotations(p.cfg.UserPrefix, namespaces, ids), before: namespaces}
	for name, a := range namespaces {
		if !strings.HasPrefix(name, p.cfg.UserPrefix) {
			continue
		}
		if _, ok := a[identity.UserAnnotation]; ok {
			plan.current++
		}
		if _, ok := ids[name]; ok {
			plan.desired++
		}
	}
	return plan, nil
}

func (p *Pass) writeAnnotations(ctx context.Context, plan *annotationPlan) error {
	if p.cfg.DryRun {
		for _, c := range plan.changes {
			if c.Remove {
				fmt.Fprintf(p.out, "- Namespace %s: remove identity annotations (user %q not in LDAP)\n", c.Namespace, c.User)
				p.log.Info("Would remove identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", true))
				continue
			}
			keys := identity.IdentityAnnotations()
			for _, k := range keys {
				if old, ok := plan.before[c.Namespace][k]; !ok || old != c.Set[k] {
					fmt.Fprintf(p.out, "~ Namespace %s: %s=%q (was %q)\n", c.Namespace, k, c.Set[k], old)
				}
			}
			p.log.Info("Would set identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", true))
		}
		p.m.annotated.Set(float64(plan.desired))
		return nil
	}
	work := make(chan AnnotationChange)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(p.cfg.Workers, max(len(plan.changes), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := p.applyAnnotation(ctx, c); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range plan.changes {
		if ctx.Err() != nil {
			break
		}
		work <- c
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	p.m.annotated.Set(float64(plan.desired))
	if len(errs) > 0 {
		return fmt.Errorf("namespace annotations: %d of %d changes failed: %w", len(errs), len(plan.changes), errors.Join(firstErrs(errs)...))
	}
	return nil
}

func firstErrs(errs []error) []error {
	if len(errs) > 5 {
		return append(slices.Clone(errs[:5]), fmt.Errorf("and %d more", len(errs)-5))
	}
	return errs
}

func (p *Pass) applyAnnotation(ctx context.Context, c AnnotationChange) error {
	nsClient := p.client.CoreV1().Namespaces()
	if c.Remove {
		null := map[string]any{}
		for _, k := range identity.IdentityAnnotations() {
			null[k] = nil
		}
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": null}})
		ns, err := nsClient.Patch(ctx, c.Namespace, types.MergePatchType, body, metav1.PatchOptions{FieldManager: ToolName})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			p.m.writes.WithLabelValues("namespace", "error").Inc()
			return fmt.Errorf("remove identity annotations from namespace %s: %w", c.Namespace, err)
		}
		p.m.writes.WithLabelValues("namespace", "success").Inc()
		p.log.Info("Removed identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", false))
		p.rec.Eventf(ns, corev1.EventTypeWarning, "IdentityRemoved",
			"User %q is no longer in LDAP (or is filtered out): identity annotations removed, new pods will be denied", c.User)
		return nil
	}
	// A merge patch, not an apply: an apply would create a namespace deleted
	// since the list, and this tool never creates namespaces.
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": c.Set}})
	_, err := nsClient.Patch(ctx, c.Namespace, types.MergePatchType, body, metav1.PatchOptions{FieldManager: ToolName})
	if apierrors.IsNotFound(err) {
		return nil // deleted since the list; never create it
	}
	if err != nil {
		p.m.writes.WithLabelValues("namespace", "error").Inc()
		return fmt.Errorf("apply identity annotations on namespace %s: %w", c.Namespace, err)
	}
	p.m.writes.WithLabelValues("namespace", "success").Inc()
	p.log.Info("Set identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", false))
	return nil
}

package mapsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

// Deps are what a Pass needs from main (or a test).
type Deps struct {
	Client   kubernetes.Interface
	Log      *zap.Logger
	Registry prometheus.Registerer
	// Recorder receives Events; nil builds one on Client.
	Recorder record.EventRecorder
	// Clock times the full resyncs; nil is the real clock.
	Clock clock.PassiveClock
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
	clock  clock.PassiveClock

	// Kept between passes: the LDAP entries (for incremental reads) and the
	// identities resolved from them (reused while LDAP is unchanged).
	cache ldapdir.Cache
	known map[string]knownConfigMap
	// diffs are each map's diff from its contents at a resourceVersion ("":
	// absent) to resolution gen's rendering, for the maps not written since.
	diffs map[string]diffMemo
	// gen counts resolutions; rendered holds each mapper's data of one.
	gen           int
	rendered      map[string]rendered
	results       map[ldapdir.View]ldapdir.Result
	announcedFull bool
	// Computed once per resolution (gen): the number of users and the
	// identities the annotations carry.
	usersGen, users int
	annGen          int
	annIDs          map[string]ldapdir.Identity
	// nsInformer watches namespaces while Start runs (daemon mode).
	nsInformer atomic.Pointer[cache.SharedIndexInformer]

	// Stats of the last pass, for benchmarks and tests.
	LastLDAPRequests atomic.Int64
	// LastAnnotationWrites is how long the namespace annotation writes of
	// the last pass took (nanoseconds).
	LastAnnotationWrites atomic.Int64
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
	p.known = map[string]knownConfigMap{}
	p.diffs = map[string]diffMemo{}
	p.rendered = map[string]rendered{}
	if p.clock = d.Clock; p.clock == nil {
		p.clock = clock.RealClock{}
	}
	if p.rec == nil {
		// Synchronous: a --once run (a CronJob) must not exit before its Events are written.
		p.rec = events.NewSyncRecorder(d.Client, Tool.Name, clock.RealClock{}, d.Log)
	}
	return p, nil
}

// views lists the filter pairs this configuration reads.
func (p *Pass) views(dir *ldapConfig) []ldapdir.View {
	var vs []ldapdir.View
	for _, m := range p.cfg.Mappers {
		vs = append(vs, dir.For(m))
	}
	if p.cfg.NamespaceAnnotations {
		vs = append(vs, dir.AnnotationViews().List()...)
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
		p.m.ldapErrors.WithLabelValues(string(ldapdir.OpBind)).Inc()
		return fmt.Errorf("LDAP configuration (outputs left untouched): %w", err)
	}
	views := p.views(dir)
	snap, st, reqs, err := ldapdir.ReadCached(ctx, dir.Config, views, &p.cache, ldapdir.ReadOptions{Now: p.clock.Now(), FullEvery: p.cfg.FullResyncInterval})
	p.m.ldapRequests.Add(float64(reqs))
	p.LastLDAPRequests.Store(reqs)
	if err != nil {
		op := ldapdir.OpOf(err)
		if op == "" {
			op = ldapdir.OpSearch
		}
		p.m.ldapErrors.WithLabelValues(string(op)).Inc()
		return fmt.Errorf("read LDAP (outputs left untouched): %w", err)
	}
	p.reportRead(st)
	results := p.results
	if !st.Unchanged || results == nil {
		results = map[ldapdir.View]ldapdir.Result{}
		for _, v := range views {
			if _, ok := results[v]; ok {
				continue
			}
			if prev, ok := p.results[v]; ok && st.Delta != nil {
				// Only the users the changes can touch.
				results[v] = ldapdir.ResolveChanges(dir.Config, p.cfg.UserPrefix, v, prev, snap, st.Delta)
			} else {
				results[v] = ldapdir.Resolve(dir.Config, p.cfg.UserPrefix, snap.Users[v.UserFilter], snap.Groups[v.GroupFilter])
			}
		}
		p.results = results
		p.gen++ // the rendered maps are stale
	}
	p.reportSkips(views, results)
	results, collisions := p.refuseCollisions(views, results)
	if p.usersGen != p.gen {
		users := map[string]bool{}
		for _, r := range results {
			for k := range r.Identities {
				users[k] = true
			}
		}
		p.users, p.usersGen = len(users), p.gen
	}
	users := p.users
	p.m.users.Set(float64(users))
	p.log.Info("Read LDAP", zap.Int("users", users), zap.Int64("ldapRequests", reqs), zap.Bool("full", st.Full),
		zap.String("fullReason", st.Reason), zap.Bool("unchanged", st.Unchanged), zap.Int("changedEntries", st.Changed), zap.Int("deletedEntries", st.Deleted))

	// Read the outputs as they are, plan every output (Decide) before
	// writing any, apply.
	state := State{Users: users}
	if state.ConfigMaps, err = p.readConfigMaps(ctx, dir, results); err != nil {
		return err
	}
	if p.cfg.NamespaceAnnotations {
		if state.Annotations, err = p.readAnnotations(ctx, dir, results, collisions); err != nil {
			return err
		}
	}
	plan := Decide(p.cfg.Namespace, p.guard, state)
	p.rememberDiffs(state, plan)
	return p.apply(ctx, plan)
}

// apply records the plan's metrics and refusals and writes what it says.
func (p *Pass) apply(ctx context.Context, plan Plan) error {
	for _, c := range plan.ConfigMaps {
		p.m.keys.WithLabelValues(c.Name).Set(float64(len(c.Desired)))
		p.m.size.WithLabelValues(c.Name).Set(float64(c.Size))
		p.m.stored.WithLabelValues(c.Name).Set(float64(c.Stored))
	}
	if len(plan.Refused) > 0 {
		for _, r := range plan.Refused {
			var re *RefusedError
			if errors.As(r, &re) {
				p.m.refused.WithLabelValues(re.Reason).Inc()
			}
		}
		p.m.errors.WithLabelValues("all").Inc()
		return fmt.Errorf("nothing written: %w", errors.Join(plan.Refused...))
	}
	var errs []error
	// Size guard, every map on its own and all checked before the first
	// write: a map too large is refused (Warning Event, metrics) and the
	// maps that fit are written, all from this pass's one LDAP read.
	var fits []ConfigMapPlan
	for _, c := range plan.ConfigMaps {
		if err := c.TooLarge; err != nil {
			p.m.refused.WithLabelValues(RefusedSize).Inc()
			p.m.errors.WithLabelValues(c.Mapper).Inc()
			p.log.Error("Refused to write ConfigMap", zap.String("configMap", p.cfg.Namespace+"/"+c.Name), zap.Int("bytes", c.Size), zap.Int("storedBytes", c.Stored), zap.Error(err))
			p.rec.Eventf(p.configMapRef(c.Name), corev1.EventTypeWarning, "TooLarge", "Not updated: %v", err)
			errs = append(errs, err)
			continue
		}
		fits = append(fits, c)
	}
	for _, c := range fits {
		if err := p.writeConfigMap(ctx, c); err != nil {
			p.m.errors.WithLabelValues(c.Mapper).Inc()
			errs = append(errs, err)
		}
	}
	if plan.Annotations != nil {
		start := p.clock.Now()
		err := p.writeAnnotations(ctx, plan.Annotations)
		p.LastAnnotationWrites.Store(int64(p.clock.Since(start)))
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rememberDiffs keeps the diffs Decide computed, for the next passes of
// this resolution (a map refused or absent is compared again otherwise).
func (p *Pass) rememberDiffs(s State, plan Plan) {
	for i, c := range s.ConfigMaps {
		if c.Diff != nil {
			continue
		}
		rv := ""
		if c.Current != nil {
			rv = c.Current.ResourceVersion
		}
		p.diffs[plan.ConfigMaps[i].Name] = diffMemo{gen: p.gen, resourceVersion: rv, diff: plan.ConfigMaps[i].Diff}
	}
}

// refuseCollisions gathers the namespaces that several LDAP entries map to
// in any view, returns the results without them in any view's identities
// (no ConfigMap and no annotation may name either user; the results given
// are kept as resolved, for the next incremental resolution) and reports
// each one: a log line, a Warning Event on the tool's own Pod (or first
// ConfigMap) and the gauge.
func (p *Pass) refuseCollisions(views []ldapdir.View, results map[ldapdir.View]ldapdir.Result) (map[ldapdir.View]ldapdir.Result, map[string][]string) {
	all := map[string][]string{}
	for _, v := range views {
		for key, names := range results[v].Collisions {
			all[key] = slices.Compact(slices.Sorted(slices.Values(append(all[key], names...))))
		}
	}
	if len(all) > 0 {
		filtered := make(map[ldapdir.View]ldapdir.Result, len(results))
		for v, r := range results {
			for key := range all {
				if _, ok := r.Identities[key]; ok {
					r.Identities = maps.Clone(r.Identities)
					for key := range all {
						delete(r.Identities, key)
					}
					break
				}
			}
			filtered[v] = r
		}
		results = filtered
	}
	p.m.collisions.Set(float64(len(all)))
	for _, key := range slices.Sorted(maps.Keys(all)) {
		names := all[key]
		p.log.Warn("Refused colliding LDAP entries", zap.String("namespace", key), zap.Strings("users", names))
		p.rec.Eventf(p.eventTarget(), corev1.EventTypeWarning, "IdentityCollision",
			"LDAP entries %s all map to namespace %s: refused for all of them (no identity in any ConfigMap, the namespace's annotations left as they are); rename all but one in LDAP",
			strings.Join(quoteAll(names), ", "), key)
	}
	return results, all
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}

// eventTarget is the object in the tool's own namespace that carries Events
// about no one object: its Pod when --pod-name is set (the chart sets it),
// else its first ConfigMap.
func (p *Pass) eventTarget() *corev1.ObjectReference {
	if p.cfg.PodName != "" && p.cfg.PodNamespace != "" {
		return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.cfg.PodNamespace, Name: p.cfg.PodName}
	}
	name := ConfigMapName(MapperUID)
	if len(p.cfg.Mappers) > 0 {
		name = ConfigMapName(p.cfg.Mappers[0])
	}
	return &corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: p.cfg.Namespace, Name: name}
}

// reportRead counts the read by kind and announces, once, that the server
// offers no change tracking (every pass then reads the whole directory).
func (p *Pass) reportRead(st ldapdir.ReadStats) {
	switch {
	case st.Unchanged:
		p.m.reads.WithLabelValues("unchanged").Inc()
	case st.Full:
		p.m.reads.WithLabelValues("full").Inc()
	default:
		p.m.reads.WithLabelValues("incremental").Inc()
	}
	incremental := st.Mode != ldapdir.TrackNone && p.cfg.FullResyncInterval > 0
	if incremental {
		p.m.incremental.Set(1)
	} else {
		p.m.incremental.Set(0)
	}
	if !incremental && p.cfg.FullResyncInterval > 0 && !p.announcedFull {
		p.announcedFull = true
		p.log.Warn("Fell back to full LDAP reads: the server offers no change tracking (entryCSN, modifyTimestamp or uSNChanged)")
	}
}

// maxSkipLogs bounds the per-entry log lines of one pass (a directory with
// thousands of machine accounts would otherwise flood the log).
const maxSkipLogs = 100

// reportSkips logs and counts each skipped entry once per pass.
func (p *Pass) reportSkips(views []ldapdir.View, results map[ldapdir.View]ldapdir.Result) {
	seen := map[ldapdir.Skip]bool{}
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

// readConfigMaps renders each mapper's map (only what changed since the
// last rendering) and reads it as it is: a metadata-only GET when the data
// kept from the tool's last write or read is still current. The diff is
// passed on when already known.
func (p *Pass) readConfigMaps(ctx context.Context, dir *ldapConfig, results map[ldapdir.View]ldapdir.Result) ([]ConfigMapState, error) {
	var out []ConfigMapState
	// Per view and previous rendering: mappers share views.
	type since struct {
		view ldapdir.View
		gen  int
	}
	changedKeys := map[since][]string{}
	for _, m := range p.cfg.Mappers {
		ids := results[dir.For(m)].Identities
		r, ok := p.rendered[m]
		var changes *Diff // from the previous rendering, when rendered from it
		switch {
		case ok && r.gen == p.gen:
		case ok: // LDAP changed since: render what changed
			k := since{dir.For(m), r.gen}
			keys, done := changedKeys[k]
			if !done {
				keys = ChangedKeys(r.ids, ids)
				changedKeys[k] = keys
			}
			data, d := RenderChanges(m, r.data, ids, keys)
			changes = &d
			r = rendered{gen: p.gen, ids: ids, data: data, from: r.gen}
			p.rendered[m] = r
		default:
			r = rendered{gen: p.gen, ids: ids, data: Render(m, ids), from: -1}
			p.rendered[m] = r
		}
		c := ConfigMapState{Mapper: m, Desired: r.data}
		name := ConfigMapName(m)
		cur, fromCache, err := p.getConfigMap(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("get ConfigMap %s/%s (nothing written): %w", p.cfg.Namespace, name, err)
		}
		c.Current = cur
		rv := ""
		if cur != nil {
			rv = cur.ResourceVersion
		}
		switch k, memo := p.known[name], p.diffs[name]; {
		case fromCache && k.gen == p.gen:
			c.Diff = &Diff{} // the map holds what this tool wrote from these identities
		case fromCache && changes != nil && k.gen == r.from:
			c.Diff = changes // it holds the previous rendering
		case memo.gen == p.gen && memo.resourceVersion == rv:
			c.Diff = &memo.diff // computed by an earlier pass (a map refused, or absent)
		}
		out = append(out, c)
	}
	return out, nil
}

// getConfigMap returns a ConfigMap (nil if absent). When the tool wrote or
// read it before, a metadata-only GET tells whether it changed since; if
// not, the data kept from then is used instead of downloading up to 1 MiB
// (fromCache).
func (p *Pass) getConfigMap(ctx context.Context, name string) (cm *corev1.ConfigMap, fromCache bool, err error) {
	if k, ok := p.known[name]; ok {
		var meta metav1.PartialObjectMetadata
		err := p.client.CoreV1().RESTClient().Get().Namespace(p.cfg.Namespace).Resource("configmaps").Name(name).
			SetHeader("Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").Do(ctx).Into(&meta)
		switch {
		case apierrors.IsNotFound(err):
			delete(p.known, name)
			return nil, false, nil
		case err != nil:
			return nil, false, err
		case meta.ResourceVersion == k.resourceVersion:
			return &corev1.ConfigMap{ObjectMeta: meta.ObjectMeta, Data: k.data}, true, nil
		}
	}
	cur, err := p.client.CoreV1().ConfigMaps(p.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		delete(p.known, name)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	p.known[name] = knownConfigMap{resourceVersion: cur.ResourceVersion, data: cur.Data, gen: -1}
	return cur, false, nil
}

// knownConfigMap is a ConfigMap's data at a resourceVersion; gen is the
// resolution it was rendered from when this tool wrote it (-1 if read).
type knownConfigMap struct {
	resourceVersion string
	data            map[string]string
	gen             int
}

// diffMemo is a map's diff computed in a pass (gen starts at 1, so the
// zero value matches none).
type diffMemo struct {
	gen             int
	resourceVersion string
	diff            Diff
}

// rendered is a mapper's data rendered from resolution gen's identities
// ids, itself from the rendering of resolution from (-1: from scratch).
type rendered struct {
	gen, from int
	ids       map[string]ldapdir.Identity
	data      map[string]string
}

// dataPatch is the JSON merge patch from cur to the desired data: changed
// and added keys, removed keys as null, the managed-by label, cur's
// resourceVersion as a precondition (a conflict if the map changed since),
// and managedFields reset to one empty entry, so that the stored object
// carries none (server-side apply would list every key there, and the
// stored object of a map that fits the 1 MiB data limit would pass etcd's).
func dataPatch(cur *corev1.ConfigMap, desired map[string]string) []byte {
	data := map[string]any{}
	for k, v := range desired {
		if old, ok := cur.Data[k]; !ok || old != v {
			data[k] = v
		}
	}
	for k := range cur.Data {
		if _, ok := desired[k]; !ok {
			data[k] = nil
		}
	}
	body, _ := json.Marshal(map[string]any{ // strings and nulls always marshal
		"metadata": map[string]any{
			"resourceVersion": cur.ResourceVersion,
			"managedFields":   []map[string]any{{}},
			"labels":          map[string]string{identity.ManagedByLabel: Tool.Name},
		},
		"data": data,
	})
	return body
}

// configMapRef refers to a ConfigMap for Events, whether or not it exists.
func (p *Pass) configMapRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: p.cfg.Namespace, Name: name}
}

const logKeysMax = 50

func firstN(s []string) []string {
	if len(s) > logKeysMax {
		return s[:logKeysMax]
	}
	return s
}

func (p *Pass) writeConfigMap(ctx context.Context, c ConfigMapPlan) error {
	ref := p.cfg.Namespace + "/" + c.Name
	if !c.Write {
		p.log.Debug("ConfigMap unchanged", zap.String("configMap", ref), zap.Int("keys", len(c.Desired)))
		return nil
	}
	fields := []zap.Field{zap.String("configMap", ref), zap.Bool("dryRun", p.cfg.DryRun), zap.Int("keys", len(c.Desired)),
		zap.Int("added", len(c.Diff.Added)), zap.Int("removed", len(c.Diff.Removed)), zap.Int("changed", len(c.Diff.Changed)),
		zap.Strings("addedKeys", firstN(c.Diff.Added)), zap.Strings("removedKeys", firstN(c.Diff.Removed)), zap.Strings("changedKeys", firstN(c.Diff.Changed)),
		zap.Int("bytes", c.Size), zap.Int("storedBytes", c.Stored)}
	if p.cfg.DryRun {
		p.printConfigMapDiff(ref, c)
		p.log.Info("Would update ConfigMap", fields...)
		return nil
	}
	cms := p.client.CoreV1().ConfigMaps(p.cfg.Namespace)
	cur := c.Current
	if cur == nil {
		// Create it empty with server-side apply (a PATCH, which RBAC can
		// limit to the map's name; its managedFields list only the label),
		// then write the data as below.
		ac := corev1ac.ConfigMap(c.Name, p.cfg.Namespace).WithLabels(map[string]string{identity.ManagedByLabel: Tool.Name})
		created, err := cms.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: Tool.Name, Force: true})
		if err != nil {
			p.m.writes.WithLabelValues("configmap", "error").Inc()
			return fmt.Errorf("create ConfigMap %s: %w", ref, err)
		}
		p.m.writes.WithLabelValues("configmap", "success").Inc()
		cur = created
	}
	var res *corev1.ConfigMap
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		res, err = cms.Patch(ctx, c.Name, types.MergePatchType, dataPatch(cur, c.Desired), metav1.PatchOptions{FieldManager: Tool.Name})
		if apierrors.IsConflict(err) {
			// Changed by someone since the read: patch the new version.
			if fresh, gerr := cms.Get(ctx, c.Name, metav1.GetOptions{}); gerr == nil {
				cur = fresh
			}
		}
		return err
	})
	if err != nil {
		p.m.writes.WithLabelValues("configmap", "error").Inc()
		delete(p.known, c.Name)
		return fmt.Errorf("write ConfigMap %s: %w", ref, err)
	}
	p.m.writes.WithLabelValues("configmap", "success").Inc()
	p.known[c.Name] = knownConfigMap{resourceVersion: res.ResourceVersion, data: c.Desired, gen: p.gen}
	p.log.Info("Updated ConfigMap", fields...)
	p.rec.Eventf(res, corev1.EventTypeNormal, "Synced", "Synced %d users from LDAP: %d added, %d removed, %d changed",
		len(c.Desired), len(c.Diff.Added), len(c.Diff.Removed), len(c.Diff.Changed))
	return nil
}

func (p *Pass) printConfigMapDiff(ref string, c ConfigMapPlan) {
	fmt.Fprintf(p.out, "--- ConfigMap %s: %d added, %d removed, %d changed\n", ref, len(c.Diff.Added), len(c.Diff.Removed), len(c.Diff.Changed))
	for _, k := range c.Diff.Added {
		fmt.Fprintf(p.out, "+ %s: %q\n", k, c.Desired[k])
	}
	for _, k := range c.Diff.Removed {
		fmt.Fprintf(p.out, "- %s: %q\n", k, c.currentData()[k])
	}
	for _, k := range c.Diff.Changed {
		fmt.Fprintf(p.out, "~ %s: %q -> %q\n", k, c.currentData()[k], c.Desired[k])
	}
}

// readAnnotations reads the namespaces (from the watch when it has synced)
// and gathers the identities their annotations come from.
func (p *Pass) readAnnotations(ctx context.Context, dir *ldapConfig, results map[ldapdir.View]ldapdir.Result, collisions map[string][]string) (*AnnotationState, error) {
	if p.annGen != p.gen || p.annIDs == nil {
		av := dir.AnnotationViews()
		if av.Base == av.GIDs && av.Base == av.Groups {
			// One view (no per-mapper filters): its identities as they are.
			p.annIDs = results[av.Base].Identities
		} else {
			p.annIDs = ldapdir.AnnotationIdentities(results[av.Base], results[av.GIDs], results[av.Groups])
		}
		p.annGen = p.gen
	}
	ids := p.annIDs
	namespaces, watched := p.watchedNamespaces()
	if !watched {
		var err error
		if namespaces, err = p.listNamespaces(ctx); err != nil {
			return nil, err
		}
	}
	return &AnnotationState{Prefix: p.cfg.UserPrefix, Namespaces: namespaces, Identities: ids, Collisions: collisions}, nil
}

func (p *Pass) writeAnnotations(ctx context.Context, plan *AnnotationPlan) error {
	if p.cfg.DryRun {
		for _, c := range plan.Changes {
			if c.Remove {
				fmt.Fprintf(p.out, "- Namespace %s: remove identity annotations (user %q not in LDAP)\n", c.Namespace, c.User)
				p.log.Info("Would remove identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", true))
				continue
			}
			for _, k := range OwnedAnnotations() {
				if old, ok := plan.before[c.Namespace][k]; !ok || old != c.Set[k] {
					fmt.Fprintf(p.out, "~ Namespace %s: %s=%q (was %q)\n", c.Namespace, k, c.Set[k], old)
				}
			}
			p.log.Info("Would set identity annotations", zap.String("namespace", c.Namespace), zap.String("user", c.User), zap.Bool("dryRun", true))
		}
		p.m.annotated.Set(float64(plan.Desired))
		return nil
	}
	// --workers writes at once; a failed write does not stop the others.
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	g.SetLimit(p.cfg.Workers)
	for _, c := range plan.Changes {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := p.applyAnnotation(ctx, c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // the errors are gathered above
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	p.m.annotated.Set(float64(plan.Desired))
	if len(errs) > 0 {
		return fmt.Errorf("namespace annotations: %d of %d changes failed: %w", len(errs), len(plan.Changes), errors.Join(firstErrs(errs)...))
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
		for _, k := range OwnedAnnotations() {
			null[k] = nil
		}
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": null}})
		ns, err := nsClient.Patch(ctx, c.Namespace, types.MergePatchType, body, metav1.PatchOptions{FieldManager: Tool.Name})
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
	_, err := nsClient.Patch(ctx, c.Namespace, types.MergePatchType, body, metav1.PatchOptions{FieldManager: Tool.Name})
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

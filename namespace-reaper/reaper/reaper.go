package reaper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/namespace-reaper/promactivity"
)

// Deps are what the reaper needs besides its Config.
type Deps struct {
	Client kubernetes.Interface
	// Clock gives "now" to the decisions and times the watch's write throttle.
	Clock    clock.WithTicker
	Log      *zap.Logger
	Registry prometheus.Registerer
	Recorder record.EventRecorder
	// RetryClock times the waits between Prometheus attempts; nil means
	// the real clock (Clock may be a fake one that tests move by hand).
	RetryClock clock.Clock
	// Watch: Start runs informers and passes decide from their caches.
	// Without it (--once) each pass lists namespaces and pods cluster-wide.
	Watch bool
}

// Reaper is the pass. In watch mode it also implements daemon.Starter.
type Reaper struct {
	cfg      Config
	policy   Policy
	client   kubernetes.Interface
	clock    clock.WithTicker
	log      *zap.Logger
	recorder record.EventRecorder
	metrics  *metrics
	prom     *promactivity.Client
	query    string
	watch    *watcher // nil in --once mode
}

// New builds the reaper from a validated Config.
func New(c Config, d Deps) (*Reaper, error) {
	if c.policy.ReapAfter == 0 {
		return nil, errors.New("reaper: Config.Validate was not called")
	}
	if d.Client == nil || d.Clock == nil || d.Log == nil || d.Registry == nil || d.Recorder == nil {
		return nil, errors.New("reaper: Client, Clock, Log, Registry and Recorder are required")
	}
	r := &Reaper{cfg: c, policy: c.policy, client: d.Client, clock: d.Clock, log: d.Log, recorder: d.Recorder,
		metrics: newMetrics(d.Registry)}
	if c.Prometheus.Address != "" {
		retryClock := d.RetryClock
		if retryClock == nil {
			retryClock = clock.RealClock{}
		}
		p, err := promactivity.New(c.Prometheus, retryClock, d.Log.Named("prometheus"))
		if err != nil {
			return nil, err
		}
		r.prom = p
		r.query = promactivity.Query(c.NamespaceRegexp, c.ReapAfter)
	}
	if d.Watch {
		r.watch = newWatcher(r)
	}
	return r, nil
}

// RunOnce runs one pass: it finds idle namespaces and deletes up to the cap,
// each after a live re-check.
func (r *Reaper) RunOnce(ctx context.Context) error {
	err := r.runOnce(ctx)
	if err != nil {
		r.metrics.errors.Inc()
		r.metrics.lastPassError.Set(1)
	} else {
		r.metrics.lastPassError.Set(0)
	}
	return err
}

// runOnce reads a snapshot, plans from it (Policy.Plan, pure) and applies
// the plan: each idle namespace, up to the cap, is deleted after a live
// re-check.
func (r *Reaper) runOnce(ctx context.Context) error {
	snap, err := r.read(ctx)
	if err != nil {
		return err
	}
	pl := r.policy.Plan(snap, r.clock.Now())
	for _, c := range pl.unreadable {
		r.log.Warn("Kept namespace with an unreadable annotation", zap.String("namespace", c.ns.Name), zap.String("detail", c.decision.Detail))
	}
	reaped, errs := r.apply(ctx, pl, snap.promActive)

	r.metrics.candidates.Set(float64(pl.selected))
	r.metrics.idle.Set(float64(len(pl.idle)))
	for _, reason := range keptReasons {
		r.metrics.kept.WithLabelValues(string(reason)).Set(float64(pl.kept[reason]))
	}
	fields := []zap.Field{zap.Int("namespaces", len(snap.namespaces)), zap.Int("candidates", pl.selected), zap.Int("idle", len(pl.idle)),
		zap.Int("reaped", reaped), zap.Bool("dryRun", r.cfg.DryRun)}
	for _, reason := range keptReasons {
		if pl.kept[reason] > 0 {
			fields = append(fields, zap.Int("kept."+string(reason), pl.kept[reason]))
		}
	}
	r.log.Info("Finished pass", fields...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete idle namespaces: %w", err)
	}
	return nil
}

// read takes the pass's snapshot: Prometheus's active namespaces first (a
// failed query aborts the pass before anything is read), then namespaces
// and pods, then the namespaces holding claims when the policy keeps them.
func (r *Reaper) read(ctx context.Context) (snapshot, error) {
	var promActive map[string]time.Time
	if r.prom != nil {
		res, err := r.prom.ActiveNamespaces(ctx, r.query)
		r.metrics.promAttempts.Add(float64(res.Attempts))
		if err != nil {
			r.metrics.promQueries.WithLabelValues("failure").Inc()
			return snapshot{}, fmt.Errorf("ask Prometheus for pod activity (nothing deleted): %w", err)
		}
		r.metrics.promQueries.WithLabelValues("success").Inc()
		promActive = res.Active
	}
	snap, err := r.snapshot(ctx)
	if err != nil {
		return snapshot{}, err
	}
	snap.promActive = promActive
	if !r.policy.ReapWithPVCs {
		if snap.withPVCs, err = r.namespacesWithPVCs(ctx); err != nil {
			return snapshot{}, err
		}
	}
	return snap, nil
}

// apply deletes the plan's idle namespaces in order, each after a live
// re-check, up to --max-deletions-per-pass; the namespaces kept at the
// re-check or deferred by the cap are counted in pl.kept. It returns how
// many were deleted (or would have been, in dry-run) and the failures.
func (r *Reaper) apply(ctx context.Context, pl plan, promActive map[string]time.Time) (int, []error) {
	var errs []error
	reaped := 0
	for i, c := range pl.idle {
		// Failed attempts count too, so a missing permission does not make
		// a pass try every idle namespace.
		if reaped+len(errs) >= r.cfg.MaxDeletionsPerPass {
			pl.kept[ReasonDeferred] += len(pl.idle) - i
			r.log.Warn("Reached the per-pass deletion cap; deferred the other idle namespaces to the next pass",
				zap.Int("maxDeletionsPerPass", r.cfg.MaxDeletionsPerPass), zap.Int("deferred", len(pl.idle)-i))
			break
		}
		reason, err := r.reap(ctx, c, promActive)
		switch {
		case err != nil:
			r.metrics.errors.Inc()
			errs = append(errs, err)
			r.log.Error("Failed to delete namespace", zap.String("namespace", c.ns.Name), zap.Error(err))
		case reason == ReasonIdle:
			reaped++
		default:
			pl.kept[reason]++
		}
	}
	return reaped, errs
}

// snapshot reads namespaces and pods from the watch caches, or, in --once
// mode, with one cluster-wide LIST each.
func (r *Reaper) snapshot(ctx context.Context) (snapshot, error) {
	if r.watch != nil {
		return r.watch.snapshot(ctx)
	}
	nsList, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return snapshot{}, fmt.Errorf("list namespaces: %w", err)
	}
	podList, err := r.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return snapshot{}, fmt.Errorf("list pods: %w", err)
	}
	s := snapshot{pods: map[string][]*corev1.Pod{}}
	for i := range nsList.Items {
		s.namespaces = append(s.namespaces, &nsList.Items[i])
	}
	for i := range podList.Items {
		p := &podList.Items[i]
		s.pods[p.Namespace] = append(s.pods[p.Namespace], p)
	}
	return s, nil
}

// namespacesWithPVCs lists PersistentVolumeClaims cluster-wide, once per pass.
func (r *Reaper) namespacesWithPVCs(ctx context.Context) (map[string]bool, error) {
	list, err := r.client.CoreV1().PersistentVolumeClaims(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list persistentvolumeclaims: %w", err)
	}
	out := map[string]bool{}
	for _, pvc := range list.Items {
		out[pvc.Namespace] = true
	}
	return out, nil
}

// reap re-reads the namespace and its pods and claims from the API server,
// decides again, and deletes the namespace if it is still idle and
// unchanged. It returns ReasonIdle when the namespace was deleted (or would
// have been, in dry-run), else the reason it was kept.
func (r *Reaper) reap(ctx context.Context, c candidate, promActive map[string]time.Time) (Reason, error) {
	name := c.ns.Name
	log := r.log.With(zap.String("namespace", name))
	fresh, err := r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		log.Info("Skipped namespace: already gone")
		return ReasonChanged, nil
	}
	if err != nil {
		return "", fmt.Errorf("re-read namespace %s: %w", name, err)
	}
	if fresh.UID != c.ns.UID {
		log.Info("Kept namespace: it was re-created since the decision")
		return ReasonChanged, nil
	}
	pods, err := r.client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list pods in namespace %s: %w", name, err)
	}
	hasPVCs := false
	if !r.policy.ReapWithPVCs {
		pvcs, err := r.client.CoreV1().PersistentVolumeClaims(name).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return "", fmt.Errorf("list persistentvolumeclaims in namespace %s: %w", name, err)
		}
		hasPVCs = len(pvcs.Items) > 0
	}
	livePods := make([]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		livePods[i] = &pods.Items[i]
	}
	var observed time.Time
	if r.watch != nil {
		observed = r.watch.observedAt(name)
	}
	_, promSaw := promActive[name]
	d := r.policy.Decide(Input{Namespace: fresh, Pods: livePods, Observed: observed, HasPVCs: hasPVCs, PrometheusActive: promSaw}, r.clock.Now())
	if !d.Reap {
		log.Info("Kept namespace: no longer idle at the final check", zap.String("reason", string(d.Reason)),
			zap.Time("lastActivity", d.LastActivity), zap.Time("lastLogin", d.LastLogin))
		return d.Reason, nil
	}
	fields := []zap.Field{zap.String("reason", string(d.Reason)), zap.Time("lastActivity", d.LastActivity),
		zap.Time("lastLogin", d.LastLogin), zap.Time("created", fresh.CreationTimestamp.Time), zap.Bool("dryRun", r.cfg.DryRun)}
	if r.cfg.DryRun {
		r.metrics.wouldReap.Inc()
		log.Info("Would delete idle namespace", fields...)
		return ReasonIdle, nil
	}
	// The preconditions make the delete fail if anything (a login) wrote to
	// the namespace since the re-read above.
	err = r.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion},
	})
	switch {
	case apierrors.IsNotFound(err):
		log.Info("Skipped namespace: already gone")
		return ReasonChanged, nil
	case apierrors.IsConflict(err):
		log.Info("Kept namespace: it changed during the final check")
		return ReasonChanged, nil
	case err != nil:
		return "", fmt.Errorf("delete namespace %s: %w", name, err)
	}
	r.metrics.reaped.Inc()
	log.Info("Deleted idle namespace", fields...)
	// The namespace is Terminating now, and the Event (kept in "default", as
	// for every cluster-scoped object) outlives it.
	r.recorder.Eventf(fresh, corev1.EventTypeNormal, "Reaped",
		"Deleted idle namespace: no pod activity since %s, last login %s, created %s (idle for longer than %v)",
		describeTime(d.LastActivity), describeTime(d.LastLogin), fresh.CreationTimestamp.UTC().Format(time.RFC3339), r.policy.ReapAfter)
	return ReasonIdle, nil
}

func describeTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

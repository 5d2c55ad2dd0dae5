// Package reaper enforces the walltime of portal-launched pods: when a pod's
// lifetime (the pod.kubernetes.io/lifetime annotation) has run out it deletes
// the pod and the Services, ConfigMaps and Secrets of the same job, and it
// deletes such objects whose job has no pod left.
//
// As a daemon it keeps label-filtered informers and deletes each pod at the
// moment its walltime ends (a delaying workqueue); a pass (RunOnce) is a full
// resync from the caches. With --once a pass reads the cluster with a
// constant number of label-selected LISTs.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// ToolName names the binary, the Event source and the field manager.
const ToolName = "job-pod-reaper"

// Event reasons recorded on pods.
const (
	ReasonWalltimeExceeded = "WalltimeExceeded"
	ReasonWalltimeEnding   = "WalltimeEndingSoon"
	ReasonInvalidWalltime  = "InvalidWalltime"
	// ReasonAnomaly is recorded on the reaper's own pod when it stops.
	ReasonAnomaly = "MassDeletionStopped"
)

// Reaper is the pass. Build it with Config.Build.
type Reaper struct {
	cfg      *Config
	policy   Policy
	jobLabel string
	log      *zap.Logger
	acct     *zap.Logger
	clock    clock.WithTicker
	client   kubernetes.Interface
	meta     metadata.Interface
	recorder record.EventRecorder
	metrics  *metrics
	// once: no Start; every pass LISTs.
	once bool
	// podSelector and objSelector are the server-side selectors: the object
	// labels, plus (for companions) the job label's existence.
	podSelector labels.Selector
	objSelector labels.Selector

	brake    *brake
	stopOnce sync.Once
	// self is the reaper's own pod, for the anomaly Event.
	self types.NamespacedName

	mu       sync.Mutex
	claimed  map[types.UID]bool // pods being or already reaped
	warned   map[types.UID]bool
	reported map[types.UID]bool // invalid lifetimes already reported

	// watch state, set by Start.
	startOnce sync.Once
	ready     chan struct{}
	failed    chan struct{}
	startErr  error
	watch     *watch
	queue     workqueue.TypedRateLimitingInterface[string]
}

var _ daemon.Starter = (*Reaper)(nil)

// Build constructs the pass.
func (c *Config) Build(ctx context.Context, env app.Env) (daemon.Pass, error) {
	return c.build(ctx, env)
}

func (c *Config) build(ctx context.Context, env app.Env) (*Reaper, error) {
	if c.nsSelector == nil || c.objSelector == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	meta, err := metadata.NewForConfig(env.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("create metadata client: %w", err)
	}
	clk := env.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	// --once (a CronJob) writes each Event before going on, since the
	// process exits after the pass; the daemon records in the background.
	var recorder record.EventRecorder
	if env.Daemon.Once {
		recorder = events.NewSyncRecorder(env.Client, ToolName, clk, env.Log)
	} else {
		rec, stop := events.NewRecorder(env.Client, ToolName, env.Log)
		context.AfterFunc(ctx, stop)
		recorder = rec
	}
	r := &Reaper{
		cfg: c, policy: c.policy(), jobLabel: c.jobLabel(),
		log: env.Log, acct: env.Log.Named("accounting"), clock: clk,
		client: env.Client, meta: meta, recorder: recorder,
		metrics: newMetrics(env.Registry), once: env.Daemon.Once,
		podSelector: c.objSelector, objSelector: c.objSelector,
		claimed: map[types.UID]bool{}, warned: map[types.UID]bool{}, reported: map[types.UID]bool{},
		ready: make(chan struct{}), failed: make(chan struct{}),
	}
	if r.jobLabel != "" {
		req, err := labels.NewRequirement(r.jobLabel, selection.Exists, nil)
		if err != nil {
			return nil, fmt.Errorf("--job-label %q: %w", c.JobLabel, err)
		}
		r.objSelector = c.objSelector.Add(*req)
	}
	if c.byPrefix() {
		// Every pod of a user namespace, whatever its labels: the object
		// labels choose companions only.
		r.podSelector = labels.Everything()
	}
	r.brake = newBrake(c, clk)
	r.self = types.NamespacedName{Namespace: os.Getenv("POD_NAMESPACE"), Name: os.Getenv("POD_NAME")}
	return r, nil
}

// RunOnce is one full pass: every pod and companion in scope is evaluated
// and orphans are deleted. With --once the pass deletes expired pods itself
// (at most --max-deletions-per-pass); in watch mode the workers are the only
// ones to delete pods: the pass hands them the expired pods, in expiry
// order, and (re)schedules every waiting pod, so a pod is never acted on by
// both, and a new leader starts from its caches.
func (r *Reaper) RunOnce(ctx context.Context) error {
	passStart := r.clock.Now()
	var src source
	if r.once {
		src = &listSource{r: r}
	} else {
		select {
		case <-r.ready:
			src = r.watch
		case <-r.failed:
			return fmt.Errorf("watch did not start: %w", r.startErr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	snap, err := src.snapshot(ctx)
	if err != nil {
		r.metrics.errors.Inc()
		return err
	}
	r.metrics.forbidden.Set(float64(len(snap.forbidden)))
	plan := BuildPlan(snap.pods, snap.objects, passStart, passStart, r.policy, r.jobLabel, r.cfg.OrphanMinAge)
	for _, reason := range skipReasons() {
		r.metrics.skipped.WithLabelValues(reason).Set(float64(plan.Skipped[reason]))
	}
	for _, inv := range plan.Invalid {
		r.reportInvalid(ctx, inv.Pod, inv.Err)
	}
	for _, e := range plan.Warn {
		r.warn(e)
	}
	surprising := 0
	for _, e := range plan.Expired {
		if r.brake.surprising(e.Verdict.Deadline, passStart) {
			surprising++
		}
	}
	if why := r.brake.checkPass(surprising, len(snap.pods)); why != "" {
		r.stop(why)
		return fmt.Errorf("%w: %s", errStopped, why)
	}
	var work []func() error
	deferred := 0
	perPass := 0
	take := func() bool {
		if !r.once || r.cfg.MaxDeletionsPerPass == 0 {
			return true
		}
		perPass++
		return perPass <= r.cfg.MaxDeletionsPerPass
	}
	if !r.once {
		// The workers delete; the queue holds each key once.
		for _, e := range plan.Expired {
			r.queue.Add(keyOf(e.Pod))
		}
	} else {
		for _, e := range plan.Expired {
			if !take() {
				deferred++
				continue
			}
			work = append(work, func() error {
				if err := r.throttle(ctx); err != nil {
					return err
				}
				return r.reapPod(ctx, e)
			})
		}
	}
	held := map[NamespacedJob]bool{} // orphan jobs with objects left for later
	for _, o := range plan.Orphans {
		if !take() {
			deferred++
			held[NamespacedJob{o.Namespace, o.Job}] = true
			continue
		}
		work = append(work, func() error {
			if err := r.throttle(ctx); err != nil {
				return err
			}
			return r.deleteObject(ctx, o, "orphan")
		})
	}
	for _, j := range plan.OrphanJobs {
		if !held[j] {
			work = append(work, func() error { return r.deleteJobSecrets(ctx, j.Namespace, j.Job, "orphan") })
		}
	}
	errs := runAll(work, deleteWorkers)
	if deferred > 0 {
		r.metrics.capReached.Inc()
		r.metrics.deferred.Add(float64(deferred))
		r.log.Warn("Reached max deletions per pass; deferred the rest to the next pass",
			zap.Int("maxDeletionsPerPass", r.cfg.MaxDeletionsPerPass), zap.Int("deferred", deferred))
	}
	if !r.once {
		now := r.clock.Now()
		for _, e := range plan.Waiting {
			r.queue.AddAfter(keyOf(e.Pod), e.Verdict.Next.Sub(now))
		}
	}
	r.log.Info("Finished pass", zap.Int("pods", len(snap.pods)), zap.Int("objects", len(snap.objects)),
		zap.Int("expired", len(plan.Expired)), zap.Int("orphans", len(plan.Orphans)), zap.Int("waiting", len(plan.Waiting)),
		zap.Int("deferred", deferred), zap.Int("forbiddenNamespaces", len(snap.forbidden)), zap.Bool("dryRun", r.cfg.DryRun))
	return errors.Join(errs...)
}

// errStopped is returned while the anomaly trip holds the reaper.
var errStopped = errors.New("stopped deleting: anomaly")

// throttle takes a token of the deletion rate limit, or fails when the
// reaper has stopped.
func (r *Reaper) throttle(ctx context.Context) error {
	if why := r.brake.stopped(); why != "" {
		return fmt.Errorf("%w: %s", errStopped, why)
	}
	waited, err := r.brake.wait(ctx)
	if waited {
		r.metrics.rateLimited.Inc()
	}
	return err
}

// stop reports, once, that the anomaly trip stopped the reaper: an error
// log, the anomaly_stopped gauge and anomaly_trips_total, and a Warning
// Event on the reaper's own pod.
func (r *Reaper) stop(why string) {
	r.stopOnce.Do(func() {
		r.metrics.stopped.Set(1)
		r.metrics.trips.Inc()
		r.log.Error("Stopped deleting: too many pods overdue at once; fix the cause or restart with other --anomaly-* settings",
			zap.String("reason", why))
		if ref := r.ownPod(); ref != nil && !r.cfg.DryRun {
			r.event(ref, corev1.EventTypeWarning, ReasonAnomaly,
				"stopped deleting pods: %s; fix the cause (clock, --max-lifetime) or restart the reaper with other --anomaly-* settings", why)
		}
	})
}

// ownPod is the reaper's own pod ($POD_NAMESPACE, $POD_NAME), or nil.
func (r *Reaper) ownPod() *corev1.ObjectReference {
	if r.self.Name == "" || r.self.Namespace == "" {
		return nil
	}
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: r.self.Namespace, Name: r.self.Name}
}

// skipReasons are the values of the reason label of skipped_pods.
func skipReasons() []string {
	return []string{SkipNoLifetime, SkipInvalidLifetime, SkipNotStarted, SkipTerminating}
}

// event records an Event on obj.
func (r *Reaper) event(obj runtime.Object, eventType, reason, format string, args ...any) {
	r.recorder.Eventf(obj, eventType, reason, format, args...)
}

// claim marks a pod as being reaped; false if it already is.
func (r *Reaper) claim(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed[uid] {
		return false
	}
	r.claimed[uid] = true
	return true
}

func (r *Reaper) unclaim(uid types.UID) {
	r.mu.Lock()
	delete(r.claimed, uid)
	r.mu.Unlock()
}

// forget drops what is remembered about a pod that is gone.
func (r *Reaper) forget(uid types.UID) {
	r.mu.Lock()
	delete(r.claimed, uid)
	delete(r.warned, uid)
	delete(r.reported, uid)
	r.mu.Unlock()
}

// reapPod deletes an expired pod, records the Event and the accounting line,
// then deletes the objects of its job.
func (r *Reaper) reapPod(ctx context.Context, e Expiry) error {
	pod := e.Pod
	if !r.claim(pod.UID) {
		return nil
	}
	log := r.log.With(zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name), zap.String("job", e.Job))
	if err := r.deletePod(ctx, e, log); err != nil {
		r.unclaim(pod.UID)
		r.metrics.errors.Inc()
		return err
	}
	var errs []error
	for _, o := range e.Companions {
		if err := r.deleteObject(ctx, o, "companion"); err != nil {
			errs = append(errs, err)
		}
	}
	if e.LastOfJob && e.Job != "" {
		if err := r.deleteJobSecrets(ctx, pod.Namespace, e.Job, "companion"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deletePod deletes (or, in dry-run, would delete) an expired pod and
// records the Event and the accounting line. A pod from the daemon's
// metadata-only cache is read first (readPod), for its grace period and
// the accounting record; one that is gone, or replaced by another pod of
// the same name, is done.
func (r *Reaper) deletePod(ctx context.Context, e Expiry, log *zap.Logger) error {
	pod := e.Pod
	if !pod.SpecKnown {
		full, err := r.readPod(ctx, pod)
		if err != nil {
			log.Error("Failed to read pod", zap.Error(err))
			return err
		}
		if full == nil {
			log.Debug("Pod already gone")
			return nil
		}
		pod = full
	}
	grace := r.gracePeriod(pod)
	shorten := e.Verdict.Shorten
	if shorten {
		log = log.With(zap.Int64p("deletionGracePeriodSeconds", pod.DeletionGracePeriodSeconds), zap.Int64p("gracePeriodSeconds", grace))
	}
	if r.cfg.DryRun {
		msg := "Would delete pod"
		if shorten {
			msg = "Would shorten the grace period of terminating pod"
		}
		log.Info(msg, zap.Duration("walltime", e.Verdict.Lifetime), zap.Time("deadline", e.Verdict.Deadline), zap.Bool("dryRun", true))
		return nil
	}
	uid := pod.UID
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, GracePeriodSeconds: grace}
	err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opts)
	switch {
	case err == nil && shorten:
		now := r.clock.Now()
		r.metrics.reaped.WithLabelValues(KindPod).Inc()
		r.metrics.graceShortened.Inc()
		r.event(pod.ref(), corev1.EventTypeWarning, ReasonWalltimeExceeded, "walltime of %s exceeded; shortened the pod's termination grace period from %ds to %ds",
			e.Verdict.Lifetime, deref(pod.DeletionGracePeriodSeconds), deref(grace))
		log.Info("Shortened the grace period of terminating pod")
		r.account(pod, e, now)
	case err == nil:
		now := r.clock.Now()
		r.metrics.reaped.WithLabelValues(KindPod).Inc()
		r.metrics.expiryLag.Observe(now.Sub(e.Verdict.Deadline).Seconds())
		r.event(pod.ref(), corev1.EventTypeWarning, ReasonWalltimeExceeded, "walltime of %s exceeded", e.Verdict.Lifetime)
		r.account(pod, e, now)
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or replaced by a new pod of the same name: done.
		log.Debug("Pod already gone", zap.Error(err))
	default:
		log.Error("Failed to delete pod", zap.Error(err))
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// readPod reads pod (a LIST by name: the reaper's RBAC grants list, not
// get), for what the metadata-only cache lacks; nil when it is gone or was
// replaced by another pod of the same name. The read is consistent (no
// resourceVersion): an absent pod is really gone.
func (r *Reaper) readPod(ctx context.Context, pod *Pod) (*Pod, error) {
	l, err := r.client.CoreV1().Pods(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name})
	if err != nil {
		return nil, fmt.Errorf("read pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for i := range l.Items {
		if p := &l.Items[i]; p.Name == pod.Name && p.UID == pod.UID {
			return r.slim(p), nil
		}
	}
	return nil, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// gracePeriod is the termination grace period of the reaper's deletion of
// pod: --grace-period-seconds, or the pod's own terminationGracePeriodSeconds
// (-1), never more than --max-grace-period (nil: the pod's own, uncapped,
// only for a Config without a cap).
func (r *Reaper) gracePeriod(pod *Pod) *int64 {
	g := r.cfg.GracePeriodSeconds
	if g < 0 && pod.TerminationGracePeriodSeconds != nil {
		g = *pod.TerminationGracePeriodSeconds
	}
	if limit := r.cfg.maxGraceSeconds(); limit > 0 && (g < 0 || g > limit) {
		g = limit
	}
	if g < 0 {
		return nil
	}
	return &g
}

// account writes the accounting record of a reaped pod: one structured line,
// the raw material for charging.
func (r *Reaper) account(pod *Pod, e Expiry, deleted time.Time) {
	// started is the pod's status.startTime, empty for a pod that never
	// started (the walltime may count from creation).
	started := zap.String("started", "")
	if pod.StartTime != nil {
		started = zap.Time("started", pod.StartTime.Time)
	}
	r.acct.Info("Reaped pod",
		zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name), zap.String("job", e.Job),
		zap.String("account", pod.Labels[identity.AccountLabel]),
		zap.Int64("cpuRequestMillicores", pod.CPURequestMillicores), zap.Int64("memoryRequestBytes", pod.MemoryRequestBytes),
		zap.Time("created", pod.CreationTimestamp.Time), started,
		zap.Time("deleted", deleted), zap.Duration("walltime", e.Verdict.Lifetime),
		zap.String("walltimeSource", e.Verdict.Source), zap.Duration("lag", deleted.Sub(e.Verdict.Deadline)))
}

// deleteObject deletes a companion or orphan object.
func (r *Reaper) deleteObject(ctx context.Context, o Object, why string) error {
	log := r.log.With(zap.String("namespace", o.Namespace), zap.String(logKey(o.Kind), o.Name), zap.String("job", o.Job), zap.String("reason", why))
	if r.cfg.DryRun {
		log.Info("Would delete "+o.Kind, zap.Bool("dryRun", true))
		return nil
	}
	uid := o.UID
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
	var err error
	core := r.client.CoreV1()
	switch o.Kind {
	case KindService:
		err = core.Services(o.Namespace).Delete(ctx, o.Name, opts)
	case KindConfigMap:
		err = core.ConfigMaps(o.Namespace).Delete(ctx, o.Name, opts)
	default:
		return fmt.Errorf("delete %s %s/%s: unknown kind", o.Kind, o.Namespace, o.Name)
	}
	switch {
	case err == nil:
		r.metrics.reaped.WithLabelValues(o.Kind).Inc()
		log.Info("Deleted " + o.Kind)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		log.Debug("Object already gone", zap.Error(err))
		return nil
	default:
		r.metrics.errors.Inc()
		log.Error("Failed to delete "+o.Kind, zap.Error(err))
		return fmt.Errorf("delete %s %s/%s: %w", o.Kind, o.Namespace, o.Name, err)
	}
}

func logKey(kind string) string {
	switch kind {
	case KindConfigMap:
		return "configMap"
	default:
		return kind
	}
}

// warn records the warning Event once per pod.
func (r *Reaper) warn(e Expiry) {
	if r.cfg.DryRun {
		return
	}
	r.mu.Lock()
	done := r.warned[e.Pod.UID]
	r.warned[e.Pod.UID] = true
	r.mu.Unlock()
	if done {
		return
	}
	left := e.Verdict.Deadline.Sub(r.clock.Now()).Round(time.Second)
	r.event(e.Pod.ref(), corev1.EventTypeWarning, ReasonWalltimeEnding,
		"walltime of %s ends at %s (in %s); the pod will then be deleted", e.Verdict.Lifetime, e.Verdict.Deadline.UTC().Format(time.RFC3339), left)
	r.metrics.warnings.Inc()
	r.log.Info("Warned of walltime end", zap.String("namespace", e.Pod.Namespace), zap.String("pod", e.Pod.Name),
		zap.Time("deadline", e.Verdict.Deadline))
}

// reportInvalid reports an unparseable lifetime once per pod, across
// restarts, CronJob runs and leader changes: invalid_lifetimes_total and
// errors_total count it once per pod in each process; the error log and
// the InvalidWalltime Event come only when the pod carries no such Event
// yet (one LIST of the pod's Events, the first time this process sees it).
func (r *Reaper) reportInvalid(ctx context.Context, pod *Pod, err error) {
	r.mu.Lock()
	done := r.reported[pod.UID]
	r.reported[pod.UID] = true
	r.mu.Unlock()
	if done {
		return
	}
	r.metrics.errors.Inc()
	r.metrics.invalidLifetime.Inc()
	log := r.log.With(zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name))
	if !r.cfg.DryRun {
		l, lerr := r.client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.uid=" + string(pod.UID) + ",reason=" + ReasonInvalidWalltime, Limit: 1})
		if lerr == nil && len(l.Items) > 0 {
			log.Debug("Found unparseable lifetime, reported before", zap.Error(err))
			return
		}
		if lerr != nil {
			log.Debug("Could not look for an earlier report", zap.Error(lerr))
		}
	}
	log.Error("Found unparseable lifetime", zap.Error(err))
	if !r.cfg.DryRun {
		r.event(pod.ref(), corev1.EventTypeWarning, ReasonInvalidWalltime, "%v", err)
	}
}

// deleteWorkers is how many deletions a pass runs at once (the client's
// QPS limit still applies).
const deleteWorkers = 8

// runAll runs fns, at most n at a time, and returns their errors.
func runAll(fns []func() error, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, n)
	for _, fn := range fns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

func keyOf(pod *Pod) string { return pod.Namespace + "/" + pod.Name }

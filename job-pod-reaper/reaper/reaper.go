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
)

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
	// app.Run chose the recorder: synchronous for --once (a CronJob), whose
	// process exits after the pass; in the background for the daemon.
	recorder := env.EventRecorder(Tool)
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
	plan := BuildPlan(snap.pods, snap.objects, passStart, passStart, r.policy, r.cfg.OrphanMinAge)
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

func keyOf(pod *Pod) string { return pod.Namespace + "/" + pod.Name }

package reaper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

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
		zap.String("account", pod.Account),
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

// deleteWorkers is how many deletions a pass runs at once (the client's
// QPS limit still applies).
const deleteWorkers = 8

// runAll runs fns, at most n at a time, and returns all their errors
// (each deletion is independent: one failing stops none of the others).
func runAll(fns []func() error, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(n)
	for _, fn := range fns {
		g.Go(func() error {
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // the functions return nil: their errors are in errs
	return errs
}

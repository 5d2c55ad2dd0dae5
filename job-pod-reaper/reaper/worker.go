package reaper

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"
)

// A failed deletion is retried with a per-pod exponential backoff from
// retryBaseDelay to retryMaxDelay: within seconds of the API server
// answering again, whatever --interval is.
const (
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = 5 * time.Second
)

// processNext handles one due pod; false when the queue is shut down. A
// failed deletion goes back into the queue with the rate limiter's backoff.
func (r *Reaper) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	err := r.syncPod(ctx, key)
	switch {
	case err == nil:
		r.queue.Forget(key)
	case errors.Is(err, errStopped) || ctx.Err() != nil:
		r.queue.Forget(key)
	default:
		r.metrics.retries.Inc()
		r.log.Warn("Failed to reap pod; retrying", zap.String("key", key), zap.Int("attempts", r.queue.NumRequeues(key)+1), zap.Error(err))
		r.queue.AddRateLimited(key)
	}
	return true
}

// syncPod acts on one pod at the moment its warning or its deadline is due;
// it is idempotent, and reschedules the pod when it is early.
func (r *Reaper) syncPod(ctx context.Context, key string) error {
	w := r.watch
	pod := w.pod(key)
	if pod == nil || !w.inScope(pod.Namespace) {
		return nil
	}
	now := r.clock.Now()
	v := r.policy.Evaluate(pod, now)
	if v.Invalid != nil {
		r.reportInvalid(w.ctx, pod, v.Invalid)
	}
	if v.Skip != "" {
		return nil
	}
	job := pod.Job
	e := Expiry{Pod: pod, Verdict: v, Job: job}
	if !v.Expired {
		if v.Warn {
			r.warn(e)
		}
		r.queue.AddAfter(key, v.Next.Sub(now))
		return nil
	}
	if r.brake.surprising(v.Deadline, now) {
		if why := r.brake.checkOne(w.podCount()); why != "" {
			r.stop(why)
		}
	}
	if err := r.throttle(ctx); err != nil {
		return err
	}
	if job != "" {
		e.Companions, e.LastOfJob = w.companions(pod, job, now)
	}
	return r.reapPod(ctx, e)
}

// schedule puts a pod in the queue for its next due time.
func (w *watch) schedule(pod *Pod) {
	r := w.r
	now := r.clock.Now()
	v := r.policy.Evaluate(pod, now)
	if v.Invalid != nil && w.inScope(pod.Namespace) {
		r.reportInvalid(w.ctx, pod, v.Invalid)
	}
	switch {
	case v.Skip != "":
	case v.Expired || v.Warn:
		r.queue.Add(keyOf(pod))
	default:
		r.queue.AddAfter(keyOf(pod), v.Next.Sub(now))
	}
}

// companions returns the objects of job, and true, when they go with pod:
// when the job has ended (JobEnded, the rule of BuildPlan) with pod, the
// job's pods being those in the caches. (The caches are indexed by
// namespace, not by job: an index entry per job would cost more memory
// than scanning a namespace's objects at each deletion.)
func (w *watch) companions(pod *Pod, job string, now time.Time) ([]Object, bool) {
	c := w.cacheFor(pod.Namespace)
	if c == nil {
		return nil, false
	}
	var pods []*Pod
	items, _ := c.pods.GetIndexer().ByIndex(cache.NamespaceIndex, pod.Namespace)
	for _, o := range items {
		if p, ok := o.(*Pod); ok && p.Job == job {
			pods = append(pods, p)
		}
	}
	if !JobEnded(pods, func(p *Pod) bool { return p.UID == pod.UID || w.r.policy.Evaluate(p, now).Expired }) {
		return nil, false
	}
	var out []Object
	for _, ck := range companionKinds {
		if inf := c.objects[ck.kind]; inf != nil {
			items, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, pod.Namespace)
			for _, it := range items {
				if o, ok := it.(*cachedObject); ok && o.Job == job {
					out = append(out, o.object(ck.kind))
				}
			}
		}
	}
	return out, true
}

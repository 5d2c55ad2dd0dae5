package reaper

import (
	"time"

	"github.com/kubehpc/kubehpc/pkg/walltime"
)

// Age origins: when a pod's walltime starts counting.
const (
	AgeFromCreation = "creation" // metadata.creationTimestamp (compatible with the OSC reaper)
	AgeFromStart    = "start"    // status.startTime
)

// Reasons a pod is not scheduled for reaping (label values of
// job_pod_reaper_skipped_pods).
const (
	SkipNoLifetime      = "no-lifetime"
	SkipInvalidLifetime = "invalid-lifetime"
	SkipNotStarted      = "not-started"
	SkipTerminating     = "terminating"
)

// Where a pod's walltime came from.
const (
	SourceAnnotation = "annotation"
	SourceDefault    = "default"
	SourceMax        = "max"
)

// Policy decides when a pod's walltime ends. It holds no clients and no
// clock: every decision is a function of (pod, now, policy).
type Policy struct {
	// DefaultLifetime applies to a pod with no (or an unparseable) lifetime;
	// 0 means none.
	DefaultLifetime time.Duration
	// MaxLifetime caps every pod's lifetime, whatever it says; 0 means no cap.
	MaxLifetime time.Duration
	// AgeFrom is AgeFromCreation or AgeFromStart.
	AgeFrom string
	// WarnBefore is how long before the end a warning Event is due; 0 disables.
	WarnBefore time.Duration
	// MaxGrace is the longest grace period a pod gets once its walltime has
	// run out; 0 means no cap (every terminating pod is skipped).
	MaxGrace time.Duration
}

// Verdict is what a Policy says about one pod at one moment.
type Verdict struct {
	// Skip is the reason the pod has no deadline ("" when it has one).
	Skip string
	// Invalid is the parse error of an unparseable lifetime annotation; it is
	// reported even when a default or maximum gives the pod a deadline.
	Invalid error
	// Lifetime is the walltime in force and Source where it came from.
	Lifetime time.Duration
	Source   string
	// Start is when the walltime started counting; Deadline = Start + Lifetime.
	Start    time.Time
	Deadline time.Time
	// Expired: now is at or past Deadline.
	Expired bool
	// Warn: the warning window has begun and the pod has not expired.
	Warn bool
	// Next is when this verdict next changes (the warning, then the deadline);
	// zero when the pod has expired or has no deadline.
	Next time.Time
	// Shorten: the pod is already terminating, but with a grace period that
	// would let it run past its deadline (or now) + MaxGrace: it is to be
	// deleted again with a grace period of at most MaxGrace, which shortens
	// the deletion in progress. Such a pod gets no warning.
	Shorten bool
}

// Evaluate returns the verdict on pod at now.
func (p Policy) Evaluate(pod *Pod, now time.Time) Verdict {
	v := p.evaluate(pod, now)
	if pod.DeletionTimestamp == nil {
		return v
	}
	return p.terminating(pod, v, now)
}

// terminating is the verdict on a pod being deleted, whose verdict as a
// running pod is v. It is skipped, unless its deletion (deletionTimestamp,
// the moment the kubelet kills it) ends after max(deadline, now) + MaxGrace
// and its grace period is longer than MaxGrace: a pod deleted by its owner
// with gracePeriodSeconds of a year would otherwise run for a year.
func (p Policy) terminating(pod *Pod, v Verdict, now time.Time) Verdict {
	skip := Verdict{Skip: SkipTerminating}
	if p.MaxGrace <= 0 || v.Skip != "" {
		return skip
	}
	g := pod.DeletionGracePeriodSeconds
	if g == nil || time.Duration(*g)*time.Second <= p.MaxGrace {
		return skip
	}
	end := v.Deadline
	if now.After(end) {
		end = now
	}
	if !pod.DeletionTimestamp.After(end.Add(p.MaxGrace)) {
		return skip
	}
	v.Invalid, v.Warn, v.Shorten = nil, false, true
	if !v.Expired {
		v.Next = v.Deadline
	}
	return v
}

// evaluate is the verdict on pod as if it were not terminating.
func (p Policy) evaluate(pod *Pod, now time.Time) Verdict {
	var v Verdict
	raw, ok := pod.Lifetime, pod.HasLifetime
	if ok {
		d, err := walltime.Parse(raw)
		if err != nil {
			v.Invalid = err
		} else {
			v.Lifetime, v.Source = d, SourceAnnotation
		}
	}
	if v.Source == "" {
		switch {
		case p.DefaultLifetime > 0:
			v.Lifetime, v.Source = p.DefaultLifetime, SourceDefault
		case p.MaxLifetime > 0:
			v.Lifetime, v.Source = p.MaxLifetime, SourceMax
		case v.Invalid != nil:
			v.Skip = SkipInvalidLifetime
			return v
		default:
			v.Skip = SkipNoLifetime
			return v
		}
	}
	if p.MaxLifetime > 0 && v.Lifetime > p.MaxLifetime {
		v.Lifetime, v.Source = p.MaxLifetime, SourceMax
	}
	if p.AgeFrom == AgeFromStart {
		if pod.StartTime == nil {
			v.Skip = SkipNotStarted
			return v
		}
		v.Start = pod.StartTime.Time
	} else {
		v.Start = pod.CreationTimestamp.Time
	}
	v.Deadline = v.Start.Add(v.Lifetime)
	if !now.Before(v.Deadline) {
		v.Expired = true
		return v
	}
	v.Next = v.Deadline
	if p.WarnBefore > 0 {
		warnAt := v.Deadline.Add(-p.WarnBefore)
		if now.Before(warnAt) {
			v.Next = warnAt
		} else {
			v.Warn = true
		}
	}
	return v
}

// JobOf returns the pod's (or object's) job id, or "" when it has none or
// jobLabel is empty (--job-label=none).
func JobOf(labels map[string]string, jobLabel string) string {
	if jobLabel == "" {
		return ""
	}
	return labels[jobLabel]
}

// IsOrphan says whether a companion object is an orphan: it carries a job id
// that no live pod in its own namespace has, and it was created at least
// minAge before the pass started (so that objects a job is still creating,
// such as the Secret its init container writes, are left alone).
// creationTimestamp has one-second precision, so the margin is at least 1s.
func IsOrphan(o Object, liveJobs map[NamespacedJob]bool, passStart time.Time, minAge time.Duration) bool {
	if o.Job == "" || liveJobs[NamespacedJob{Namespace: o.Namespace, Job: o.Job}] {
		return false
	}
	if minAge < time.Second {
		minAge = time.Second
	}
	return !o.Created.After(passStart.Add(-minAge))
}

// NamespacedJob is a job id within a namespace: a job id in one namespace
// protects nothing in another.
type NamespacedJob struct {
	Namespace, Job string
}

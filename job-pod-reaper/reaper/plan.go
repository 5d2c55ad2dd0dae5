package reaper

import (
	"cmp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Kinds of companion objects (and the values of the type label of
// job_pod_reaper_reaped_total).
const (
	KindPod       = "pod"
	KindService   = "service"
	KindConfigMap = "configmap"
	KindSecret    = "secret"
)

// Object is a companion object (Service or ConfigMap) as the reaper sees
// it: metadata only. (Secrets are never read: see deleteJobSecrets.)
type Object struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
	Job       string
	Created   time.Time
}

// Expiry is a pod whose walltime has run out, with the objects of its job.
type Expiry struct {
	Pod        *Pod
	Verdict    Verdict
	Job        string
	Companions []Object
	// LastOfJob: no other pod of the job in the namespace is within its
	// walltime, so the job's objects (Companions, and its Secrets, which
	// the reaper cannot list) go with this pod.
	LastOfJob bool
}

// Invalid is a pod with an unparseable lifetime annotation.
type Invalid struct {
	Pod *Pod
	Err error
}

// Plan is what one pass would do: a pure function of the objects in scope,
// now, the time the pass started and the policy.
type Plan struct {
	// Expired pods, the longest overdue first.
	Expired []Expiry
	// Orphans, the oldest first.
	Orphans []Object
	// OrphanJobs are the jobs of Orphans, once each, in the same order:
	// their Secrets are deleted with them (one DELETE collection each).
	OrphanJobs []NamespacedJob
	// Warn are pods inside the warning window.
	Warn []Expiry
	// Waiting are pods with a future deadline (to schedule in watch mode).
	Waiting []Expiry
	// Invalid are pods whose lifetime annotation does not parse.
	Invalid []Invalid
	// Skipped counts pods without a deadline by reason.
	Skipped map[string]int
}

// BuildPlan decides, for the pods and companion objects in scope, which pods
// have expired, which objects go with them and which objects are orphans.
func BuildPlan(pods []*Pod, objects []Object, now, passStart time.Time, p Policy, orphanMinAge time.Duration) Plan {
	plan := Plan{Skipped: map[string]int{}}
	live := map[NamespacedJob]bool{}
	byJob := map[NamespacedJob][]Object{}
	for _, o := range objects {
		if o.Job != "" {
			k := NamespacedJob{o.Namespace, o.Job}
			byJob[k] = append(byJob[k], o)
		}
	}
	for _, pod := range pods {
		job := pod.Job
		if job != "" {
			live[NamespacedJob{pod.Namespace, job}] = true
		}
		v := p.Evaluate(pod, now)
		if v.Invalid != nil {
			plan.Invalid = append(plan.Invalid, Invalid{Pod: pod, Err: v.Invalid})
		}
		if v.Skip != "" {
			plan.Skipped[v.Skip]++
			continue
		}
		e := Expiry{Pod: pod, Verdict: v, Job: job}
		switch {
		case v.Expired:
			plan.Expired = append(plan.Expired, e)
		case v.Warn:
			plan.Warn = append(plan.Warn, e)
			plan.Waiting = append(plan.Waiting, e)
		default:
			plan.Waiting = append(plan.Waiting, e)
		}
	}
	slices.SortStableFunc(plan.Expired, func(a, b Expiry) int {
		return cmp.Or(a.Verdict.Deadline.Compare(b.Verdict.Deadline), cmp.Compare(a.Pod.Namespace+"/"+a.Pod.Name, b.Pod.Namespace+"/"+b.Pod.Name))
	})
	// Companions of ended jobs (JobEnded), taken by the job's last expired
	// pod in deadline order.
	jobPods := map[NamespacedJob][]*Pod{}
	for _, pod := range pods {
		if job := pod.Job; job != "" {
			k := NamespacedJob{pod.Namespace, job}
			jobPods[k] = append(jobPods[k], pod)
		}
	}
	expired := make(map[*Pod]bool, len(plan.Expired))
	for _, e := range plan.Expired {
		expired[e.Pod] = true
	}
	taken := map[NamespacedJob]bool{}
	for i := len(plan.Expired) - 1; i >= 0; i-- {
		e := plan.Expired[i]
		k := NamespacedJob{e.Pod.Namespace, e.Job}
		if e.Job == "" || taken[k] {
			continue
		}
		taken[k] = true // the job's last expired pod decides for the job
		if JobEnded(jobPods[k], func(p *Pod) bool { return expired[p] }) {
			plan.Expired[i].Companions = byJob[k]
			plan.Expired[i].LastOfJob = true
		}
	}
	for _, o := range objects {
		if IsOrphan(o, live, passStart, orphanMinAge) {
			plan.Orphans = append(plan.Orphans, o)
		}
	}
	slices.SortStableFunc(plan.Orphans, func(a, b Object) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name))
	})
	seen := map[NamespacedJob]bool{}
	for _, o := range plan.Orphans {
		if k := (NamespacedJob{o.Namespace, o.Job}); !seen[k] {
			seen[k] = true
			plan.OrphanJobs = append(plan.OrphanJobs, k)
		}
	}
	return plan
}

// JobEnded is the rule for a job's objects, in a pass and in watch mode:
// they go once every pod of the job in its namespace (pods) has expired
// (several pods may share a job; a pod being deleted by someone else is
// not expired, so it keeps them until it is gone and they are orphans).
func JobEnded(pods []*Pod, expired func(*Pod) bool) bool {
	for _, p := range pods {
		if !expired(p) {
			return false
		}
	}
	return true
}

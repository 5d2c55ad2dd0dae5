package reaper

import (
	"cmp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// snapshot is the cluster state one pass decides from: what read returns,
// and all Plan looks at.
type snapshot struct {
	namespaces []*corev1.Namespace
	pods       map[string][]*corev1.Pod
	// observed is pod activity the watch saw but may not have recorded yet.
	observed map[string]time.Time
	// withPVCs are the namespaces holding PersistentVolumeClaims (read
	// only when the policy keeps such namespaces).
	withPVCs map[string]bool
	// promActive are the namespaces where Prometheus saw a container
	// within --reap-after (nil without --prometheus-address).
	promActive map[string]time.Time
}

// candidate is an idle namespace found from the snapshot.
type candidate struct {
	ns       *corev1.Namespace
	decision Decision
}

// plan is what a pass decided from its snapshot, before any API call.
type plan struct {
	// selected counts the namespaces in the selection (labels and name).
	selected int
	// idle are the namespaces to delete, the least recently active first,
	// so that the per-pass cap defers the freshest.
	idle []candidate
	// kept counts the selected namespaces kept, by reason.
	kept map[Reason]int
	// unreadable are the namespaces kept for an unreadable annotation, in
	// snapshot order, for the warnings.
	unreadable []candidate
}

// Plan decides every namespace of s at now. It is pure: the same snapshot
// gives the same plan, whatever the cluster did since.
func (p *Policy) Plan(s snapshot, now time.Time) plan {
	pl := plan{kept: map[Reason]int{}}
	for _, ns := range s.namespaces {
		_, promSaw := s.promActive[ns.Name]
		d := p.Decide(Input{Namespace: ns, Pods: s.pods[ns.Name], Observed: s.observed[ns.Name],
			HasPVCs: s.withPVCs[ns.Name], PrometheusActive: promSaw}, now)
		if d.Reason == ReasonNotSelected {
			continue
		}
		pl.selected++
		switch {
		case d.Reap:
			pl.idle = append(pl.idle, candidate{ns: ns, decision: d})
		case d.Reason == ReasonInvalidLastUsed || d.Reason == ReasonInvalidActivity:
			pl.kept[d.Reason]++
			pl.unreadable = append(pl.unreadable, candidate{ns: ns, decision: d})
		default:
			pl.kept[d.Reason]++
		}
	}
	slices.SortFunc(pl.idle, func(a, b candidate) int {
		return cmp.Or(a.decision.LastActivity.Compare(b.decision.LastActivity), cmp.Compare(a.ns.Name, b.ns.Name))
	})
	return pl
}

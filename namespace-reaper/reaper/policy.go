package reaper

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// Reason says why a namespace was kept, or that it is idle.
type Reason string

// The reasons of a Decision. They are also the values of the kept metric's
// reason label.
const (
	ReasonIdle             Reason = "idle"
	ReasonNotSelected      Reason = "not_selected"
	ReasonProtected        Reason = "protected"
	ReasonTerminating      Reason = "terminating"
	ReasonTooYoung         Reason = "too_young"
	ReasonRecentLogin      Reason = "recent_login"
	ReasonInvalidLastUsed  Reason = "invalid_last_used"
	ReasonInvalidActivity  Reason = "invalid_activity"
	ReasonActive           Reason = "active"
	ReasonActivePrometheus Reason = "active_prometheus"
	ReasonHasPVCs          Reason = "has_pvcs"
	// ReasonChanged: the namespace changed between the decision and the delete.
	ReasonChanged Reason = "changed"
	// ReasonDeferred: idle, but the per-pass cap was reached.
	ReasonDeferred Reason = "deferred"
)

// keptReasons are the reasons a selected namespace is kept, for the metric.
var keptReasons = []Reason{ReasonProtected, ReasonTerminating, ReasonTooYoung, ReasonRecentLogin, ReasonInvalidLastUsed,
	ReasonInvalidActivity, ReasonActive, ReasonActivePrometheus, ReasonHasPVCs, ReasonChanged, ReasonDeferred}

// builtinProtected are namespaces no configuration can make the tool delete;
// a trailing * is a prefix match.
var builtinProtected = []string{"default", "kube-*", "kube-system", "kube-public", "kube-node-lease", "openshift", "openshift-*"}

// IsProtected reports whether name is on the built-in deny list or is one of
// extra (the tool's own namespace and any the site adds).
func IsProtected(name string, extra []string) bool {
	for _, p := range builtinProtected {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return slices.Contains(extra, name)
}

// Policy decides which namespaces are idle. Build it with Config.Validate.
type Policy struct {
	// Selectors are OR-ed; none means every namespace (the name pattern
	// must then be set).
	Selectors []labels.Selector
	// NamePattern matches the whole name (it is anchored); nil means any name.
	NamePattern *regexp.Regexp
	// Protected are exact names kept beside the built-in deny list.
	Protected []string
	// ReapAfter is the minimum age and the pod-activity window.
	ReapAfter time.Duration
	// LastUsedAnnotation holds the last login in Unix seconds; empty disables the check.
	LastUsedAnnotation string
	LastUsedThreshold  time.Duration
	// ReapWithPVCs lets namespaces holding PersistentVolumeClaims be deleted.
	ReapWithPVCs bool
}

// AnchorPattern returns the pattern matched against whole names, the way
// PromQL's =~ matches it.
func AnchorPattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, fmt.Errorf("--namespace-regexp %q: %w", pattern, err)
	}
	return re, nil
}

// Matches reports whether ns is in the configured selection (labels and
// name), ignoring the deny list.
func (p *Policy) Matches(ns *corev1.Namespace) bool {
	if p.NamePattern != nil && !p.NamePattern.MatchString(ns.Name) {
		return false
	}
	if len(p.Selectors) == 0 {
		return true
	}
	set := labels.Set(ns.Labels)
	for _, s := range p.Selectors {
		if s.Matches(set) {
			return true
		}
	}
	return false
}

// Input is what Decide looks at for one namespace.
type Input struct {
	Namespace *corev1.Namespace
	// Pods are the namespace's pods (from the cache, a LIST, or a live check).
	Pods []*corev1.Pod
	// Observed is pod activity the watch saw but may not have recorded yet.
	Observed time.Time
	// HasPVCs: the namespace holds PersistentVolumeClaims.
	HasPVCs bool
	// PrometheusActive: Prometheus saw a container in the namespace within the window.
	PrometheusActive bool
}

// Decision is the outcome for one namespace.
type Decision struct {
	Reap   bool
	Reason Reason
	// LastActivity is the last pod activity known; zero when none.
	LastActivity time.Time
	// LastLogin is the last-used annotation's time; zero when absent.
	LastLogin time.Time
	// Detail explains an invalid annotation.
	Detail string
}

// Decide says whether the namespace in in is idle at now. It keeps every
// namespace it is not sure about.
func (p *Policy) Decide(in Input, now time.Time) Decision {
	ns := in.Namespace
	if !p.Matches(ns) {
		return Decision{Reason: ReasonNotSelected}
	}
	if IsProtected(ns.Name, p.Protected) {
		return Decision{Reason: ReasonProtected}
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return Decision{Reason: ReasonTerminating}
	}
	d := Decision{}
	created := ns.CreationTimestamp.Time
	if created.IsZero() || now.Sub(created) < p.ReapAfter {
		d.Reason = ReasonTooYoung
		return d
	}
	if p.LastUsedAnnotation != "" {
		if v, ok := ns.Annotations[p.LastUsedAnnotation]; ok {
			t, err := parseUnixSeconds(v)
			if err != nil {
				d.Reason, d.Detail = ReasonInvalidLastUsed, fmt.Sprintf("annotation %s=%q: %v", p.LastUsedAnnotation, v, err)
				return d
			}
			d.LastLogin = t
			if now.Sub(t) < p.LastUsedThreshold {
				d.Reason = ReasonRecentLogin
				return d
			}
		}
	}
	last, err := LastActivity(in, now)
	d.LastActivity = last
	if err != nil {
		d.Reason, d.Detail = ReasonInvalidActivity, err.Error()
		return d
	}
	if !last.IsZero() && now.Sub(last) < p.ReapAfter {
		d.Reason = ReasonActive
		return d
	}
	if in.PrometheusActive {
		d.Reason = ReasonActivePrometheus
		return d
	}
	if in.HasPVCs && !p.ReapWithPVCs {
		d.Reason = ReasonHasPVCs
		return d
	}
	d.Reap, d.Reason = true, ReasonIdle
	return d
}

// LastActivity is the latest of the recorded activity annotation, the
// observed activity and the activity of each pod (now for a pod that has not
// finished). An unreadable annotation is an error.
func LastActivity(in Input, now time.Time) (time.Time, error) {
	last := in.Observed
	if v, ok := in.Namespace.Annotations[identity.LastActivityAnnotation]; ok {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("annotation %s=%q: %w", identity.LastActivityAnnotation, v, err)
		}
		last = later(last, t)
	}
	for _, pod := range in.Pods {
		last = later(last, PodActivity(pod, now))
	}
	return last, nil
}

// Finished reports whether a pod's containers have all terminated for good.
func Finished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// PodActivity is now for a pod that has not finished (pending, running,
// unknown or being deleted), and for a finished pod the latest of its
// creation, start and container finish times.
func PodActivity(pod *corev1.Pod, now time.Time) time.Time {
	if !Finished(pod) {
		return now
	}
	t := pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		t = later(t, pod.Status.StartTime.Time)
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if term := cs.State.Terminated; term != nil {
				t = later(t, term.FinishedAt.Time)
			}
		}
	}
	return t
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// parseUnixSeconds reads the Open OnDemand last-hook-execution value.
func parseUnixSeconds(v string) (time.Time, error) {
	s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("want Unix seconds: %w", err)
	}
	return time.Unix(s, 0), nil
}

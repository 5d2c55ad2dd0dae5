package reaper

import (
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ondemandPolicy is the default Open OnDemand profile.
func ondemandPolicy(t *testing.T, mutate ...func(*Config)) Policy {
	t.Helper()
	c := NewConfig()
	for _, m := range mutate {
		m(c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	return c.Policy()
}

type nsOpt func(*corev1.Namespace)

func userNS(name string, created time.Time, opts ...nsOpt) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, CreationTimestamp: metav1.NewTime(created),
		Labels:      map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue},
		Annotations: map[string]string{},
	}}
	for _, o := range opts {
		o(ns)
	}
	return ns
}

func annotate(k, v string) nsOpt { return func(ns *corev1.Namespace) { ns.Annotations[k] = v } }

func lastLogin(t time.Time) nsOpt {
	return annotate(identity.LastHookExecutionAnnotation, strconv.FormatInt(t.Unix(), 10))
}

func pod(phase corev1.PodPhase, created time.Time, finished time.Time) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(created)}}
	p.Status.Phase = phase
	if !finished.IsZero() {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(finished)}}}}
	}
	return p
}

func TestDecide(t *testing.T) {
	now := t0
	old := now.Add(-30 * 24 * time.Hour)
	week := 168 * time.Hour
	deleting := metav1.NewTime(now)
	tests := []struct {
		name       string
		mutate     func(*Config)
		in         Input
		wantReap   bool
		wantReason Reason
	}{
		{name: "idle", in: Input{Namespace: userNS("user-a", old, lastLogin(old))}, wantReap: true, wantReason: ReasonIdle},
		{name: "idle without last-used annotation", in: Input{Namespace: userNS("user-a", old)}, wantReap: true, wantReason: ReasonIdle},
		{name: "label missing", in: Input{Namespace: func() *corev1.Namespace {
			ns := userNS("user-a", old)
			ns.Labels = nil
			return ns
		}()}, wantReason: ReasonNotSelected},
		{name: "name does not match whole pattern", in: Input{Namespace: userNS("xuser-a", old)}, wantReason: ReasonNotSelected},
		{name: "prefix alone does not match user-.+", in: Input{Namespace: userNS("user-", old)}, wantReason: ReasonNotSelected},
		{name: "kube-system with catch-all pattern", mutate: catchAll,
			in: Input{Namespace: userNS("kube-system", old)}, wantReason: ReasonProtected},
		{name: "default with catch-all pattern", mutate: catchAll,
			in: Input{Namespace: userNS("default", old)}, wantReason: ReasonProtected},
		{name: "kube-anything with catch-all pattern", mutate: catchAll,
			in: Input{Namespace: userNS("kube-flannel", old)}, wantReason: ReasonProtected},
		{name: "openshift-x with catch-all pattern", mutate: catchAll,
			in: Input{Namespace: userNS("openshift-monitoring", old)}, wantReason: ReasonProtected},
		{name: "own namespace", mutate: func(c *Config) { catchAll(c); c.OwnNamespace = "reaper" },
			in: Input{Namespace: userNS("reaper", old)}, wantReason: ReasonProtected},
		{name: "site-protected namespace", mutate: func(c *Config) { c.ProtectedNamespaces = []string{"user-admin"} },
			in: Input{Namespace: userNS("user-admin", old)}, wantReason: ReasonProtected},
		{name: "terminating", in: Input{Namespace: func() *corev1.Namespace {
			ns := userNS("user-a", old)
			ns.DeletionTimestamp = &deleting
			return ns
		}()}, wantReason: ReasonTerminating},
		{name: "younger than reap-after", in: Input{Namespace: userNS("user-a", now.Add(-week+time.Minute))}, wantReason: ReasonTooYoung},
		{name: "exactly reap-after old", in: Input{Namespace: userNS("user-a", now.Add(-week))}, wantReap: true, wantReason: ReasonIdle},
		{name: "recent login", in: Input{Namespace: userNS("user-a", old, lastLogin(now.Add(-time.Hour)))}, wantReason: ReasonRecentLogin},
		{name: "login older than threshold", in: Input{Namespace: userNS("user-a", old, lastLogin(now.Add(-5*time.Hour)))}, wantReap: true, wantReason: ReasonIdle},
		{name: "last-used check disabled", mutate: func(c *Config) { c.LastUsedAnnotation = "" },
			in: Input{Namespace: userNS("user-a", old, lastLogin(now))}, wantReap: true, wantReason: ReasonIdle},
		{name: "unreadable last-used", in: Input{Namespace: userNS("user-a", old, annotate(identity.LastHookExecutionAnnotation, "foo"))},
			wantReason: ReasonInvalidLastUsed},
		{name: "pending pod", in: Input{Namespace: userNS("user-a", old), Pods: []*corev1.Pod{pod(corev1.PodPending, old, time.Time{})}},
			wantReason: ReasonActive},
		{name: "running pod", in: Input{Namespace: userNS("user-a", old), Pods: []*corev1.Pod{pod(corev1.PodRunning, old, time.Time{})}},
			wantReason: ReasonActive},
		{name: "pod finished within window", in: Input{Namespace: userNS("user-a", old),
			Pods: []*corev1.Pod{pod(corev1.PodSucceeded, old, now.Add(-24*time.Hour))}}, wantReason: ReasonActive},
		{name: "pod finished long ago does not keep it forever", in: Input{Namespace: userNS("user-a", old),
			Pods: []*corev1.Pod{pod(corev1.PodFailed, old, old.Add(time.Hour))}}, wantReap: true, wantReason: ReasonIdle},
		{name: "recorded activity within window", in: Input{Namespace: userNS("user-a", old,
			annotate(identity.LastActivityAnnotation, now.Add(-48*time.Hour).Format(time.RFC3339)))}, wantReason: ReasonActive},
		{name: "recorded activity too old", in: Input{Namespace: userNS("user-a", old,
			annotate(identity.LastActivityAnnotation, now.Add(-8*24*time.Hour).Format(time.RFC3339)))}, wantReap: true, wantReason: ReasonIdle},
		{name: "unreadable recorded activity", in: Input{Namespace: userNS("user-a", old, annotate(identity.LastActivityAnnotation, "yesterday"))},
			wantReason: ReasonInvalidActivity},
		{name: "observed, not yet recorded, activity", in: Input{Namespace: userNS("user-a", old), Observed: now.Add(-time.Minute)},
			wantReason: ReasonActive},
		{name: "Prometheus saw it", in: Input{Namespace: userNS("user-a", old), PrometheusActive: true}, wantReason: ReasonActivePrometheus},
		{name: "holds PVCs", in: Input{Namespace: userNS("user-a", old), HasPVCs: true}, wantReason: ReasonHasPVCs},
		{name: "holds PVCs, allowed", mutate: func(c *Config) { c.ReapWithPVCs = true },
			in: Input{Namespace: userNS("user-a", old), HasPVCs: true}, wantReap: true, wantReason: ReasonIdle},
		{name: "second label selector OR-ed", mutate: func(c *Config) { c.NamespaceLabels = []string{"a=b", "team=x"} },
			in: Input{Namespace: func() *corev1.Namespace {
				ns := userNS("user-a", old)
				ns.Labels = map[string]string{"team": "x"}
				return ns
			}()}, wantReap: true, wantReason: ReasonIdle},
		{name: "no creation time", in: Input{Namespace: userNS("user-a", time.Time{})}, wantReason: ReasonTooYoung},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var muts []func(*Config)
			if tt.mutate != nil {
				muts = append(muts, tt.mutate)
			}
			p := ondemandPolicy(t, muts...)
			got := p.Decide(tt.in, now)
			if got.Reap != tt.wantReap || got.Reason != tt.wantReason {
				t.Errorf("Decide(%s) = reap %v reason %q (%s), want reap %v reason %q",
					tt.in.Namespace.Name, got.Reap, got.Reason, got.Detail, tt.wantReap, tt.wantReason)
			}
		})
	}
}

func catchAll(c *Config) {
	c.NamespaceLabels = []string{}
	c.NamespaceRegexp = ".*"
}

func TestIsProtected(t *testing.T) {
	tests := map[string]bool{
		"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, "kube-x": true,
		"openshift": true, "openshift-etcd": true, "user-kube-system": false, "defaults": false, "user-a": false, "mine": true,
	}
	for name, want := range tests {
		if got := IsProtected(name, []string{"mine"}); got != want {
			t.Errorf("IsProtected(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestPodActivity(t *testing.T) {
	now := t0
	start := metav1.NewTime(t0.Add(-3 * time.Hour))
	tests := []struct {
		name string
		pod  *corev1.Pod
		want time.Time
	}{
		{name: "pending is active now", pod: pod(corev1.PodPending, t0.Add(-time.Hour), time.Time{}), want: now},
		{name: "unknown is active now", pod: pod(corev1.PodUnknown, t0.Add(-time.Hour), time.Time{}), want: now},
		{name: "succeeded: container finish", pod: pod(corev1.PodSucceeded, t0.Add(-5*time.Hour), t0.Add(-2*time.Hour)), want: t0.Add(-2 * time.Hour)},
		{name: "failed without statuses: start time", pod: func() *corev1.Pod {
			p := pod(corev1.PodFailed, t0.Add(-5*time.Hour), time.Time{})
			p.Status.StartTime = &start
			return p
		}(), want: start.Time},
	}
	for _, tt := range tests {
		if got := PodActivity(tt.pod, now); !got.Equal(tt.want) {
			t.Errorf("%s: PodActivity() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSlimKeepsWhatDecisionsRead(t *testing.T) {
	p := pod(corev1.PodSucceeded, t0.Add(-5*time.Hour), t0.Add(-2*time.Hour))
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: "big"}}
	p.Annotations = map[string]string{"a": "b"}
	p.ResourceVersion = "7"
	out, err := slim(p)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*corev1.Pod)
	if len(s.Spec.Containers) != 0 || s.Annotations != nil || s.ResourceVersion != "7" {
		t.Errorf("slim(pod) kept spec or annotations, or lost the resourceVersion: %+v", s)
	}
	if got, want := PodActivity(s, t0), PodActivity(p, t0); !got.Equal(want) {
		t.Errorf("PodActivity(slim(pod)) = %v, want %v", got, want)
	}
}

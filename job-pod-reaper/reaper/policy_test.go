package reaper

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/walltime"
)

// lifetimeCase is one row of the walltime table shared with pkg/walltime
// and the admission policies.
type lifetimeCase = walltime.Case

// loadLifetimes reads the table embedded in pkg/walltime.
func loadLifetimes(t testing.TB) []lifetimeCase {
	t.Helper()
	out, err := walltime.Table()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("read only %d rows from the lifetimes table", len(out))
	}
	return out
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testPod(ns, name string, lifetime *string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), Labels: labels,
		CreationTimestamp: metav1.NewTime(t0),
	}}
	if lifetime != nil {
		p.Annotations = map[string]string{identity.LifetimeAnnotation: *lifetime}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// asPod is pod as the reaper sees it, with the job label "job".
func asPod(pod *corev1.Pod) *Pod { return asPods("job", pod)[0] }

// asPods are pods as the reaper sees them with the job label jobLabel.
func asPods(jobLabel string, pods ...*corev1.Pod) []*Pod {
	r := &Reaper{cfg: &Config{}, jobLabel: jobLabel}
	out := make([]*Pod, len(pods))
	for i, p := range pods {
		out[i] = r.slim(p)
	}
	return out
}

// TestEvaluateSharedTable: every accepted value expires exactly at creation
// + its duration; every rejected value is reported as invalid.
func TestEvaluateSharedTable(t *testing.T) {
	for _, c := range loadLifetimes(t) {
		t.Run(strconv.Quote(c.Value), func(t *testing.T) {
			pod := testPod("ns", "p", ptr(c.Value), nil)
			p := Policy{AgeFrom: AgeFromCreation}
			if !c.Accepted {
				v := p.Evaluate(asPod(pod), t0.Add(1000*time.Hour))
				if v.Invalid == nil || v.Skip != SkipInvalidLifetime || v.Expired {
					t.Fatalf("Evaluate(%q) = %+v, want invalid and skipped", c.Value, v)
				}
				return
			}
			before := p.Evaluate(asPod(pod), t0.Add(c.Duration-time.Nanosecond))
			if before.Expired || before.Skip != "" || !before.Next.Equal(t0.Add(c.Duration)) {
				t.Errorf("Evaluate(%q) just before the end = %+v, want waiting until %v", c.Value, before, t0.Add(c.Duration))
			}
			at := p.Evaluate(asPod(pod), t0.Add(c.Duration))
			if !at.Expired || at.Lifetime != c.Duration || at.Source != SourceAnnotation {
				t.Errorf("Evaluate(%q) at the end = %+v, want expired with lifetime %v", c.Value, at, c.Duration)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	started := metav1.NewTime(t0.Add(10 * time.Minute))
	cases := []struct {
		name   string
		pod    func() *corev1.Pod
		policy Policy
		now    time.Time
		want   Verdict
	}{
		{
			name:   "no annotation, no default",
			pod:    func() *corev1.Pod { return testPod("ns", "p", nil, nil) },
			policy: Policy{AgeFrom: AgeFromCreation},
			now:    t0.Add(100 * time.Hour),
			want:   Verdict{Skip: SkipNoLifetime},
		},
		{
			name:   "no annotation, default applies",
			pod:    func() *corev1.Pod { return testPod("ns", "p", nil, nil) },
			policy: Policy{AgeFrom: AgeFromCreation, DefaultLifetime: time.Hour},
			now:    t0.Add(time.Hour),
			want:   Verdict{Lifetime: time.Hour, Source: SourceDefault, Start: t0, Deadline: t0.Add(time.Hour), Expired: true},
		},
		{
			name:   "no annotation, max applies when no default",
			pod:    func() *corev1.Pod { return testPod("ns", "p", nil, nil) },
			policy: Policy{AgeFrom: AgeFromCreation, MaxLifetime: 2 * time.Hour},
			now:    t0.Add(time.Hour),
			want:   Verdict{Lifetime: 2 * time.Hour, Source: SourceMax, Start: t0, Deadline: t0.Add(2 * time.Hour), Next: t0.Add(2 * time.Hour)},
		},
		{
			name:   "annotation longer than max is capped",
			pod:    func() *corev1.Pod { return testPod("ns", "p", ptr("48h"), nil) },
			policy: Policy{AgeFrom: AgeFromCreation, MaxLifetime: 24 * time.Hour},
			now:    t0.Add(24 * time.Hour),
			want:   Verdict{Lifetime: 24 * time.Hour, Source: SourceMax, Start: t0, Deadline: t0.Add(24 * time.Hour), Expired: true},
		},
		{
			name:   "invalid annotation falls back to the default and is still reported",
			pod:    func() *corev1.Pod { return testPod("ns", "p", ptr("1d"), nil) },
			policy: Policy{AgeFrom: AgeFromCreation, DefaultLifetime: time.Hour},
			now:    t0.Add(30 * time.Minute),
			want:   Verdict{Lifetime: time.Hour, Source: SourceDefault, Start: t0, Deadline: t0.Add(time.Hour), Next: t0.Add(time.Hour)},
		},
		{
			name:   "start time mode counts from status.startTime",
			pod:    func() *corev1.Pod { p := testPod("ns", "p", ptr("1h"), nil); p.Status.StartTime = &started; return p },
			policy: Policy{AgeFrom: AgeFromStart},
			now:    t0.Add(time.Hour),
			want:   Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: started.Time, Deadline: started.Add(time.Hour), Next: started.Add(time.Hour)},
		},
		{
			name:   "start time mode, pod not started",
			pod:    func() *corev1.Pod { return testPod("ns", "p", ptr("1h"), nil) },
			policy: Policy{AgeFrom: AgeFromStart},
			now:    t0.Add(10 * time.Hour),
			want:   Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Skip: SkipNotStarted},
		},
		{
			name: "terminating pod",
			pod: func() *corev1.Pod {
				p := testPod("ns", "p", ptr("1h"), nil)
				p.DeletionTimestamp = ptr(metav1.NewTime(t0))
				return p
			},
			policy: Policy{AgeFrom: AgeFromCreation},
			now:    t0.Add(10 * time.Hour),
			want:   Verdict{Skip: SkipTerminating},
		},
		{
			name:   "before the warning window the next event is the warning",
			pod:    func() *corev1.Pod { return testPod("ns", "p", ptr("1h"), nil) },
			policy: Policy{AgeFrom: AgeFromCreation, WarnBefore: 10 * time.Minute},
			now:    t0.Add(49 * time.Minute),
			want:   Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: t0.Add(time.Hour), Next: t0.Add(50 * time.Minute)},
		},
		{
			name:   "inside the warning window",
			pod:    func() *corev1.Pod { return testPod("ns", "p", ptr("1h"), nil) },
			policy: Policy{AgeFrom: AgeFromCreation, WarnBefore: 10 * time.Minute},
			now:    t0.Add(50 * time.Minute),
			want:   Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: t0.Add(time.Hour), Next: t0.Add(time.Hour), Warn: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.policy.Evaluate(asPod(c.pod()), c.now)
			gotInvalid := got.Invalid != nil
			got.Invalid = nil
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Evaluate() mismatch (-want +got):\n%s", diff)
			}
			_, hasAnn := c.pod().Annotations[identity.LifetimeAnnotation]
			wantInvalid := hasAnn && c.name == "invalid annotation falls back to the default and is still reported"
			if gotInvalid != wantInvalid {
				t.Errorf("Evaluate().Invalid set = %v, want %v", gotInvalid, wantInvalid)
			}
		})
	}
}

// TestEvaluateTerminating: a pod being deleted is left to finish, unless
// its deletion would let it run past max(deadline, now) + MaxGrace (its
// owner deleted it with a huge gracePeriodSeconds): then it is to be
// deleted again with MaxGrace, at its deadline.
func TestEvaluateTerminating(t *testing.T) {
	const year = 31536000
	// terminating is a 1h pod deleted at `at` with grace seconds.
	terminating := func(lifetime *string, at time.Time, grace int64) func() *corev1.Pod {
		return func() *corev1.Pod {
			p := testPod("ns", "p", lifetime, nil)
			p.DeletionTimestamp = ptr(metav1.NewTime(at.Add(time.Duration(grace) * time.Second)))
			p.DeletionGracePeriodSeconds = ptr(grace)
			return p
		}
	}
	capped := Policy{AgeFrom: AgeFromCreation, MaxGrace: 30 * time.Second, WarnBefore: 10 * time.Minute}
	deadline := t0.Add(time.Hour)
	cases := []struct {
		name   string
		pod    func() *corev1.Pod
		policy Policy
		now    time.Time
		want   Verdict
	}{
		{
			name: "no cap: skipped whatever its grace period", pod: terminating(ptr("1h"), t0, year),
			policy: Policy{AgeFrom: AgeFromCreation}, now: t0.Add(10 * time.Hour),
			want: Verdict{Skip: SkipTerminating},
		},
		{
			name: "deleted with a year's grace, past its walltime: shortened", pod: terminating(ptr("1h"), t0.Add(time.Minute), year),
			policy: capped, now: deadline.Add(time.Second),
			want: Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: deadline, Expired: true, Shorten: true},
		},
		{
			name: "deleted with a year's grace, past its walltime + max grace: shortened", pod: terminating(ptr("1h"), t0.Add(time.Minute), year),
			policy: capped, now: deadline.Add(time.Hour),
			want: Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: deadline, Expired: true, Shorten: true},
		},
		{
			name: "deleted with a year's grace, within its walltime: due at the deadline, no warning", pod: terminating(ptr("1h"), t0.Add(time.Minute), year),
			policy: capped, now: deadline.Add(-time.Minute),
			want: Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: deadline, Next: deadline, Shorten: true},
		},
		{
			name: "deleted by the reaper with the max grace: left to finish", pod: terminating(ptr("1h"), deadline, 30),
			policy: capped, now: deadline.Add(time.Hour),
			want: Verdict{Skip: SkipTerminating},
		},
		{
			name: "grace over the max but ending before deadline + max grace: left to finish", pod: terminating(ptr("1h"), t0, 3600+20),
			policy: capped, now: deadline,
			want: Verdict{Skip: SkipTerminating},
		},
		{
			name: "grace over the max, ending within max grace of now: left to finish", pod: terminating(ptr("1h"), t0.Add(30*time.Minute), 3600),
			policy: capped, now: t0.Add(90*time.Minute - 10*time.Second),
			want: Verdict{Skip: SkipTerminating},
		},
		{
			name: "one second over the max grace: shortened", pod: terminating(ptr("1h"), deadline, 31),
			policy: capped, now: deadline,
			want: Verdict{Lifetime: time.Hour, Source: SourceAnnotation, Start: t0, Deadline: deadline, Expired: true, Shorten: true},
		},
		{
			name: "no lifetime: skipped as terminating", pod: terminating(nil, t0, year),
			policy: capped, now: t0.Add(10 * time.Hour),
			want: Verdict{Skip: SkipTerminating},
		},
		{
			name: "no lifetime but a maximum: shortened", pod: terminating(nil, t0, year),
			policy: Policy{AgeFrom: AgeFromCreation, MaxGrace: 30 * time.Second, MaxLifetime: 2 * time.Hour}, now: t0.Add(2 * time.Hour),
			want: Verdict{Lifetime: 2 * time.Hour, Source: SourceMax, Start: t0, Deadline: t0.Add(2 * time.Hour), Expired: true, Shorten: true},
		},
		{
			name: "no deletion grace period recorded: skipped", pod: func() *corev1.Pod {
				p := terminating(ptr("1h"), t0, year)()
				p.DeletionGracePeriodSeconds = nil
				return p
			},
			policy: capped, now: t0.Add(10 * time.Hour),
			want: Verdict{Skip: SkipTerminating},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.policy.Evaluate(asPod(c.pod()), c.now)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Evaluate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsOrphan(t *testing.T) {
	live := map[NamespacedJob]bool{{Namespace: "a", Job: "j1"}: true}
	pass := t0
	cases := []struct {
		name string
		o    Object
		want bool
	}{
		{"live job in same namespace", Object{Namespace: "a", Job: "j1", Created: t0.Add(-time.Hour)}, false},
		{"same job id in another namespace protects nothing", Object{Namespace: "b", Job: "j1", Created: t0.Add(-time.Hour)}, true},
		{"no job label", Object{Namespace: "a", Job: "", Created: t0.Add(-time.Hour)}, false},
		{"created after the pass began", Object{Namespace: "a", Job: "j9", Created: t0.Add(time.Second)}, false},
		{"created within min age", Object{Namespace: "a", Job: "j9", Created: t0.Add(-30 * time.Second)}, false},
		{"created exactly min age before", Object{Namespace: "a", Job: "j9", Created: t0.Add(-time.Minute)}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsOrphan(c.o, live, pass, time.Minute); got != c.want {
				t.Errorf("IsOrphan(%+v) = %v, want %v", c.o, got, c.want)
			}
		})
	}
}

func TestBuildPlan(t *testing.T) {
	lbl := func(job string) map[string]string { return map[string]string{"job": job} }
	p1h := testPod("a", "expired", ptr("1h"), lbl("j1"))
	p3h := testPod("a", "live", ptr("3h"), lbl("j2"))
	p30m := testPod("a", "older", ptr("30m"), lbl("j3"))
	// Two pods of one job: one expired, one live: the job's objects stay.
	shared1 := testPod("a", "shared-1", ptr("1h"), lbl("j4"))
	shared2 := testPod("a", "shared-2", ptr("5h"), lbl("j4"))
	// Same job id as the live pod, but in namespace b, expired.
	bPod := testPod("b", "expired", ptr("1h"), lbl("j2"))
	noLife := testPod("a", "nolife", nil, lbl("j5"))
	old := t0.Add(-time.Hour)
	objs := []Object{
		{Kind: KindService, Namespace: "a", Name: "j1-service", Job: "j1", Created: old},
		{Kind: KindConfigMap, Namespace: "a", Name: "j1-configmap", Job: "j1", Created: old},
		{Kind: KindConfigMap, Namespace: "a", Name: "j2-configmap", Job: "j2", Created: old},
		{Kind: KindConfigMap, Namespace: "a", Name: "j4-configmap", Job: "j4", Created: old},
		{Kind: KindSecret, Namespace: "b", Name: "j2-secret", Job: "j2", Created: old},
		{Kind: KindSecret, Namespace: "a", Name: "orphan-secret", Job: "gone", Created: old},
		{Kind: KindSecret, Namespace: "a", Name: "new-orphan", Job: "gone2", Created: t0.Add(2 * time.Hour)},
	}
	now := t0.Add(2 * time.Hour)
	plan := BuildPlan(asPods("job", p1h, p3h, p30m, shared1, shared2, bPod, noLife), objs, now, now, Policy{AgeFrom: AgeFromCreation}, time.Minute)

	var gotExpired []string
	companions := map[string][]string{}
	for _, e := range plan.Expired {
		gotExpired = append(gotExpired, e.Pod.Namespace+"/"+e.Pod.Name)
		for _, o := range e.Companions {
			companions[e.Pod.Namespace+"/"+e.Pod.Name] = append(companions[e.Pod.Namespace+"/"+e.Pod.Name], o.Name)
		}
	}
	// The 30m pod is the longest overdue; ties by name.
	wantExpired := []string{"a/older", "a/expired", "a/shared-1", "b/expired"}
	if diff := cmp.Diff(wantExpired, gotExpired); diff != "" {
		t.Errorf("expired (-want +got):\n%s", diff)
	}
	wantComp := map[string][]string{"a/expired": {"j1-service", "j1-configmap"}, "b/expired": {"j2-secret"}}
	if diff := cmp.Diff(wantComp, companions); diff != "" {
		t.Errorf("companions (-want +got):\n%s", diff)
	}
	var orphans []string
	for _, o := range plan.Orphans {
		orphans = append(orphans, o.Namespace+"/"+o.Name)
	}
	if diff := cmp.Diff([]string{"a/orphan-secret"}, orphans); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
	if plan.Skipped[SkipNoLifetime] != 1 {
		t.Errorf("skipped[no-lifetime] = %d, want 1", plan.Skipped[SkipNoLifetime])
	}
	if len(plan.Waiting) != 2 {
		t.Errorf("waiting = %d pods, want 2 (live, shared-2)", len(plan.Waiting))
	}
}

func TestBuildPlanNoJobLabel(t *testing.T) {
	pod := testPod("a", "p", ptr("1h"), map[string]string{"job": "j1"})
	objs := []Object{{Kind: KindConfigMap, Namespace: "a", Name: "cm", Job: "", Created: t0.Add(-time.Hour)}}
	now := t0.Add(2 * time.Hour)
	plan := BuildPlan(asPods("", pod), objs, now, now, Policy{AgeFrom: AgeFromCreation}, time.Minute)
	if len(plan.Expired) != 1 || len(plan.Expired[0].Companions) != 0 || len(plan.Orphans) != 0 {
		t.Errorf("BuildPlan with job label none = %+v, want the pod only", plan)
	}
}

package reaper

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestOnceReapsOnlyIdle runs one --once pass over namespaces in every state
// and checks that exactly the idle ones were deleted, each with an Event.
func TestOnceReapsOnlyIdle(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOpts{}, nil)
	now := h.clock.Now()
	other := map[string]string{identity.OnDemandNameLabel: "something-else", "kubehpc-test": h.labels["kubehpc-test"]}

	idle := h.namespace(t, loginAt(now.Add(-10*24*time.Hour)))
	idleNoLogin := h.namespace(t, nil)
	finishedLongAgo := h.namespace(t, nil)
	createPod(t, finishedLongAgo, corev1.PodSucceeded, time.Now()) // 8 days before the clock
	running := h.namespace(t, nil)
	createPod(t, running, corev1.PodRunning, time.Time{})
	pending := h.namespace(t, nil)
	createPod(t, pending, corev1.PodPending, time.Time{})
	finishedRecently := h.namespace(t, nil)
	createPod(t, finishedRecently, corev1.PodFailed, now.Add(-time.Hour))
	recentLogin := h.namespace(t, loginAt(now.Add(-time.Hour)))
	recordedActivity := h.namespace(t, map[string]string{identity.LastActivityAnnotation: now.Add(-48 * time.Hour).UTC().Format(time.RFC3339)})
	withPVC := h.namespace(t, nil)
	createPVC(t, withPVC)
	badLogin := h.namespace(t, map[string]string{identity.LastHookExecutionAnnotation: "foo"})
	wrongLabel := h.namespaceWith(t, "user-", other, nil)
	wrongName := h.namespaceWith(t, "home-", h.labels, nil)

	if err := h.r.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce() = %v", err)
	}
	want := map[string]bool{
		idle: true, idleNoLogin: true, finishedLongAgo: true,
		running: false, pending: false, finishedRecently: false, recentLogin: false, recordedActivity: false,
		withPVC: false, badLogin: false, wrongLabel: false, wrongName: false,
	}
	for ns, wantDeleted := range want {
		if got := deletionRequested(t, ns); got != wantDeleted {
			t.Errorf("namespace %s: deletion requested = %v, want %v", ns, got, wantDeleted)
		}
	}
	if got := h.reaped(); got != 3 {
		t.Errorf("reaped_total = %v, want 3", got)
	}
	for reason, n := range map[Reason]float64{ReasonActive: 4, ReasonRecentLogin: 1, ReasonHasPVCs: 1, ReasonInvalidLastUsed: 1} {
		if got := h.kept(reason); got != n {
			t.Errorf("kept{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	if got := testutil.ToFloat64(h.r.metrics.candidates); got != 10 {
		t.Errorf("candidates = %v, want 10", got)
	}
	// O(1) cluster-wide LISTs: one for namespaces and one for pods, and a
	// GET plus a LIST of pods for each of the 3 namespaces deleted.
	if got := h.count("GET pods"); got != 1+3 {
		t.Errorf("pod reads = %d, want 4 (%s)", got, h.counter)
	}
	if got := h.count("GET namespaces"); got != 1+3 {
		t.Errorf("namespace reads = %d, want 4 (%s)", got, h.counter)
	}
	// An Event on each deleted namespace says why.
	testenv.Eventually(t, "the Reaped event on "+idle, func() (bool, error) {
		evs, err := env.Kube.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", idle).String()})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "Reaped" && e.InvolvedObject.Kind == "Namespace" && strings.Contains(e.Message, "no pod activity since never") &&
				strings.Contains(e.Message, "last login "+now.Add(-10*24*time.Hour).UTC().Format(time.RFC3339)) {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestYoungNamespaceKept: a namespace younger than --reap-after is kept
// even with no login and no pod.
func TestYoungNamespaceKept(t *testing.T) {
	h := newHarness(t, harnessOpts{offset: week - time.Hour}, nil)
	young := h.namespace(t, nil)
	must(t, h.r.RunOnce(context.Background()))
	if deletionRequested(t, young) {
		t.Errorf("namespace %s, a week minus an hour old, was deleted", young)
	}
	if got := h.kept(ReasonTooYoung); got != 1 {
		t.Errorf("kept{too_young} = %v, want 1", got)
	}
	if got := h.counter.Writes(); got != 0 {
		t.Errorf("writes = %d, want 0 (%s)", got, h.counter)
	}
}

// TestPVCsAllowed: with --reap-with-pvcs an idle namespace holding a claim
// is deleted.
func TestPVCsAllowed(t *testing.T) {
	h := newHarness(t, harnessOpts{}, func(c *Config) { c.ReapWithPVCs = true })
	ns := h.namespace(t, nil)
	createPVC(t, ns)
	must(t, h.r.RunOnce(context.Background()))
	if !deletionRequested(t, ns) {
		t.Errorf("idle namespace %s with a PVC and --reap-with-pvcs was kept", ns)
	}
}

// TestCatchAllKeepsSystemNamespaces: even a pattern matching every name
// with no label selector never deletes default, kube-* or the tool's own
// namespace.
func TestCatchAllKeepsSystemNamespaces(t *testing.T) {
	ctx := context.Background()
	own := env.Namespace(t, "reaper-home-", nil)
	h := newHarness(t, harnessOpts{noTestLabel: true}, func(c *Config) {
		c.NamespaceLabels = nil
		c.NamespaceRegexp = ".*"
		c.OwnNamespace = own
		c.MaxDeletionsPerPass = 1000
	})
	idle := h.namespace(t, nil)
	must(t, h.r.RunOnce(ctx))
	for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", "default", own} {
		if deletionRequested(t, ns) {
			t.Errorf("namespace %s was deleted by a catch-all pattern", ns)
		}
	}
	if !deletionRequested(t, idle) {
		t.Errorf("idle namespace %s was kept: the catch-all pass did not run", idle)
	}
	if got := h.kept(ReasonProtected); got < 5 {
		t.Errorf("kept{protected} = %v, want at least 5", got)
	}
}

// TestTerminatingSkipped: a namespace already being deleted is not deleted again.
func TestTerminatingSkipped(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOpts{}, nil)
	ns := h.namespace(t, nil)
	must(t, env.Kube.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	must(t, h.r.RunOnce(ctx))
	if got := h.count("DELETE namespaces"); got != 0 {
		t.Errorf("DELETE namespaces = %d, want 0", got)
	}
	if got := h.kept(ReasonTerminating); got != 1 {
		t.Errorf("kept{terminating} = %v, want 1", got)
	}
}

// TestPerPassCap: with 5 idle namespaces and a cap of 2, a pass deletes the
// 2 least recently active and defers the rest.
func TestPerPassCap(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOpts{}, func(c *Config) { c.MaxDeletionsPerPass = 2 })
	now := h.clock.Now()
	var names []string // most idle first
	for i := range 5 {
		at := now.Add(-time.Duration(20-i) * 24 * time.Hour).UTC().Format(time.RFC3339)
		names = append(names, h.namespace(t, map[string]string{identity.LastActivityAnnotation: at}))
	}
	must(t, h.r.RunOnce(ctx))
	for i, ns := range names {
		if got, want := deletionRequested(t, ns), i < 2; got != want {
			t.Errorf("after pass 1, namespace %d (%s) deletion requested = %v, want %v", i, ns, got, want)
		}
	}
	if got := h.kept(ReasonDeferred); got != 3 {
		t.Errorf("kept{deferred} = %v, want 3", got)
	}
	if got := h.count("DELETE namespaces"); got != 2 {
		t.Errorf("DELETE namespaces = %d, want 2", got)
	}
	must(t, h.r.RunOnce(ctx))
	if got := h.reaped(); got != 4 {
		t.Errorf("after pass 2, reaped_total = %v, want 4", got)
	}
}

// TestDryRun: nothing is written (no delete, no Event), but the would-be
// deletion is counted.
func TestDryRun(t *testing.T) {
	h := newHarness(t, harnessOpts{}, func(c *Config) { c.DryRun = true })
	ns := h.namespace(t, nil)
	must(t, h.r.RunOnce(context.Background()))
	if deletionRequested(t, ns) {
		t.Errorf("dry-run deleted namespace %s", ns)
	}
	if got := h.counter.Writes(); got != 0 {
		t.Errorf("dry-run made %d writes (%s), want 0", got, h.counter)
	}
	if got := testutil.ToFloat64(h.r.metrics.wouldReap); got != 1 {
		t.Errorf("dry_run_reaped_total = %v, want 1", got)
	}
	if got := h.reaped(); got != 0 {
		t.Errorf("reaped_total = %v, want 0", got)
	}
}

// TestTouchedBeforeDelete: a namespace found idle but touched between the
// decision and the deletion is kept. The change is made by intercepting the
// reaper's own final-check requests, so it lands exactly in that window.
func TestTouchedBeforeDelete(t *testing.T) {
	tests := []struct {
		name string
		// path the change is made before: the re-read of the namespace,
		// the live pod list, or the live PVC list (just before the delete).
		before     func(ns string) string
		touch      func(t *testing.T, ns string, now time.Time)
		wantReason Reason
	}{
		{
			name:   "login",
			before: func(ns string) string { return "/api/v1/namespaces/" + ns },
			touch: func(t *testing.T, ns string, now time.Time) {
				patchAnnotation(t, ns, identity.LastHookExecutionAnnotation, loginAt(now)[identity.LastHookExecutionAnnotation])
			},
			wantReason: ReasonRecentLogin,
		},
		{
			name:       "pod started",
			before:     func(ns string) string { return "/api/v1/namespaces/" + ns + "/pods" },
			touch:      func(t *testing.T, ns string, _ time.Time) { createPod(t, ns, corev1.PodPending, time.Time{}) },
			wantReason: ReasonActive,
		},
		{
			name:   "any write after the re-read",
			before: func(ns string) string { return "/api/v1/namespaces/" + ns + "/persistentvolumeclaims" },
			touch: func(t *testing.T, ns string, _ time.Time) {
				patchAnnotation(t, ns, "example.org/touched", "yes")
			},
			wantReason: ReasonChanged,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				once   sync.Once
				target string
				h      *harness
			)
			ready := make(chan struct{})
			h = newHarness(t, harnessOpts{wrap: func(req *http.Request) {
				<-ready
				if req.Method == http.MethodGet && req.URL.Path == tt.before(target) {
					once.Do(func() { tt.touch(t, target, h.clock.Now()) })
				}
			}}, nil)
			target = h.namespace(t, nil)
			close(ready)
			must(t, h.r.RunOnce(context.Background()))
			if deletionRequested(t, target) {
				t.Errorf("namespace %s touched during the final check was deleted", target)
			}
			if got := h.kept(tt.wantReason); got != 1 {
				t.Errorf("kept{%s} = %v, want 1", tt.wantReason, got)
			}
			if got := h.reaped(); got != 0 {
				t.Errorf("reaped_total = %v, want 0", got)
			}
		})
	}
}

func patchAnnotation(t *testing.T, ns, key, value string) {
	t.Helper()
	patch := `{"metadata":{"annotations":{"` + key + `":"` + value + `"}}}`
	if _, err := env.Kube.Client.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate namespace %s: %v", ns, err)
	}
}

package reaper

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

func activityAnnotation(t *testing.T, ns string) string {
	t.Helper()
	obj, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace %s: %v", ns, err)
	}
	return obj.Annotations[identity.LastActivityAnnotation]
}

func waitAnnotation(t *testing.T, ns string, want time.Time) {
	t.Helper()
	v := want.UTC().Format(time.RFC3339)
	testenv.Eventually(t, "namespace "+ns+" to record activity "+v, func() (bool, error) { return activityAnnotation(t, ns) == v, nil })
}

// TestWatchMode: the pod watch records pod activity on the namespace, at
// most once per --activity-record-interval, and a pass decides from the
// caches with no cluster-wide LIST, re-checking only the idle namespace live.
func TestWatchMode(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOpts{watch: true}, nil)
	busy := h.namespace(t, nil)
	marker := h.namespace(t, nil)
	idle := h.namespace(t, nil)
	t0 := h.clock.Now()

	createPod(t, busy, corev1.PodPending, time.Time{})
	waitAnnotation(t, busy, t0)
	if got := h.count("PATCH namespaces"); got != 1 {
		t.Fatalf("PATCH namespaces = %d after the first pod, want 1 (%s)", got, h.counter)
	}

	// A minute later another pod starts in busy: the write is throttled.
	h.clock.Step(time.Minute)
	createPod(t, busy, corev1.PodPending, time.Time{})
	// The queue is FIFO with one worker: once marker (queued after busy)
	// has been written, busy's throttled write has been decided.
	createPod(t, marker, corev1.PodPending, time.Time{})
	waitAnnotation(t, marker, t0.Add(time.Minute))
	if got := activityAnnotation(t, busy); got != t0.UTC().Format(time.RFC3339) {
		t.Errorf("busy's activity = %s within the throttle interval, want still %s", got, t0.UTC().Format(time.RFC3339))
	}
	if got := h.count("PATCH namespaces"); got != 2 {
		t.Errorf("PATCH namespaces = %d, want 2: busy throttled, marker written (%s)", got, h.counter)
	}
	// When the interval is over, the latest activity is written.
	h.clock.Step(15 * time.Minute)
	waitAnnotation(t, busy, t0.Add(time.Minute))
	if got := h.count("PATCH namespaces"); got != 3 {
		t.Errorf("PATCH namespaces = %d, want 3 (%s)", got, h.counter)
	}

	// A pass from the caches: no cluster-wide LIST of namespaces or pods;
	// one live re-read, pod list and PVC list for the one idle namespace
	// (plus the cluster-wide PVC list).
	h.counter.Reset()
	must(t, h.r.RunOnce(ctx))
	if !deletionRequested(t, idle) {
		t.Errorf("idle namespace %s was kept", idle)
	}
	for _, ns := range []string{busy, marker} {
		if deletionRequested(t, ns) {
			t.Errorf("namespace %s with a pending pod was deleted", ns)
		}
	}
	for key, want := range map[string]int{"GET namespaces": 1, "GET pods": 1, "GET persistentvolumeclaims": 2, "DELETE namespaces": 1} {
		if got := h.count(key); got != want {
			t.Errorf("%s = %d in a watch-mode pass, want %d (%s)", key, got, want, h.counter)
		}
	}
	if got := h.kept(ReasonActive); got != 2 {
		t.Errorf("kept{active} = %v, want 2", got)
	}
}

// TestWatchDryRunWritesNothing: in dry-run the watch does not annotate.
func TestWatchDryRunWritesNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{watch: true}, func(c *Config) { c.DryRun = true })
	busy := h.namespace(t, nil)
	createPod(t, busy, corev1.PodPending, time.Time{})
	// The worker marks a namespace written even in dry-run (it logs instead).
	testenv.Eventually(t, "the watch to handle the pod", func() (bool, error) {
		h.r.watch.mu.Lock()
		defer h.r.watch.mu.Unlock()
		return !h.r.watch.written[busy].IsZero(), nil
	})
	must(t, h.r.RunOnce(context.Background()))
	if got := h.counter.Writes(); got != 0 {
		t.Errorf("dry-run watch made %d writes (%s), want 0", got, h.counter)
	}
	if deletionRequested(t, busy) {
		t.Errorf("namespace %s was deleted in dry-run", busy)
	}
}

// TestWatchStartupWritesNothing: pods listed at start-up do not make the
// watch patch their namespaces; deleting a finished pod later records its
// finish time, not the time of deletion.
func TestWatchStartupWritesNothing(t *testing.T) {
	ctx := context.Background()
	sel := newHarness(t, harnessOpts{}, nil) // only for its namespace labels
	ns := sel.namespace(t, nil)
	finished := time.Now().Add(time.Minute).Truncate(time.Second) // after its creation
	p := createPod(t, ns, corev1.PodSucceeded, finished)
	h := newHarness(t, harnessOpts{watch: true}, func(c *Config) { c.NamespaceLabels = []string{labelSelector(sel.labels)} })
	must(t, env.Kube.Client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}))
	waitAnnotation(t, ns, finished)
	if got := h.count("PATCH namespaces"); got != 1 {
		t.Errorf("PATCH namespaces = %d, want 1: none at start-up, one for the deletion (%s)", got, h.counter)
	}
}

func labelSelector(l map[string]string) string {
	return identity.OnDemandNameLabel + "=" + l[identity.OnDemandNameLabel] + ",kubehpc-test=" + l["kubehpc-test"]
}

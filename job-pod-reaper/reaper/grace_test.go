package reaper

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// aYear is the grace period a portal user gives her pod to escape its
// walltime.
const aYear = int64(31536000)

// boundPod creates a pod with a 1h walltime bound to a Node (an unbound
// pod is deleted at once whatever its grace period: only a bound one stays
// Terminating for its grace period; the test env has no kubelet, so it
// stays Terminating until its deletionTimestamp), with terminationGrace
// seconds of grace (0: the default).
func boundPod(t *testing.T, ns, name, node string, terminationGrace int64) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{identity.ManagedByLabel: identity.OnDemandManagedBy},
			Annotations: map[string]string{identity.LifetimeAnnotation: "1h"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.org/app"}}},
	}
	if terminationGrace > 0 {
		pod.Spec.TerminationGracePeriodSeconds = ptr(terminationGrace)
	}
	got, err := env.Kube.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return got
}

// testNode creates a Node object (no kubelet behind it) so that the pod
// garbage collector leaves the pods bound to it alone.
func testNode(t *testing.T) string {
	t.Helper()
	name := env.UniqueName("grace-node-")
	ctx := context.Background()
	if _, err := env.Kube.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// userDelete deletes a pod as its owner would, with a year's grace, and
// checks that the API server keeps it Terminating with that grace.
func userDelete(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	pods := env.Kube.Client.CoreV1().Pods(ns)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(aYear)}); err != nil {
		t.Fatalf("delete pod %s/%s with a year's grace: %v", ns, name, err)
	}
	p, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != aYear {
		t.Fatalf("pod %s/%s after a delete with a year's grace = %+v, %v; want Terminating with grace %d", ns, name, p.ObjectMeta, err, aYear)
	}
}

// graceOf returns the pod's deletionGracePeriodSeconds (-1 when it is not
// terminating, -2 when it is gone).
func graceOf(t *testing.T, ns, name string) int64 {
	t.Helper()
	p, err := env.Kube.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	switch {
	case err != nil:
		return -2
	case p.DeletionGracePeriodSeconds == nil:
		return -1
	default:
		return *p.DeletionGracePeriodSeconds
	}
}

// TestOnceGraceEscapesClosed, against the real API server: a pod whose
// owner deleted it with gracePeriodSeconds of a year (Terminating for a
// year; the reaper used to skip every terminating pod) is deleted again
// past its walltime, which shortens its deletion to --max-grace-period;
// and a pod whose terminationGracePeriodSeconds is a year is deleted with
// --max-grace-period, not its own. Both then finish on their own: the next
// pass leaves them alone.
func TestOnceGraceEscapesClosed(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "grace-", lbl)
	node := testNode(t)
	boundPod(t, ns, "user-deleted", node, aYear)
	boundPod(t, ns, "long-grace", node, aYear)
	boundPod(t, ns, "short-grace", node, 10)
	userDelete(t, ns, "user-deleted")

	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--max-grace-period=30s"}, true, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	for name, want := range map[string]int64{"user-deleted": 30, "long-grace": 30, "short-grace": 10} {
		if g := graceOf(t, ns, name); g != want {
			t.Errorf("deletionGracePeriodSeconds of %s/%s after the pass = %d, want %d", ns, name, g, want)
		}
	}
	if n := testutil.ToFloat64(h.r.metrics.graceShortened); n != 1 {
		t.Errorf("grace_periods_shortened_total = %v, want 1", n)
	}
	if msg := waitEvent(t, ns, "user-deleted", ReasonWalltimeExceeded); msg != "walltime of 1h0m0s exceeded; shortened the pod's termination grace period from 31536000s to 30s" {
		t.Errorf("Event on user-deleted = %q", msg)
	}
	// The next pass (a new CronJob run) leaves the terminating pods alone.
	h2 := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--max-grace-period=30s"}, true, time.Now().Add(2*time.Hour))
	h2.runOnce(t)
	if n := testutil.ToFloat64(h2.r.metrics.skipped.WithLabelValues(SkipTerminating)); n != 3 {
		t.Errorf("skipped_pods{reason=terminating} on the next pass = %v, want 3", n)
	}
	if w := h2.counter.Total("DELETE"); w != 0 {
		t.Errorf("the next pass made %d DELETEs, want 0", w)
	}
}

// TestWatchShortensGraceAtDeadline: in watch mode, a pod its owner deleted
// with a year's grace while within its walltime keeps running to its
// deadline, and at the deadline its deletion is shortened to
// --max-grace-period.
func TestWatchShortensGraceAtDeadline(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "gracew-", lbl)
	node := testNode(t)
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--max-grace-period=20s"}, false, time.Now())
	pod := boundPod(t, ns, "session", node, 0)
	userDelete(t, ns, "session")
	key := ns + "/session"
	testenv.Eventually(t, "the terminating pod in the reaper's cache", func() (bool, error) {
		p := h.r.watch.pod(key)
		return p != nil && p.DeletionTimestamp != nil, nil
	})
	deadline := pod.CreationTimestamp.Add(time.Hour)
	h.setClock(deadline.Add(-time.Millisecond))
	if err := h.r.syncPod(h.ctx, key); err != nil {
		t.Fatal(err)
	}
	if g := graceOf(t, ns, "session"); g != aYear {
		t.Errorf("deletionGracePeriodSeconds before the deadline = %d, want %d", g, aYear)
	}
	h.setClock(deadline)
	testenv.Eventually(t, "grace period shortened at the deadline", func() (bool, error) {
		return graceOf(t, ns, "session") == 20, nil
	})
}

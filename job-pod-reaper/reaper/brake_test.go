package reaper

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

func TestBrakeLimits(t *testing.T) {
	for _, c := range []struct {
		name    string
		percent float64
		minPods int
		total   int
		want    int
	}{
		{"few pods: the minimum", 20, 100, 50, 100},
		{"many pods: the percentage", 20, 100, 10000, 2000},
		{"no minimum", 10, 0, 30, 3},
	} {
		b := newBrake(&Config{AnomalyPercent: c.percent, AnomalyMinPods: c.minPods, AnomalyOverdue: time.Minute}, testingclock.NewFakeClock(t0))
		if got := b.limit(c.total); got != c.want {
			t.Errorf("%s: limit(%d) = %d, want %d", c.name, c.total, got, c.want)
		}
	}
}

// TestBrakeWindow: the watch's surprising deletions count over one minute;
// the trip holds once set; 0 percent disables it.
func TestBrakeWindow(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	b := newBrake(&Config{AnomalyPercent: 50, AnomalyMinPods: 3, AnomalyOverdue: time.Minute}, clk)
	if !b.surprising(t0, t0.Add(61*time.Second)) || b.surprising(t0, t0.Add(time.Minute)) {
		t.Errorf("surprising: overdue by 61s should count and by exactly 1m not")
	}
	for i := range 3 {
		if why := b.checkOne(4); why != "" {
			t.Fatalf("tripped after %d surprising deletions (limit 3): %s", i+1, why)
		}
		clk.Step(25 * time.Second) // the first leaves the window after 75s
	}
	if why := b.checkOne(4); why != "" {
		t.Fatalf("tripped with 3 in the last minute: %s", why)
	}
	if why := b.checkOne(4); why == "" {
		t.Fatal("not tripped with 4 in the last minute (limit 3)")
	}
	clk.Step(time.Hour)
	if b.stopped() == "" || b.checkPass(0, 10) == "" {
		t.Error("the trip did not hold")
	}
	off := newBrake(&Config{AnomalyPercent: 0, AnomalyMinPods: 0, AnomalyOverdue: time.Minute}, clk)
	if off.surprising(t0, t0.Add(time.Hour)) || off.checkPass(100, 100) != "" {
		t.Error("--anomaly-percent=0 did not disable the trip")
	}
}

// TestWatchArrayJobEndingTogether: 40 pods of one array job whose walltime
// ends at the same moment are all reaped at once, without waiting for a
// pass and without tripping the anomaly brake (they are found at their
// deadline), even with a low --anomaly-min-pods.
func TestWatchArrayJobEndingTogether(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "array-", lbl)
	const n = 40
	var deadline time.Time
	for i := range n {
		p := createPod(t, ns, fmt.Sprintf("task-%d", i), podOpts{lifetime: ptr("1h"), job: "array-1"})
		if d := p.CreationTimestamp.Add(time.Hour); d.After(deadline) {
			deadline = d
		}
	}
	createObject(t, KindConfigMap, ns, "array-1-configmap", "array-1", true)
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0", "--anomaly-min-pods=5", "--anomaly-percent=10"}, false, time.Now())
	testenv.Eventually(t, "pods in the reaper's cache", func() (bool, error) { return h.r.watch.podCount() >= n, nil })
	h.setClock(deadline)
	testenv.Eventually(t, "the whole array job reaped", func() (bool, error) {
		return testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)) == n && !exists(t, KindConfigMap, ns, "array-1-configmap"), nil
	})
	if got := testutil.ToFloat64(h.r.metrics.stopped); got != 0 {
		t.Errorf("anomaly_stopped = %v, want 0", got)
	}
}

// TestWatchAnomalyStops: a clock jump makes every pod overdue by hours at
// once: the reaper deletes at most --anomaly-min-pods of them, then stops
// deleting, sets anomaly_stopped, records a Warning Event on its own pod,
// and its passes fail until it is restarted.
func TestWatchAnomalyStops(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "anomaly-", lbl)
	const n, minPods = 20, 5
	for i := range n {
		createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr("1h")})
	}
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0", fmt.Sprintf("--anomaly-min-pods=%d", minPods),
		"--anomaly-percent=20", "--anomaly-overdue=10m"}, false, time.Now())
	h.r.self = types.NamespacedName{Namespace: ns, Name: "job-pod-reaper-0"}
	testenv.Eventually(t, "pods in the reaper's cache", func() (bool, error) { return h.r.watch.podCount() >= n, nil })
	h.setClock(time.Now().Add(24 * time.Hour))
	testenv.Eventually(t, "anomaly_stopped set", func() (bool, error) { return testutil.ToFloat64(h.r.metrics.stopped) == 1, nil })
	msg := waitEvent(t, ns, "job-pod-reaper-0", ReasonAnomaly)
	if want := "stopped deleting pods: "; len(msg) < len(want) || msg[:len(want)] != want {
		t.Errorf("Event message = %q, want it to start with %q", msg, want)
	}
	if err := h.r.RunOnce(h.ctx); !errors.Is(err, errStopped) {
		t.Errorf("RunOnce() = %v, want errStopped", err)
	}
	if got := testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)); got > minPods {
		t.Errorf("reaped %v pods before stopping, want at most %d", got, minPods)
	}
	left := 0
	for i := range n {
		if exists(t, KindPod, ns, fmt.Sprintf("p%d", i)) {
			left++
		}
	}
	if left < n-minPods {
		t.Errorf("%d pods left, want at least %d", left, n-minPods)
	}
	if got := testutil.ToFloat64(h.r.metrics.trips); got != 1 {
		t.Errorf("anomaly_trips_total = %v, want 1", got)
	}
}

// TestOnceAnomalyStopsBeforeDeleting: a --once pass that finds too many pods
// overdue by a lot (here a lowered --max-lifetime) deletes nothing.
func TestOnceAnomalyStopsBeforeDeleting(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "anomaly-once-", lbl)
	for i := range 6 {
		createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr("48h")})
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--max-lifetime=1h", "--anomaly-min-pods=3", "--anomaly-overdue=10m"}, true, time.Now().Add(3*time.Hour))
	if err := h.r.RunOnce(h.ctx); !errors.Is(err, errStopped) {
		t.Fatalf("RunOnce() = %v, want errStopped", err)
	}
	if w := h.counter.Total("DELETE"); w != 0 {
		t.Errorf("%d DELETE requests, want none", w)
	}
}

// TestWatchFirstPassAndWorkersDeleteEachPodOnce: at start (as at a
// takeover) the watch workers and the first pass see the same expired pods;
// only the workers delete, so each pod gets exactly one DELETE.
func TestWatchFirstPassAndWorkersDeleteEachPodOnce(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "owner-", lbl)
	const n = 30
	for i := range n {
		createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr("1h")})
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--warn-before=0"}, false, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	h.runOnce(t)
	testenv.Eventually(t, "every pod reaped", func() (bool, error) {
		return testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)) == n, nil
	})
	h.runOnce(t)
	if got := h.counter.Total("DELETE"); got != n {
		t.Errorf("%d DELETE requests for %d pods (%s), want one each", got, n, h.counter)
	}
}

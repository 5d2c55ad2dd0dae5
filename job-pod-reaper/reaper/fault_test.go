package reaper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestWatchRetriesWhileAPIServerDown: the real API server is stopped while
// lifetimes end; every failed deletion goes back into the queue with the
// rate limiter's backoff (driven by the injected clock), and once the API
// server is back every overdue pod, with its job's objects, is gone without
// waiting for a pass (none runs here), each deleted once.
func TestWatchRetriesWhileAPIServerDown(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "fault-", lbl)
	const n = 12
	var deadline time.Time
	for i := range n {
		p := createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr("1h"), job: fmt.Sprintf("j%d", i)})
		createObject(t, KindConfigMap, ns, fmt.Sprintf("j%d-configmap", i), fmt.Sprintf("j%d", i), true)
		if d := p.CreationTimestamp.Add(time.Hour); d.After(deadline) {
			deadline = d
		}
	}
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0"}, false, time.Now())
	testenv.Eventually(t, "pods in the reaper's cache", func() (bool, error) {
		return h.r.watch.podCount() >= n, nil
	})

	env.Kube.StopAPIServer()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.Kube.StartAPIServer(context.Background())
		}
	})
	h.setClock(deadline.Add(time.Second))
	// Failed attempts pile up while the API server is away.
	step := func() { h.clock.Step(retryMaxDelay) }
	// The API server may take a while to restart on a loaded machine: two
	// minutes for each wait.
	testenv.EventuallyWithin(t, 2*time.Minute, "failed deletions retried while the API server is down", func() (bool, error) {
		step()
		return testutil.ToFloat64(h.r.metrics.retries) >= 2*n, nil
	})
	if got := testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)); got != 0 {
		t.Fatalf("reaped_total{type=pod} = %v with the API server down", got)
	}

	if err := env.Kube.StartAPIServer(context.Background()); err != nil {
		t.Fatalf("restart the API server: %v", err)
	}
	restarted = true
	testenv.EventuallyWithin(t, 2*time.Minute, "every overdue pod and its objects deleted once the API server is back", func() (bool, error) {
		step()
		for i := range n {
			if exists(t, KindPod, ns, fmt.Sprintf("p%d", i)) || exists(t, KindConfigMap, ns, fmt.Sprintf("j%d-configmap", i)) {
				return false, nil
			}
		}
		return true, nil
	})
	if got := testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)); got != n {
		t.Errorf("reaped_total{type=pod} = %v, want %d (each pod deleted once)", got, n)
	}
}

package reaper

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestWatchReapsWhenWalltimeEnds: in watch mode a pod is warned (an Event)
// --warn-before its end, kept 1ms before it, and deleted with its job's
// objects at the moment the (injected) clock reaches it, with an Event
// saying why.
func TestWatchReapsWhenWalltimeEnds(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "watch-", lbl)
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=10m"}, false, time.Now())
	pod := createPod(t, ns, "session", podOpts{lifetime: ptr("01h00m00s"), job: "j1"})
	createObject(t, KindConfigMap, ns, "j1-configmap", "j1", true)
	createObject(t, KindService, ns, "j1-service", "j1", true)
	createObject(t, KindSecret, ns, "j1-secret", "j1", true)
	deadline := pod.CreationTimestamp.Add(time.Hour)
	key := ns + "/session"
	testenv.Eventually(t, "pod and objects in the reaper's caches", func() (bool, error) {
		objs, last := h.r.watch.companions(asPod(pod), "j1", deadline)
		return h.r.watch.pod(key) != nil && len(objs) == 2 && last, nil
	})

	h.setClock(deadline.Add(-5 * time.Minute))
	msg := waitEvent(t, ns, "session", ReasonWalltimeEnding)
	if !strings.Contains(msg, "walltime of 1h0m0s ends at") {
		t.Errorf("warning Event message = %q", msg)
	}

	h.setClock(deadline.Add(-time.Millisecond))
	if err := h.r.syncPod(h.ctx, key); err != nil {
		t.Fatal(err)
	}
	wantExists(t, KindPod, ns, "session", true)

	h.setClock(deadline)
	testenv.Eventually(t, "pod deleted when its walltime ended", func() (bool, error) {
		return !exists(t, KindPod, ns, "session") && !exists(t, KindConfigMap, ns, "j1-configmap") && !exists(t, KindService, ns, "j1-service") &&
			!exists(t, KindSecret, ns, "j1-secret"), nil
	})
	if msg := waitEvent(t, ns, "session", ReasonWalltimeExceeded); msg != "walltime of 1h0m0s exceeded" {
		t.Errorf("deletion Event message = %q, want %q", msg, "walltime of 1h0m0s exceeded")
	}
	if n := len(podEvents(t, ns, "session", ReasonWalltimeEnding)); n != 1 {
		t.Errorf("%d warning Events, want 1", n)
	}
	m := &dto.Metric{}
	if err := h.r.metrics.expiryLag.Write(m); err != nil {
		t.Fatal(err)
	}
	if m.Histogram.GetSampleCount() != 1 || m.Histogram.GetSampleSum() != 0 {
		t.Errorf("expiry_lag_seconds count %d sum %v, want 1 sample of 0 (deleted at the exact moment)",
			m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum())
	}
}

// TestWatchResyncFromCaches: in watch mode a pass reads nothing from the API
// server (the full resync is from the informer caches) and deletes orphans
// (their Secrets with one DELETE collection); without a prefix, a namespace
// that gains the selecting label has its expired pods reaped without waiting
// for a pass.
func TestWatchResyncFromCaches(t *testing.T) {
	lbl, _ := scope(t)
	ns := testNamespace(t, "resync-", lbl)
	later := env.Namespace(t, "later-", nil)
	createObject(t, KindConfigMap, ns, "orphan", "gone", true)
	createObject(t, KindSecret, ns, "orphan", "gone", true)
	createPod(t, later, "expired", podOpts{lifetime: ptr("1h"), job: "a"})
	h := newHarness(t, env.Kube.Config, labelScope(lbl), false, time.Now().Add(2*time.Hour))

	h.counter.Reset()
	h.runOnce(t)
	wantExists(t, KindConfigMap, ns, "orphan", false)
	wantExists(t, KindSecret, ns, "orphan", false)
	if got := h.counter.Total("GET"); got != 0 {
		t.Errorf("a watch-mode pass made %d GETs (%s), want 0", got, h.counter)
	}
	wantExists(t, KindPod, later, "expired", true)

	nsObj, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), later, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Labels = lbl
	if _, err := env.Kube.Client.CoreV1().Namespaces().Update(context.Background(), nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "pod of a newly selected namespace reaped", func() (bool, error) {
		return !exists(t, KindPod, later, "expired"), nil
	})
}

// TestLeaderElectionOneReplicaActs: two replicas with the same Lease: only
// the leader watches and deletes, the other stays idle; when the leader
// stops (releasing the Lease), the other takes over.
func TestLeaderElectionOneReplicaActs(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "le-", lbl)
	leaseNS := env.Namespace(t, "lease-", nil)
	for i := 0; i < 5; i++ {
		createPod(t, ns, fmt.Sprintf("first-%d", i), podOpts{lifetime: ptr("1h"), job: fmt.Sprintf("f%d", i)})
	}
	sa := serviceAccount(t, nil, leaseNS)
	type replica struct {
		h      *harness
		cancel context.CancelFunc
		done   chan error
	}
	var replicas []*replica
	for _, id := range []string{"replica-a", "replica-b"} {
		h := buildHarness(t, sa, []string{nsFlag}, false, time.Now().Add(2*time.Hour))
		r, err := daemon.New(daemon.Options{
			Interval: time.Hour, ShutdownTimeout: 5 * time.Second, ReadyIntervals: 1,
			LeaderElection: daemon.LeaderElectionOptions{Enabled: true, LeaseName: "job-pod-reaper", Namespace: leaseNS, Identity: id,
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
		}, daemon.Deps{MetricsNamespace: Tool.MetricsNamespace, Version: "test", Log: h.log, Clock: clock.RealClock{}, Registry: h.reg, Client: h.client},
			h.r)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		rep := &replica{h: h, cancel: cancel, done: make(chan error, 1)}
		go func() { rep.done <- r.Run(ctx) }()
		replicas = append(replicas, rep)
	}
	t.Cleanup(func() {
		for _, rep := range replicas {
			rep.cancel()
		}
		for _, rep := range replicas {
			<-rep.done
		}
	})

	reaped := func(rep *replica) float64 { return testutil.ToFloat64(rep.h.r.metrics.reaped.WithLabelValues(KindPod)) }
	testenv.Eventually(t, "first pods reaped", func() (bool, error) { return reaped(replicas[0])+reaped(replicas[1]) == 5, nil })
	leader, standby := replicas[0], replicas[1]
	if reaped(leader) == 0 {
		leader, standby = standby, leader
	}
	if reaped(leader) != 5 || reaped(standby) != 0 {
		t.Fatalf("reaped by the replicas = %v and %v, want 5 and 0", reaped(leader), reaped(standby))
	}
	for i := 0; i < 2; i++ {
		createPod(t, ns, fmt.Sprintf("second-%d", i), podOpts{lifetime: ptr("1h"), job: fmt.Sprintf("s%d", i)})
	}
	testenv.Eventually(t, "leader reaped the pods created later", func() (bool, error) { return reaped(leader) == 7, nil })
	if got := reaped(standby); got != 0 {
		t.Errorf("the standby reaped %v pods, want 0", got)
	}
	if got := gauge(t, standby.h.reg, "job_pod_reaper_leader"); got != 0 {
		t.Errorf("standby job_pod_reaper_leader = %v, want 0", got)
	}
	select {
	case <-standby.h.r.ready:
		t.Errorf("the standby started its watch")
	default:
	}
	if n := len(logsWith(standby.h, "Reaped pod")); n != 0 {
		t.Errorf("the standby logged %d reaped pods", n)
	}

	// The leader stops and releases the Lease; the standby takes over.
	leader.cancel()
	if err := <-leader.done; err != nil {
		t.Errorf("leader Run: %v", err)
	}
	leader.done <- nil // for the cleanup
	for i := 0; i < 2; i++ {
		createPod(t, ns, fmt.Sprintf("third-%d", i), podOpts{lifetime: ptr("1h"), job: fmt.Sprintf("t%d", i)})
	}
	testenv.Eventually(t, "the standby took over and reaped", func() (bool, error) { return reaped(standby) == 2, nil })
	if got := reaped(leader); got != 7 {
		t.Errorf("the stopped leader reaped %v pods, want 7", got)
	}
}

// gauge returns the value of an unlabelled gauge in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("gauge %s not found", name)
	return 0
}

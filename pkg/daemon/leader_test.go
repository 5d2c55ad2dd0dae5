package daemon_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The tests against the API server are in package daemon_test: pkg/testenv
// imports pkg/daemon (for app environments), so package daemon's own tests
// cannot import it.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true}, &env))
}

type countingPass struct{ n atomic.Int64 }

func (p *countingPass) RunOnce(context.Context) error { p.n.Add(1); return nil }

// TestLeaderElection runs two replicas on one Lease against the real API
// server: exactly one runs passes; when it stops (releasing the Lease), the
// other takes over.
func TestLeaderElection(t *testing.T) {
	ns := env.Namespace(t, "lease-", nil)
	newReplica := func(id string) (*daemon.Runner, *countingPass) {
		p := &countingPass{}
		o := daemon.Options{Interval: 50 * time.Millisecond, ShutdownTimeout: time.Second, ReadyIntervals: 1,
			LeaderElection: daemon.LeaderElectionOptions{Enabled: true, LeaseName: "tool", Namespace: ns, Identity: id,
				LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond}}
		r, err := daemon.New(o, daemon.Deps{MetricsNamespace: "tool", Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: prometheus.NewRegistry(), Client: env.Kube.Client}, p)
		if err != nil {
			t.Fatal(err)
		}
		return r, p
	}
	a, passA := newReplica("a")
	b, passB := newReplica("b")
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	waitUntil(t, 10*time.Second, "replica a to lead and run passes", func() bool { return passA.n.Load() >= 3 })
	go func() { doneB <- b.Run(ctxB) }()
	// Let b contend for several retry periods while a keeps leading.
	lease := func() string {
		l, err := env.Kube.Client.CoordinationV1().Leases(ns).Get(context.Background(), "tool", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	before := passA.n.Load()
	waitUntil(t, 10*time.Second, "replica a to run more passes while b waits", func() bool { return passA.n.Load() >= before+10 })
	if n := passB.n.Load(); n != 0 {
		t.Fatalf("standby replica b ran %d passes while a held the Lease", n)
	}
	if got := lease(); got != "a" {
		t.Fatalf("Lease holder = %q, want a", got)
	}
	if err := b.Ready(); err != nil {
		t.Errorf("standby Ready() = %v, want nil (a standby is healthy)", err)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("replica a Run() = %v", err)
	}
	stoppedAt := passA.n.Load()
	waitUntil(t, 15*time.Second, "replica b to take over", func() bool { return passB.n.Load() >= 1 })
	if got := lease(); got != "b" {
		t.Errorf("Lease holder after a stopped = %q, want b", got)
	}
	if passA.n.Load() != stoppedAt {
		t.Errorf("replica a ran passes after it stopped")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("replica b Run() = %v", err)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

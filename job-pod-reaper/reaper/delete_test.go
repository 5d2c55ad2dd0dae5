package reaper

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
)

// fakeReaper is a Reaper on a fake clientset, for the delete paths.
func fakeReaper(cfg *Config, client *fake.Clientset) (*Reaper, *record.FakeRecorder) {
	rec := record.NewFakeRecorder(10)
	return &Reaper{
		cfg: cfg, policy: cfg.policy(), jobLabel: "job", log: zap.NewNop(), acct: zap.NewNop(),
		clock: testingclock.NewFakeClock(t0.Add(2 * time.Hour)), client: client, recorder: rec,
		metrics: newMetrics(prometheus.NewRegistry()), once: true,
		claimed: map[types.UID]bool{}, warned: map[types.UID]bool{}, reported: map[types.UID]bool{},
	}, rec
}

func TestReapPodDeleteOptions(t *testing.T) {
	for _, c := range []struct {
		name  string
		grace int64
		want  *int64
	}{
		{"the pod's own grace period", -1, nil},
		{"immediate", 0, ptr(int64(0))},
		{"30s", 30, ptr(int64(30))},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := testPod("ns", "p", ptr("1h"), map[string]string{"job": "j"})
			client := fake.NewClientset(pod)
			var got metav1.DeleteOptions
			client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				got = a.(k8stesting.DeleteAction).GetDeleteOptions()
				return false, nil, nil
			})
			r, rec := fakeReaper(&Config{GracePeriodSeconds: c.grace, AgeFrom: AgeFromCreation}, client)
			v := r.policy.Evaluate(asPod(pod), r.clock.Now())
			if err := r.reapPod(context.Background(), Expiry{Pod: asPod(pod), Verdict: v, Job: "j"}); err != nil {
				t.Fatal(err)
			}
			if (got.GracePeriodSeconds == nil) != (c.want == nil) || (c.want != nil && *got.GracePeriodSeconds != *c.want) {
				t.Errorf("GracePeriodSeconds = %v, want %v", got.GracePeriodSeconds, c.want)
			}
			if got.Preconditions == nil || got.Preconditions.UID == nil || *got.Preconditions.UID != pod.UID {
				t.Errorf("Preconditions = %+v, want the pod's UID", got.Preconditions)
			}
			if ev := <-rec.Events; ev != "Warning WalltimeExceeded walltime of 1h0m0s exceeded" {
				t.Errorf("Event = %q", ev)
			}
		})
	}
}

// TestReapPodGraceCapped: the reaper's deletion never gives a pod more than
// --max-grace-period, whatever its terminationGracePeriodSeconds says.
func TestReapPodGraceCapped(t *testing.T) {
	for _, c := range []struct {
		name     string
		grace    int64
		podGrace *int64
		want     int64
	}{
		{"the pod's own, a year, is capped", -1, ptr(int64(31536000)), 30},
		{"the pod's own, shorter, is kept", -1, ptr(int64(10)), 10},
		{"the pod's own, unset, is the max", -1, nil, 30},
		{"the flag's, shorter, is kept", 5, ptr(int64(31536000)), 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := testPod("ns", "p", ptr("1h"), map[string]string{"job": "j"})
			pod.Spec.TerminationGracePeriodSeconds = c.podGrace
			client := fake.NewClientset(pod)
			var got metav1.DeleteOptions
			client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				got = a.(k8stesting.DeleteAction).GetDeleteOptions()
				return false, nil, nil
			})
			r, _ := fakeReaper(&Config{GracePeriodSeconds: c.grace, MaxGracePeriod: 30 * time.Second, AgeFrom: AgeFromCreation}, client)
			v := r.policy.Evaluate(asPod(pod), r.clock.Now())
			if err := r.reapPod(context.Background(), Expiry{Pod: asPod(pod), Verdict: v, Job: "j"}); err != nil {
				t.Fatal(err)
			}
			if got.GracePeriodSeconds == nil || *got.GracePeriodSeconds != c.want {
				t.Errorf("GracePeriodSeconds = %v, want %d", got.GracePeriodSeconds, c.want)
			}
		})
	}
}

// TestReapPodShortensTerminating: a terminating pod past its walltime whose
// grace period is a year is deleted again with the max grace period, with
// an Event and grace_periods_shortened_total.
func TestReapPodShortensTerminating(t *testing.T) {
	pod := testPod("ns", "p", ptr("1h"), map[string]string{"job": "j"})
	pod.DeletionTimestamp = ptr(metav1.NewTime(t0.Add(365 * 24 * time.Hour)))
	pod.DeletionGracePeriodSeconds = ptr(int64(31536000))
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(31536000))
	client := fake.NewClientset(pod)
	var got metav1.DeleteOptions
	client.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		got = a.(k8stesting.DeleteAction).GetDeleteOptions()
		return false, nil, nil
	})
	r, rec := fakeReaper(&Config{GracePeriodSeconds: -1, MaxGracePeriod: 30 * time.Second, AgeFrom: AgeFromCreation}, client)
	v := r.policy.Evaluate(asPod(pod), r.clock.Now())
	if !v.Shorten || !v.Expired {
		t.Fatalf("Evaluate() = %+v, want expired and to shorten", v)
	}
	if err := r.reapPod(context.Background(), Expiry{Pod: asPod(pod), Verdict: v, Job: "j"}); err != nil {
		t.Fatal(err)
	}
	if got.GracePeriodSeconds == nil || *got.GracePeriodSeconds != 30 {
		t.Errorf("GracePeriodSeconds = %v, want 30", got.GracePeriodSeconds)
	}
	if ev := <-rec.Events; ev != "Warning WalltimeExceeded walltime of 1h0m0s exceeded; shortened the pod's termination grace period from 31536000s to 30s" {
		t.Errorf("Event = %q", ev)
	}
	if n := testutil.ToFloat64(r.metrics.graceShortened); n != 1 {
		t.Errorf("grace_periods_shortened_total = %v, want 1", n)
	}
}

func TestReapPodDeleteErrors(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		wantErr    bool
		wantErrors float64
	}{
		{"NotFound counts as done", apierrors.NewNotFound(corev1.Resource("pods"), "p"), false, 0},
		{"a UID precondition conflict (replaced pod) counts as done", apierrors.NewConflict(corev1.Resource("pods"), "p", nil), false, 0},
		{"Forbidden is an error, counted, and retried later", apierrors.NewForbidden(corev1.Resource("pods"), "p", nil), true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := testPod("ns", "p", ptr("1h"), map[string]string{"job": "j"})
			client := fake.NewClientset()
			client.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, c.err })
			r, _ := fakeReaper(&Config{GracePeriodSeconds: -1, AgeFrom: AgeFromCreation}, client)
			v := r.policy.Evaluate(asPod(pod), r.clock.Now())
			err := r.reapPod(context.Background(), Expiry{Pod: asPod(pod), Verdict: v, Job: "j"})
			if (err != nil) != c.wantErr {
				t.Errorf("reapPod() error = %v, want error %v", err, c.wantErr)
			}
			if got := testutil.ToFloat64(r.metrics.errors); got != c.wantErrors {
				t.Errorf("errors_total = %v, want %v", got, c.wantErrors)
			}
			if got := testutil.ToFloat64(r.metrics.reaped.WithLabelValues(KindPod)); got != 0 {
				t.Errorf("reaped_total{type=pod} = %v, want 0", got)
			}
			if retry := r.claim(pod.UID); retry != c.wantErr {
				t.Errorf("pod can be retried = %v, want %v", retry, c.wantErr)
			}
		})
	}
}

// TestRunAllReturnsEveryError: the pass's deletions run at most n at a
// time, and every failure is returned (one failing stops no other).
func TestRunAllReturnsEveryError(t *testing.T) {
	var running, most, ran atomic.Int64
	var fns []func() error
	for i := range 20 {
		fns = append(fns, func() error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			ran.Add(1)
			if i%2 == 1 {
				return fmt.Errorf("deletion %d failed", i)
			}
			return nil
		})
	}
	errs := runAll(fns, 3)
	if len(errs) != 10 || ran.Load() != 20 {
		t.Errorf("runAll ran %d of 20 and returned %d errors, want 20 and 10", ran.Load(), len(errs))
	}
	if most.Load() > 3 {
		t.Errorf("runAll ran %d at once, want at most 3", most.Load())
	}
}

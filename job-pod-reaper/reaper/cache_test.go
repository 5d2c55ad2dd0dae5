package reaper

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestWatchCacheKeepsMetadataOnly: the daemon's pod cache keeps of a pod
// only the metadata its decisions read, so a pod's spec and its other
// annotations cost the reaper nothing however large (here 512 KiB of env
// and a 64 KiB annotation); at the deadline the pod is read once, and
// deleted with its own grace period (below the cap) and an accounting
// record carrying its account and requests, as from a whole pod.
func TestWatchCacheKeepsMetadataOnly(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "meta-", lbl)
	node := testNode(t)
	big := strings.Repeat("x", 64<<10)
	var envs []corev1.EnvVar
	for i := range 8 {
		envs = append(envs, corev1.EnvVar{Name: fmt.Sprintf("PAYLOAD_%d", i), Value: big})
	}
	pod, err := env.Kube.Client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "session",
			Labels: map[string]string{identity.ManagedByLabel: identity.OnDemandManagedBy, identity.JobLabel: "j1",
				identity.AccountLabel: "proj-7", "example.org/other": "x"},
			Annotations: map[string]string{identity.LifetimeAnnotation: "1h", "example.org/payload": big}},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr(int64(7)), Containers: []corev1.Container{{
			Name: "c", Image: "example.org/app", Env: envs, Resources: corev1.ResourceRequirements{Requests: requests("250m", "256Mi")}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0"}, false, time.Now())
	key := ns + "/session"
	testenv.Eventually(t, "pod in the reaper's cache", func() (bool, error) { return h.r.watch.pod(key) != nil, nil })

	got := h.r.watch.pod(key)
	want := &Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "session", Namespace: ns, UID: pod.UID, ResourceVersion: got.ResourceVersion, CreationTimestamp: pod.CreationTimestamp,
	}, Job: "j1", Account: "proj-7", Lifetime: "1h", HasLifetime: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cached pod (-want +got):\n%s", diff)
	}
	whole, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	slim, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) < 512<<10 || len(slim) > 1<<10 {
		t.Errorf("the pod is %d bytes as JSON and its cached form %d, want over 512 KiB and under 1 KiB", len(whole), len(slim))
	}
	for _, o := range h.r.watch.all.pods.GetStore().List() {
		if _, ok := o.(*Pod); !ok {
			t.Errorf("the pod cache holds a %T, want only *Pod", o)
		}
	}

	h.counter.Reset()
	h.setClock(pod.CreationTimestamp.Add(time.Hour))
	testenv.Eventually(t, "pod deleted with its own grace period of 7s", func() (bool, error) { return graceOf(t, ns, "session") == 7, nil })
	if n := h.counter.Total("GET"); n != 1 {
		t.Errorf("reaping the pod made %d reads (%s), want 1", n, h.counter)
	}
	recs := logsWith(h, "Reaped pod")
	if len(recs) != 1 {
		t.Fatalf("%d accounting lines, want 1", len(recs))
	}
	m := recs[0].ContextMap()
	for k, v := range map[string]any{"account": "proj-7", "job": "j1", "cpuRequestMillicores": int64(250), "memoryRequestBytes": int64(256 << 20), "started": ""} {
		if m[k] != v {
			t.Errorf("accounting %s = %#v, want %#v", k, m[k], v)
		}
	}
}

// TestWatchAgeFromStart: with --age-from=start the daemon's cache keeps
// status.startTime (whole pods are read and slimmed as they arrive), and a
// pod is deleted when its walltime, counted from its start, ends.
func TestWatchAgeFromStart(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "wstart-", lbl)
	pod := createPod(t, ns, "started", podOpts{lifetime: ptr("1h"), job: "a"})
	startTime := metav1.NewTime(pod.CreationTimestamp.Add(30 * time.Minute))
	pod.Status.StartTime = &startTime
	pod.Status.Phase = corev1.PodRunning
	if _, err := env.Kube.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--age-from=start", "--warn-before=0"}, false, startTime.Add(time.Hour-time.Second))
	key := ns + "/started"
	testenv.Eventually(t, "the started pod in the reaper's cache", func() (bool, error) {
		p := h.r.watch.pod(key)
		return p != nil && p.StartTime != nil && p.StartTime.Equal(&startTime), nil
	})
	if err := h.r.syncPod(h.ctx, key); err != nil {
		t.Fatal(err)
	}
	wantExists(t, KindPod, ns, "started", true)
	h.setClock(startTime.Add(time.Hour))
	testenv.Eventually(t, "pod deleted an hour after its start", func() (bool, error) { return !exists(t, KindPod, ns, "started"), nil })
	if recs := logsWith(h, "Reaped pod"); len(recs) != 1 {
		t.Errorf("%d accounting lines, want 1", len(recs))
	} else if got, ok := recs[0].ContextMap()["started"].(time.Time); !ok || !got.Equal(startTime.Time) {
		t.Errorf("accounting started = %v, want %v (status.startTime)", recs[0].ContextMap()["started"], startTime.Time)
	}
}

// TestWatchSharedJobObjectsGoWithLastPod: in watch mode the objects of a
// job with two pods stay while one of its pods is within its walltime, and
// go with the last (BuildPlan's rule, applied to the caches).
func TestWatchSharedJobObjectsGoWithLastPod(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "shared-", lbl)
	first := createPod(t, ns, "first", podOpts{lifetime: ptr("1h"), job: "j"})
	createPod(t, ns, "second", podOpts{lifetime: ptr("2h"), job: "j"})
	createObject(t, KindConfigMap, ns, "j-configmap", "j", true)
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0"}, false, first.CreationTimestamp.Add(30*time.Minute))
	testenv.Eventually(t, "both pods and the ConfigMap in the reaper's caches", func() (bool, error) {
		second := h.r.watch.pod(ns + "/second")
		if h.r.watch.pod(ns+"/first") == nil || second == nil {
			return false, nil
		}
		objs, last := h.r.watch.companions(second, "j", first.CreationTimestamp.Add(3*time.Hour))
		return len(objs) == 1 && last, nil
	})
	h.setClock(first.CreationTimestamp.Add(time.Hour))
	testenv.Eventually(t, "the first pod deleted at its walltime", func() (bool, error) { return !exists(t, KindPod, ns, "first"), nil })
	wantExists(t, KindConfigMap, ns, "j-configmap", true)
	h.setClock(first.CreationTimestamp.Add(3 * time.Hour))
	testenv.Eventually(t, "the second pod and the job's ConfigMap deleted", func() (bool, error) {
		return !exists(t, KindPod, ns, "second") && !exists(t, KindConfigMap, ns, "j-configmap"), nil
	})
}

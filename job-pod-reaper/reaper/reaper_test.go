package reaper

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestOnceEveryAcceptedFormatExpires: a pod with each accepted value of the
// shared walltime table is kept 1ms before its walltime ends and deleted at
// that moment; a pod with each rejected value is kept and reported (log,
// errors_total, an Event on the pod). It runs as a service account holding
// exactly the cluster-wide RBAC the reaper documents.
func TestOnceEveryAcceptedFormatExpires(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "formats-", lbl)
	rows := loadLifetimes(t)
	type made struct {
		c   lifetimeCase
		pod *corev1.Pod
	}
	var pods []made
	for i, c := range rows {
		pods = append(pods, made{c, createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr(c.Value), job: fmt.Sprintf("j%d", i)})})
	}
	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag, "--warn-before=0"}, true, time.Now())

	accepted := slices.DeleteFunc(slices.Clone(pods), func(m made) bool { return !m.c.Accepted })
	slices.SortFunc(accepted, func(a, b made) int {
		return a.pod.CreationTimestamp.Add(a.c.Duration).Compare(b.pod.CreationTimestamp.Add(b.c.Duration))
	})
	for _, m := range accepted {
		deadline := m.pod.CreationTimestamp.Add(m.c.Duration)
		if !exists(t, KindPod, ns, m.pod.Name) {
			continue // shared its deadline with a pod reaped just before
		}
		h.setClock(deadline.Add(-time.Millisecond))
		h.runOnce(t)
		if !exists(t, KindPod, ns, m.pod.Name) {
			t.Errorf("pod with lifetime %q was deleted 1ms before its walltime ended", m.c.Value)
		}
		h.setClock(deadline)
		h.runOnce(t)
		if exists(t, KindPod, ns, m.pod.Name) {
			t.Errorf("pod with lifetime %q was not deleted when its walltime ended", m.c.Value)
		}
	}
	rejected := 0
	for _, m := range pods {
		if m.c.Accepted {
			continue
		}
		rejected++
		if !exists(t, KindPod, ns, m.pod.Name) {
			t.Errorf("pod with unparseable lifetime %q was deleted without a default lifetime", m.c.Value)
		}
		msg := waitEvent(t, ns, m.pod.Name, ReasonInvalidWalltime)
		if !strings.Contains(msg, "walltime") {
			t.Errorf("InvalidWalltime Event message = %q", msg)
		}
	}
	if got := testutil.ToFloat64(h.r.metrics.errors); got != float64(rejected) {
		t.Errorf("errors_total = %v, want %d (each unparseable lifetime once)", got, rejected)
	}
	if got := testutil.ToFloat64(h.r.metrics.skipped.WithLabelValues(SkipInvalidLifetime)); got != float64(rejected) {
		t.Errorf("skipped_pods{reason=invalid-lifetime} = %v, want %d", got, rejected)
	}
	if got := len(logsWith(h, "Found unparseable lifetime")); got != rejected {
		t.Errorf("logged %d unparseable lifetimes, want %d", got, rejected)
	}
	if got := testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(KindPod)); got != float64(len(accepted)) {
		t.Errorf("reaped_total{type=pod} = %v, want %d", got, len(accepted))
	}
}

// TestOnceCompanionsOrphansAndAccounting: an expired pod goes with its
// Service, ConfigMap and Secret; a live job's objects stay even when another
// namespace has an expired pod with the same job id; objects whose job has
// no pod are orphans, per namespace, and their Secrets go with them; objects
// outside the object labels stay. A Secret alone is not found: the reaper may
// not list Secrets. Every reaped pod has one accounting line. It runs as a
// service account holding exactly the documented RBAC (no read on Secrets).
func TestOnceCompanionsOrphansAndAccounting(t *testing.T) {
	lbl, nsFlag := scope(t)
	a := testNamespace(t, "comp-a-", lbl)
	b := testNamespace(t, "comp-b-", lbl)
	c := testNamespace(t, "comp-c-", lbl)
	expired := createPod(t, a, "expired", podOpts{lifetime: ptr("01h00m00s"), job: "j1",
		labels: map[string]string{"account": "proj-42"}, requests: []corev1.ResourceList{requests("500m", "1Gi"), requests("250m", "512Mi")}})
	for _, k := range []string{KindService, KindConfigMap, KindSecret} {
		createObject(t, k, a, "j1-"+k, "j1", true)
	}
	createPod(t, a, "live", podOpts{lifetime: ptr("3h"), job: "j2"})
	createObject(t, KindConfigMap, a, "j2-configmap", "j2", true)
	createObject(t, KindConfigMap, a, "orphan", "j3", true)
	createObject(t, KindSecret, a, "orphan-secret", "j3", true)
	createObject(t, KindSecret, a, "unmanaged-orphan-secret", "j3", false)
	createObject(t, KindSecret, a, "j2-secret", "j2", true)
	createObject(t, KindConfigMap, a, "unmanaged-orphan", "j3", false)
	createObject(t, KindService, a, "no-job", "", true)
	// Namespace b: the same job id as a's live job, expired.
	createPod(t, b, "expired", podOpts{lifetime: ptr("1h"), job: "j2"})
	createObject(t, KindConfigMap, b, "j2-configmap", "j2", true)
	// Namespace c: j2 has no pod here, so a's live j2 protects nothing; but
	// a Secret alone is never found (the reaper may not list Secrets).
	createObject(t, KindConfigMap, c, "j2-configmap", "j2", true)
	createObject(t, KindSecret, c, "j2-secret", "j2", true)
	createObject(t, KindSecret, c, "lone-secret", "j4", true)

	h := newHarness(t, serviceAccount(t, nil), []string{nsFlag}, true, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	// A --once pass returns only once its Events are written (the process
	// exits next), so they are there without waiting.
	for _, ns := range []string{a, b} {
		if evs := podEvents(t, ns, "expired", ReasonWalltimeExceeded); len(evs) != 1 || evs[0].Message != "walltime of 1h0m0s exceeded" {
			t.Errorf("WalltimeExceeded Events on %s/expired right after the pass = %+v, want one", ns, evs)
		}
	}

	for _, o := range []struct {
		kind, ns, name string
		want           bool
	}{
		{KindPod, a, "expired", false}, {KindService, a, "j1-service", false}, {KindConfigMap, a, "j1-configmap", false}, {KindSecret, a, "j1-secret", false},
		{KindPod, a, "live", true}, {KindConfigMap, a, "j2-configmap", true},
		{KindConfigMap, a, "orphan", false}, {KindConfigMap, a, "unmanaged-orphan", true}, {KindService, a, "no-job", true},
		{KindSecret, a, "orphan-secret", false}, {KindSecret, a, "unmanaged-orphan-secret", true}, {KindSecret, a, "j2-secret", true},
		{KindPod, b, "expired", false}, {KindConfigMap, b, "j2-configmap", false},
		{KindConfigMap, c, "j2-configmap", false}, {KindSecret, c, "j2-secret", false}, {KindSecret, c, "lone-secret", true},
	} {
		wantExists(t, o.kind, o.ns, o.name, o.want)
	}
	for kind, want := range map[string]float64{KindPod: 2, KindService: 1, KindConfigMap: 4, KindSecret: 3} {
		if got := testutil.ToFloat64(h.r.metrics.reaped.WithLabelValues(kind)); got != want {
			t.Errorf("reaped_total{type=%s} = %v, want %v", kind, got, want)
		}
	}

	// The accounting record.
	var rec map[string]any
	for _, e := range logsWith(h, "Reaped pod") {
		if m := e.ContextMap(); m["namespace"] == a {
			if rec != nil {
				t.Fatalf("two accounting lines for %s/expired", a)
			}
			rec = m
		}
	}
	if rec == nil {
		t.Fatalf("no accounting line for %s/expired; logs: %v", a, h.logs.All())
	}
	want := map[string]any{
		"namespace": a, "pod": "expired", "job": "j1", "account": "proj-42",
		"cpuRequestMillicores": int64(750), "memoryRequestBytes": int64(1536 * 1024 * 1024),
		"created": expired.CreationTimestamp.Time, "deleted": h.clock.Now(), "walltime": time.Hour,
		"started": "", // never started (no kubelet here)
	}
	for k, v := range want {
		got := rec[k]
		if tm, ok := v.(time.Time); ok {
			if gt, ok := got.(time.Time); !ok || !gt.Equal(tm) {
				t.Errorf("accounting %s = %v, want %v", k, got, v)
			}
			continue
		}
		if got != v {
			t.Errorf("accounting %s = %#v, want %#v", k, got, v)
		}
	}
	if n := len(logsWith(h, "Reaped pod")); n != 2 {
		t.Errorf("%d accounting lines, want 2 (one per reaped pod)", n)
	}
}

// TestOnceLabelScoping: without a user namespace prefix (the OSC reaper's
// scope) only namespaces matching the namespace labels and pods matching the
// object labels are reaped.
func TestOnceLabelScoping(t *testing.T) {
	lbl, _ := scope(t)
	in := testNamespace(t, "scope-in-", lbl)
	out := env.Namespace(t, "scope-out-", map[string]string{testLabel: lbl[testLabel]})
	createPod(t, in, "managed", podOpts{lifetime: ptr("1h"), job: "a"})
	createPod(t, in, "unmanaged", podOpts{lifetime: ptr("1h"), job: "b", unmanaged: true})
	createPod(t, out, "managed", podOpts{lifetime: ptr("1h"), job: "c"})
	createObject(t, KindConfigMap, out, "orphan", "gone", true)
	h := newHarness(t, env.Kube.Config, labelScope(lbl), true, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	wantExists(t, KindPod, in, "managed", false)
	wantExists(t, KindPod, in, "unmanaged", true)
	wantExists(t, KindPod, out, "managed", true)
	wantExists(t, KindConfigMap, out, "orphan", true)
}

// TestOnceWalltimeWhateverLabels: walltime cannot be escaped by labels:
// every pod of a user namespace (named with the prefix) is reaped, with the
// portal's labels, without them or with none at all, even when the
// namespace lacks the portal's label; nothing is reaped in a namespace not
// named with the prefix, even one carrying the portal's labels. The object
// labels still choose the companions.
func TestOnceWalltimeWhateverLabels(t *testing.T) {
	lbl, nsFlag := scope(t)
	user := testNamespace(t, "any-", lbl)
	unlabelled := env.Namespace(t, lbl[testLabel]+"-bare-", nil)
	other := env.Namespace(t, "x"+lbl[testLabel]+"-", lbl)
	createPod(t, user, "managed", podOpts{lifetime: ptr("1h"), job: "a"})
	createPod(t, user, "unmanaged", podOpts{lifetime: ptr("1h"), job: "b", unmanaged: true})
	createPod(t, user, "nolabels", podOpts{lifetime: ptr("1h"), unmanaged: true})
	createPod(t, user, "live", podOpts{lifetime: ptr("3h"), unmanaged: true})
	createObject(t, KindConfigMap, user, "b-configmap", "b", false)
	createObject(t, KindConfigMap, user, "a-configmap", "a", true)
	createPod(t, unlabelled, "bare", podOpts{lifetime: ptr("1h"), unmanaged: true})
	createPod(t, other, "managed", podOpts{lifetime: ptr("1h"), job: "c"})
	createObject(t, KindConfigMap, other, "orphan", "gone", true)
	for _, once := range []bool{true, false} {
		h := newHarness(t, serviceAccount(t, nil), []string{nsFlag}, once, time.Now().Add(2*time.Hour))
		h.runOnce(t)
	}
	for _, o := range []struct {
		kind, ns, name string
		want           bool
	}{
		{KindPod, user, "managed", false}, {KindPod, user, "unmanaged", false}, {KindPod, user, "nolabels", false}, {KindPod, user, "live", true},
		{KindConfigMap, user, "a-configmap", false}, {KindConfigMap, user, "b-configmap", true},
		{KindPod, unlabelled, "bare", false},
		{KindPod, other, "managed", true}, {KindConfigMap, other, "orphan", true},
	} {
		wantExists(t, o.kind, o.ns, o.name, o.want)
	}
}

// TestOnceDefaultAndMaxLifetime: a pod without (or with an unparseable)
// lifetime gets --default-lifetime; no pod outlives --max-lifetime.
func TestOnceDefaultAndMaxLifetime(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "limits-", lbl)
	none := createPod(t, ns, "none", podOpts{job: "a"})
	createPod(t, ns, "invalid", podOpts{lifetime: ptr("1d"), job: "b"})
	createPod(t, ns, "long", podOpts{lifetime: ptr("48h"), job: "c"})
	start := none.CreationTimestamp.Time

	// Without a default, a pod without a lifetime is left alone.
	plain := newHarness(t, env.Kube.Config, []string{nsFlag}, true, start.Add(47*time.Hour))
	plain.runOnce(t)
	wantExists(t, KindPod, ns, "none", true)
	if got := testutil.ToFloat64(plain.r.metrics.skipped.WithLabelValues(SkipNoLifetime)); got != 1 {
		t.Errorf("skipped_pods{reason=no-lifetime} = %v, want 1", got)
	}

	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--default-lifetime=1h", "--max-lifetime=2h"}, true, start.Add(90*time.Minute))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "none", false)
	wantExists(t, KindPod, ns, "invalid", false)
	wantExists(t, KindPod, ns, "long", true)
	h.setClock(start.Add(2*time.Hour + time.Second))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "long", false)
}

// TestOnceStartTime: with --age-from=start the walltime counts from
// status.startTime; a pod that has not started is not reaped.
func TestOnceStartTime(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "start-", lbl)
	started := createPod(t, ns, "started", podOpts{lifetime: ptr("1h"), job: "a"})
	createPod(t, ns, "pending", podOpts{lifetime: ptr("1h"), job: "b"})
	startTime := metav1.NewTime(started.CreationTimestamp.Add(30 * time.Minute))
	started.Status.StartTime = &startTime
	started.Status.Phase = corev1.PodRunning
	if _, err := env.Kube.Client.CoreV1().Pods(ns).UpdateStatus(context.Background(), started, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--age-from=start"}, true, startTime.Add(time.Hour-time.Second))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "started", true)
	h.setClock(startTime.Add(time.Hour))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "started", false)
	if recs := logsWith(h, "Reaped pod"); len(recs) != 1 {
		t.Errorf("%d accounting lines, want 1", len(recs))
	} else if got, ok := recs[0].ContextMap()["started"].(time.Time); !ok || !got.Equal(startTime.Time) {
		t.Errorf("accounting started = %v, want %v (status.startTime)", recs[0].ContextMap()["started"], startTime.Time)
	}
	h.setClock(startTime.Add(100 * time.Hour))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "pending", true)
}

// TestForbiddenNamespaceSkipped: in per-namespace mode (a namespace list,
// or --per-namespace with the namespace labels, as with the Open OnDemand
// hook's RoleBindings) a namespace the reaper may not read is skipped and
// counted while the others are reaped, in both the --once and the watch
// mode. The reaper acts as a service account bound by RoleBindings in only
// some namespaces.
func TestForbiddenNamespaceSkipped(t *testing.T) {
	for _, once := range []bool{true, false} {
		for _, byList := range []bool{true, false} {
			t.Run(fmt.Sprintf("once=%v,list=%v", once, byList), func(t *testing.T) {
				lbl, nsFlag := scope(t)
				ns1 := testNamespace(t, "allowed-", lbl)
				ns2 := testNamespace(t, "allowed-", lbl)
				ns3 := testNamespace(t, "forbidden-", lbl)
				for _, ns := range []string{ns1, ns2, ns3} {
					createPod(t, ns, "expired", podOpts{lifetime: ptr("1h"), job: "a"})
					createObject(t, KindConfigMap, ns, "a-configmap", "a", true)
				}
				sa := serviceAccount(t, []string{ns1, ns2})
				args := []string{nsFlag, "--per-namespace"}
				if byList {
					args = []string{nsFlag, "--reap-namespaces=" + joinNS(ns1, ns2, ns3)}
				}
				h := newHarness(t, sa, args, once, time.Now().Add(2*time.Hour))
				h.runOnce(t)
				for _, ns := range []string{ns1, ns2} {
					wantExists(t, KindPod, ns, "expired", false)
					wantExists(t, KindConfigMap, ns, "a-configmap", false)
				}
				wantExists(t, KindPod, ns3, "expired", true)
				wantExists(t, KindConfigMap, ns3, "a-configmap", true)
				if got := testutil.ToFloat64(h.r.metrics.forbidden); got != 1 {
					t.Errorf("forbidden_namespaces = %v, want 1", got)
				}
				if n := len(logsWith(h, "Skipped namespace the reaper may not read")); n != 1 {
					t.Errorf("logged %d forbidden namespaces, want 1", n)
				}
			})
		}
	}
}

// TestOnceDryRunDeletesNothing: dry-run logs what it would delete and
// writes nothing at all (no deletes, no Events).
func TestOnceDryRunDeletesNothing(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "dry-", lbl)
	createPod(t, ns, "expired", podOpts{lifetime: ptr("1h"), job: "a"})
	createPod(t, ns, "invalid", podOpts{lifetime: ptr("soon"), job: "b"})
	createObject(t, KindService, ns, "a-service", "a", true)
	createObject(t, KindSecret, ns, "orphan", "gone", true)
	createObject(t, KindConfigMap, ns, "orphan", "gone", true)
	createObject(t, KindSecret, ns, "a-secret", "a", true)
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--dry-run"}, true, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	wantExists(t, KindPod, ns, "expired", true)
	wantExists(t, KindService, ns, "a-service", true)
	wantExists(t, KindSecret, ns, "orphan", true)
	wantExists(t, KindSecret, ns, "a-secret", true)
	// No write at all, not even a server-side dry run of the Secrets'
	// DELETE collection (whose answer would carry the Secrets' data).
	if w := h.counter.Writes(); w != 0 {
		t.Errorf("dry-run made %d writes (%s), want none", w, h.counter)
	}
	for msg, want := range map[string]int{"Would delete pod": 1, "Would delete service": 1, "Would delete configmap": 1, "Would delete the job's secrets": 2} {
		if n := len(logsWith(h, msg)); n != want {
			t.Errorf("logged %q %d times, want %d", msg, n, want)
		}
	}
}

// TestOnceMaxDeletionsPerPass: the cap really limits, the longest overdue
// first, and is reported.
func TestOnceMaxDeletionsPerPass(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "cap-", lbl)
	var first *corev1.Pod
	for i := 1; i <= 5; i++ {
		p := createPod(t, ns, fmt.Sprintf("p%dh", i), podOpts{lifetime: ptr(fmt.Sprintf("%dh", i)), job: fmt.Sprintf("j%d", i)})
		if first == nil {
			first = p
		}
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--max-deletions-per-pass=2"}, true, first.CreationTimestamp.Add(10*time.Hour))
	h.runOnce(t)
	for i, want := range []bool{false, false, true, true, true} {
		wantExists(t, KindPod, ns, fmt.Sprintf("p%dh", i+1), want)
	}
	if got := testutil.ToFloat64(h.r.metrics.capReached); got != 1 {
		t.Errorf("max_deletions_reached_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.r.metrics.deferred); got != 3 {
		t.Errorf("deferred_deletions_total = %v, want 3", got)
	}
	if n := len(logsWith(h, "Reached max deletions per pass; deferred the rest to the next pass")); n != 1 {
		t.Errorf("cap logged %d times, want 1", n)
	}
	h.runOnce(t)
	for i, want := range []bool{false, false, false, false, true} {
		wantExists(t, KindPod, ns, fmt.Sprintf("p%dh", i+1), want)
	}
}

// TestOnceRequestsDoNotGrowWithNamespaces: a cluster-wide --once pass makes
// the same, constant number of LIST calls whatever the number of namespaces.
func TestOnceRequestsDoNotGrowWithNamespaces(t *testing.T) {
	lbl, nsFlag := scope(t)
	for i := 0; i < 12; i++ {
		ns := testNamespace(t, "count-", lbl)
		createPod(t, ns, "p", podOpts{lifetime: ptr("1h"), job: "a"})
		createObject(t, KindConfigMap, ns, "a-configmap", "a", true)
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag, "--dry-run"}, true, time.Now())
	h.runOnce(t)
	// pods, services, configmaps (never Secrets; user namespaces are
	// known by name, so no namespaces either).
	if got := h.counter.Total("GET"); got != 3 {
		t.Errorf("a --once pass over 12 namespaces made %d GETs (%s), want 3", got, h.counter)
	}
}

// TestOnceWritesEveryEventBeforeReturning: the Event recorder is
// asynchronous and a --once run exits after its pass, so the pass returns
// only once every Event is written.
func TestOnceWritesEveryEventBeforeReturning(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "events-", lbl)
	const n = 40
	for i := 0; i < n; i++ {
		createPod(t, ns, fmt.Sprintf("p%d", i), podOpts{lifetime: ptr("1h"), job: fmt.Sprintf("j%d", i)})
	}
	h := newHarness(t, env.Kube.Config, []string{nsFlag}, true, time.Now().Add(2*time.Hour))
	h.runOnce(t)
	l, err := env.Kube.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + ReasonWalltimeExceeded})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != n {
		t.Errorf("right after the pass: %d WalltimeExceeded Events, want %d", len(l.Items), n)
	}
}

// TestOnceJobLabel: --job-label names the label tying a pod to its objects;
// 'none' reaps pods only (no companions, no orphans).
func TestOnceJobLabel(t *testing.T) {
	for _, c := range []struct {
		flag          string
		wantObjectsGo bool
	}{
		{"--job-label=session", true},
		{"--job-label=none", false},
	} {
		t.Run(c.flag, func(t *testing.T) {
			lbl, nsFlag := scope(t)
			ns := testNamespace(t, "joblabel-", lbl)
			createPod(t, ns, "expired", podOpts{lifetime: ptr("1h"), labels: map[string]string{"session": "s1"}})
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "s1-configmap", Labels: map[string]string{
				"session": "s1", "app.kubernetes.io/managed-by": "open-ondemand"}}}
			orphan := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{
				"session": "gone", "app.kubernetes.io/managed-by": "open-ondemand"}}}
			for _, o := range []*corev1.ConfigMap{cm, orphan} {
				if _, err := env.Kube.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			h := newHarness(t, env.Kube.Config, []string{nsFlag, c.flag}, true, time.Now().Add(2*time.Hour))
			h.runOnce(t)
			wantExists(t, KindPod, ns, "expired", false)
			wantExists(t, KindConfigMap, ns, "s1-configmap", !c.wantObjectsGo)
			wantExists(t, KindConfigMap, ns, "orphan", !c.wantObjectsGo)
		})
	}
}

// TestInvalidLifetimeReportedOnceAcrossRestarts: an unparseable lifetime is
// logged and recorded as an Event once per pod, not again by the next
// process (a restart, the next CronJob run, a new leader); each process
// still counts it in its metrics.
func TestInvalidLifetimeReportedOnceAcrossRestarts(t *testing.T) {
	lbl, nsFlag := scope(t)
	ns := testNamespace(t, "invalid-", lbl)
	createPod(t, ns, "bad", podOpts{lifetime: ptr("3000000h")})
	for run := range 3 {
		h := newHarness(t, serviceAccount(t, nil), []string{nsFlag}, true, time.Now())
		h.runOnce(t)
		if got := testutil.ToFloat64(h.r.metrics.invalidLifetime); got != 1 {
			t.Errorf("run %d: invalid_lifetimes_total = %v, want 1", run, got)
		}
		wantLogs := 0
		if run == 0 {
			wantLogs = 1
		}
		if got := len(logsWith(h, "Found unparseable lifetime")); got != wantLogs {
			t.Errorf("run %d: logged the unparseable lifetime %d times, want %d", run, got, wantLogs)
		}
	}
	if evs := podEvents(t, ns, "bad", ReasonInvalidWalltime); len(evs) != 1 || evs[0].Count > 1 {
		t.Errorf("InvalidWalltime Events = %d (count %v), want one, recorded once", len(evs), evs)
	}
}

package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestTerminatingNamespaceIsRecreated proves a login that finds its
// namespace Terminating (the reaper just deleted it) waits for the
// controller-manager to finish the deletion and recreates it.
func TestTerminatingNamespaceIsRecreated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, "--terminating-timeout=60s"), nil)
	ns := f.cfg.NamespacePrefix + "carol"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	c := env.Kube.Client
	old, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A finalizer holds the namespace in Terminating until the test lets go.
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"kubehpc.io/test"}}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := f.b.Bootstrap(ctx, "carol"); done <- err }()
	testenv.EventuallyWithin(t, 10*time.Second, "the bootstrap to wait for the Terminating namespace", func() (bool, error) {
		return testutil.ToFloat64(f.b.metrics.terminatingWaits) == 1, nil
	})
	select {
	case err := <-done:
		t.Fatalf("Bootstrap returned %v while the namespace was still Terminating", err)
	default:
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Bootstrap after Terminating = %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Bootstrap did not finish within its terminating timeout")
	}
	fresh, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.UID == old.UID || fresh.DeletionTimestamp != nil {
		t.Errorf("namespace was not recreated: uid %s (old %s), deletionTimestamp %v", fresh.UID, old.UID, fresh.DeletionTimestamp)
	}
	if _, err := c.RbacV1().RoleBindings(ns).Get(ctx, "carol-ood-user", metav1.GetOptions{}); err != nil {
		t.Errorf("RoleBinding in the recreated namespace: %v", err)
	}
}

// TestTerminatingNamespaceWaitIsBounded proves the wait gives up after
// --terminating-timeout with a clear error.
func TestTerminatingNamespaceWaitIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, "--terminating-timeout=1s"), nil)
	ns := f.cfg.NamespacePrefix + "dave"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	c := env.Kube.Client
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"kubehpc.io/test"}}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := f.b.Bootstrap(ctx, "dave")
	if !errors.Is(err, ErrTerminatingTimeout) {
		t.Fatalf("Bootstrap with a stuck Terminating namespace = %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Bootstrap gave up after %v, want about the 1s timeout", d)
	}
}

// TestReconcileCorrectsDrift proves a reconcile pass restores what the
// template says (a deleted NetworkPolicy, an edited RoleBinding, a changed
// quota), leaves alone what the template does not name (another manager's
// label, the user's own ConfigMap, the login annotation), writes nothing
// when nothing drifted, and rolls out a changed template to every user.
func TestReconcileCorrectsDrift(t *testing.T) {
	ctx := context.Background()
	cfg := newConfig(t, "--resource-quota=requests.cpu=8,pods=10")
	f := newFixture(t, cfg, nil)
	users := []string{"alice", "bob", "carol"}
	for _, u := range users {
		cleanupNamespace(t, cfg.NamespacePrefix+u)
		if _, err := f.b.Bootstrap(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	c := env.Kube.Client
	alice, bob, carol := cfg.NamespacePrefix+"alice", cfg.NamespacePrefix+"bob", cfg.NamespacePrefix+"carol"
	// Drift.
	if err := c.NetworkingV1().NetworkPolicies(alice).Delete(ctx, "deny-from-other-namespaces", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rb, err := c.RbacV1().RoleBindings(bob).Get(ctx, "bob-ood-user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb.Subjects = append(rb.Subjects, rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "mallory"})
	rb.Labels["site.example.org/keep"] = "yes"
	if _, err := c.RbacV1().RoleBindings(bob).Update(ctx, rb, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	q := []byte(`{"spec":{"hard":{"requests.cpu":"800"}}}`)
	if _, err := c.CoreV1().ResourceQuotas(carol).Patch(ctx, "user-quota", types.MergePatchType, q, metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
		t.Fatal(err)
	}
	userCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Data: map[string]string{"a": "b"}}
	if _, err := c.CoreV1().ConfigMaps(carol).Create(ctx, userCM, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	beforeAnn := namespaceAnnotations(t, alice)

	rec, stop := events.NewRecorder(env.Kube.Client, Tool.Name, zap.NewNop())
	defer stop()
	f.b.Recorder = rec
	f.counter.Reset()
	if err := f.b.Reconcile(ctx, 2); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	testenv.EventuallyWithin(t, 30*time.Second, "a Reconciled Event in alice's namespace", func() (bool, error) {
		evs, err := c.CoreV1().Events(alice).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "Reconciled" && strings.Contains(e.Message, "NetworkPolicy deny-from-other-namespaces (missing)") {
				return true, nil
			}
		}
		return false, nil
	})
	if w := f.counter.Writes(); w != 3 {
		t.Errorf("reconcile made %d writes (%s), want 3 (one per drifted object)", w, f.counter)
	}
	if _, err := c.NetworkingV1().NetworkPolicies(alice).Get(ctx, "deny-from-other-namespaces", metav1.GetOptions{}); err != nil {
		t.Errorf("deleted NetworkPolicy not restored: %v", err)
	}
	rb, err = c.RbacV1().RoleBindings(bob).Get(ctx, "bob-ood-user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "bob" {
		t.Errorf("RoleBinding subjects = %v, want only bob", rb.Subjects)
	}
	if rb.Labels["site.example.org/keep"] != "yes" {
		t.Errorf("another manager's label on the RoleBinding was removed: %v", rb.Labels)
	}
	quota, err := c.CoreV1().ResourceQuotas(carol).Get(ctx, "user-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cpu := quota.Spec.Hard[corev1.ResourceRequestsCPU]; cpu.String() != "8" {
		t.Errorf("quota requests.cpu = %s, want 8 restored", cpu.String())
	}
	if _, err := c.CoreV1().ConfigMaps(carol).Get(ctx, "mine", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's own ConfigMap: %v", err)
	}
	if got := namespaceAnnotations(t, alice); got[HashAnnotation] != beforeAnn[HashAnnotation] ||
		got["openondemand.org/last-hook-execution"] != beforeAnn["openondemand.org/last-hook-execution"] ||
		got["kubehpc.io/uid"] != "10001" {
		t.Errorf("namespace annotations after reconcile = %v, want unchanged %v", got, beforeAnn)
	}
	if got := testutil.ToFloat64(f.b.metrics.reconciled.WithLabelValues("corrected")); got != 3 {
		t.Errorf("reconcile_namespaces_total{corrected} = %v, want 3", got)
	}

	// Nothing drifted: nothing written.
	f.counter.Reset()
	if err := f.b.Reconcile(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if w := f.counter.Writes(); w != 0 {
		t.Errorf("reconcile of up-to-date namespaces made %d writes (%s), want 0", w, f.counter)
	}

	// A changed template (a quota key dropped, one changed, a PSA label
	// added) rolls out to every user; the dropped key is removed.
	cfg2 := *cfg
	cfg2.ResourceQuota = map[string]string{"requests.cpu": "16"}
	cfg2.PodSecurityEnforce = "baseline"
	f2 := newFixture(t, &cfg2, nil)
	if err := f2.b.Reconcile(ctx, 2); err != nil {
		t.Fatalf("Reconcile() with the new template = %v", err)
	}
	for _, u := range users {
		ns := cfg.NamespacePrefix + u
		quota, err := c.CoreV1().ResourceQuotas(ns).Get(ctx, "user-quota", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cpu := quota.Spec.Hard[corev1.ResourceRequestsCPU]; cpu.String() != "16" {
			t.Errorf("%s: quota requests.cpu = %s, want 16", ns, cpu.String())
		}
		if _, ok := quota.Spec.Hard[corev1.ResourcePods]; ok {
			t.Errorf("%s: quota still has pods, dropped from the template", ns)
		}
		n, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || n.Annotations["openondemand.org/last-hook-execution"] == "" ||
			n.Annotations["kubehpc.io/gids"] == "" {
			t.Errorf("%s after the template change: labels %v annotations %v", ns, n.Labels, n.Annotations)
		}
	}
}

// TestReconcileDryRun proves a dry-run reconcile reports but changes nothing.
func TestReconcileDryRun(t *testing.T) {
	ctx := context.Background()
	cfg := newConfig(t)
	f := newFixture(t, cfg, nil)
	ns := cfg.NamespacePrefix + "alice"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	c := env.Kube.Client
	if err := c.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "deny-from-other-namespaces", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.b.DryRun = true
	if err := f.b.Reconcile(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NetworkingV1().NetworkPolicies(ns).Get(ctx, "deny-from-other-namespaces", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run reconcile restored the NetworkPolicy: err = %v, want NotFound", err)
	}
}

func namespaceAnnotations(t *testing.T, ns string) map[string]string {
	t.Helper()
	n, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Annotations
}

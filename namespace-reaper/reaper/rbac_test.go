package reaper

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// clusterRules is the ClusterRole the chart grants (leader election's Lease
// rule is namespaced, in the tool's own namespace, and not exercised here).
var clusterRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"list"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
}

// boundServiceAccount returns the config of a service account (named as the
// tool, in a namespace of its own) holding exactly rules, cluster-wide.
func boundServiceAccount(t *testing.T, rules []rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	home := env.Namespace(t, "reaper-sa-", nil)
	return env.ServiceAccount(t, home, Tool.Name, testenv.Grant{Rules: rules}).Config
}

// TestRBAC proves the ClusterRole above is all the tool needs, in --once and
// in watch mode (activity annotation, Event, delete), and that a missing
// verb is a counted error that deletes nothing.
func TestRBAC(t *testing.T) {
	ctx := context.Background()
	t.Run("once", func(t *testing.T) {
		h := newHarness(t, harnessOpts{restConfig: boundServiceAccount(t, clusterRules)}, nil)
		idle := h.namespace(t, nil)
		must(t, h.r.RunOnce(ctx))
		if !deletionRequested(t, idle) {
			t.Errorf("idle namespace %s was kept", idle)
		}
		testenv.Eventually(t, "the Reaped event", func() (bool, error) {
			evs, err := env.Kube.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.name", idle).String()})
			return err == nil && len(evs.Items) > 0, err
		})
	})
	t.Run("watch", func(t *testing.T) {
		h := newHarness(t, harnessOpts{watch: true, restConfig: boundServiceAccount(t, clusterRules)}, nil)
		busy := h.namespace(t, nil)
		idle := h.namespace(t, nil)
		createPod(t, busy, corev1.PodPending, time.Time{})
		waitAnnotation(t, busy, h.clock.Now())
		must(t, h.r.RunOnce(ctx))
		if !deletionRequested(t, idle) || deletionRequested(t, busy) {
			t.Errorf("deletion requested: idle %v, busy %v; want true, false", deletionRequested(t, idle), deletionRequested(t, busy))
		}
	})
	t.Run("no delete verb", func(t *testing.T) {
		rules := append([]rbacv1.PolicyRule(nil), clusterRules...)
		rules[0] = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "patch"}}
		h := newHarness(t, harnessOpts{restConfig: boundServiceAccount(t, rules)}, func(c *Config) { c.MaxDeletionsPerPass = 2 })
		idle := []string{h.namespace(t, nil), h.namespace(t, nil), h.namespace(t, nil)}
		err := h.r.RunOnce(ctx)
		if !apierrors.IsForbidden(err) {
			t.Errorf("RunOnce() = %v, want Forbidden", err)
		}
		for _, ns := range idle {
			if deletionRequested(t, ns) {
				t.Errorf("namespace %s was deleted without the delete verb", ns)
			}
		}
		// Failed deletions count against the cap: 2 attempts, not 3.
		if got := h.count("DELETE namespaces"); got != 2 {
			t.Errorf("DELETE namespaces = %d, want 2 (the cap)", got)
		}
		// One per failed deletion, one for the failed pass.
		if got := testutil.ToFloat64(h.r.metrics.errors); got != 3 {
			t.Errorf("errors_total = %v, want 3", got)
		}
	})
}

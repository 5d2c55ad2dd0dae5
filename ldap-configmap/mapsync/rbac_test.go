package mapsync

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestRBAC proves the exact permissions the tool needs (the ones the chart
// grants): a service account with only these syncs every output and removes
// stale annotations.
func TestRBAC(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t, env.LDAP)
	c.NamespaceAnnotations = true
	c.UserPrefix = "rb-"
	userNamespaces(t, "rb-alice")
	createNamespace(t, "rb-gone", map[string]string{"kubehpc.io/user": "gone", "kubehpc.io/uid": "1"})
	saNS := env.Namespace(t, "lcm-sa-", nil)
	var names []string
	for _, m := range c.Mappers {
		names = append(names, ConfigMapName(m))
	}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: names, Verbs: []string{"get", "create", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	sa := env.ServiceAccount(t, saNS, Tool.Name,
		testenv.Grant{Rules: rules, Namespaces: []string{c.Namespace}},
		// Events on cluster-scoped Namespaces are recorded in "default".
		testenv.Grant{Rules: rules[1:], Namespaces: []string{"default"}},
		testenv.Grant{Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch", "patch"}},
		}},
	).Client
	k := env.Kube.Client
	log := zaptest.NewLogger(t)
	rec, stop := events.NewRecorder(sa, Tool.Name, log)
	defer stop()
	p, err := New(c, Deps{Client: sa, Log: log, Registry: prometheus.NewRegistry(), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.RunOnce(ctx); err != nil {
			t.Fatalf("pass %d as the service account: %v", i+1, err)
		}
	}
	if got := readMaps(t, c.Namespace)[ConfigMapName(MapperUID)]["rb-alice"]; got != "10001" {
		t.Errorf("user-uid-map[rb-alice] = %q, want 10001", got)
	}
	if got := nsAnnotations(t, "rb-alice")["kubehpc.io/uid"]; got != "10001" {
		t.Errorf("rb-alice uid annotation = %q, want 10001", got)
	}
	if got := nsAnnotations(t, "rb-gone"); len(got) != 1 || got["kubehpc.io/user"] == "" {
		t.Errorf("rb-gone annotations = %v, want only the owner (never ours to remove)", got)
	}
	// The Events were written with these permissions (the recorder is asynchronous).
	for _, want := range []struct{ namespace, object, reason string }{
		{c.Namespace, "user-uid-map", "Synced"},
		{"default", "rb-gone", "IdentityRemoved"},
	} {
		err := testenv.Poll(ctx, testenv.PollInterval, testenv.PollTimeout, func() (bool, error) {
			list, err := k.CoreV1().Events(want.namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + want.object})
			if err != nil {
				return false, err
			}
			for _, e := range list.Items {
				if e.Reason == want.reason {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Errorf("Event %s on %s in %s: %v", want.reason, want.object, want.namespace, err)
		}
	}
}

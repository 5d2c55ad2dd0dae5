package mapsync

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

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
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: Tool.Name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: names, Verbs: []string{"get", "create", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: Tool.Name + "-" + c.Namespace}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch", "patch"}},
	}}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: Tool.Name, Namespace: saNS}}
	k := env.Kube.Client
	if _, err := k.RbacV1().Roles(c.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RbacV1().RoleBindings(c.Namespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: Tool.Name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: Tool.Name}, Subjects: subject}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Events on cluster-scoped Namespaces are recorded in "default".
	evRole := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: Tool.Name + "-" + c.Namespace}, Rules: role.Rules[1:]}
	if _, err := k.RbacV1().Roles("default").Create(ctx, evRole, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.RbacV1().Roles("default").Delete(ctx, evRole.Name, metav1.DeleteOptions{}) })
	evRB := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: evRole.Name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: evRole.Name}, Subjects: subject}
	if _, err := k.RbacV1().RoleBindings("default").Create(ctx, evRB, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.RbacV1().RoleBindings("default").Delete(ctx, evRB.Name, metav1.DeleteOptions{}) })
	if _, err := k.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.RbacV1().ClusterRoles().Delete(ctx, cr.Name, metav1.DeleteOptions{}) })
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name}, Subjects: subject}
	if _, err := k.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}) })

	sa, err := testenv.ClientFor(env.Kube.ServiceAccountConfig(saNS, Tool.Name))
	if err != nil {
		t.Fatal(err)
	}
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
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
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

package testenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServiceAccountExactRules proves Env.ServiceAccount grants exactly its
// rules: namespaced rules only in their namespaces, cluster-wide rules
// everywhere, a named rule only for that name, and nothing else; a second
// call adds grants to the same account.
func TestServiceAccountExactRules(t *testing.T) {
	ctx := context.Background()
	home := env.Namespace(t, "sa-home-", nil)
	in := env.Namespace(t, "sa-in-", nil)
	out := env.Namespace(t, "sa-out-", nil)
	sa := env.ServiceAccount(t, home, "tool",
		Grant{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "get"}}}, Namespaces: []string{in}},
		Grant{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}}}},
	)
	if sa.Namespace != home || sa.Name != "tool" {
		t.Errorf("ServiceAccount() = %s/%s, want %s/tool", sa.Namespace, sa.Name, home)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if _, err := sa.Client.CoreV1().ConfigMaps(in).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Errorf("create ConfigMap in the granted namespace: %v", err)
	}
	if _, err := sa.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list namespaces (granted cluster-wide): %v", err)
	}
	denied := []struct {
		name string
		do   func() error
	}{
		{"create a ConfigMap in another namespace", func() error {
			_, err := sa.Client.CoreV1().ConfigMaps(out).Create(ctx, cm, metav1.CreateOptions{})
			return err
		}},
		{"delete the ConfigMap it may create", func() error {
			return sa.Client.CoreV1().ConfigMaps(in).Delete(ctx, "x", metav1.DeleteOptions{})
		}},
		{"list Secrets in the granted namespace", func() error {
			_, err := sa.Client.CoreV1().Secrets(in).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"delete a namespace", func() error {
			return sa.Client.CoreV1().Namespaces().Delete(ctx, out, metav1.DeleteOptions{})
		}},
		{"get a Secret before the second grant", func() error {
			_, err := sa.Client.CoreV1().Secrets(out).Get(ctx, "s", metav1.GetOptions{})
			return err
		}},
	}
	for _, d := range denied {
		if err := d.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: err = %v, want Forbidden", d.name, err)
		}
	}
	// A second call adds a grant limited to one Secret's name.
	env.ServiceAccount(t, home, "tool", Grant{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"s"}, Verbs: []string{"get"}}}, Namespaces: []string{out}})
	if _, err := sa.Client.CoreV1().Secrets(out).Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get the granted Secret name (absent): err = %v, want NotFound", err)
	}
	if _, err := sa.Client.CoreV1().Secrets(out).Get(ctx, "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get another Secret: err = %v, want Forbidden", err)
	}
}

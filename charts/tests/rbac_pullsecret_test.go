package tests

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestRBACNamespaceBootstrapPullSecret installs namespace-bootstrap's RBAC
// as the chart renders it with imagePullSecret.name set (under another name,
// beside the umbrella's) and proves a thief of the token reads no Secret but
// the pull secret: not kube-system's, not another one in a user namespace,
// while the pull secret and the default ServiceAccount stay readable by name
// (the reconcile pass lists them with a field selector on the name).
func TestRBACNamespaceBootstrapPullSecret(t *testing.T) {
	ctx := context.Background()
	const name = "nb-pullsecret"
	out, err := helm(t, "template", name, subchart(t, "namespace-bootstrap"), "--namespace", name,
		"--set", "fullnameOverride="+name, "--set", "clusterRoles.create=false",
		"--set", "imagePullSecret.name=registry", "--set", "imagePullSecret.secretName=registry-source",
		"--show-only", "templates/rbac.yaml")
	out = must(t, out, err)
	manifest := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(manifest, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = kubectl(t, "apply", "-f", manifest)
	must(t, out, err)
	t.Cleanup(func() {
		if out, err := kubectl(t, "delete", "--ignore-not-found", "-f", manifest); err != nil {
			t.Logf("delete %s: %v: %s", manifest, err, out)
		}
	})
	c, err := testenv.ClientFor(env.Kube.ServiceAccountConfig(name, name))
	if err != nil {
		t.Fatal(err)
	}
	// The RBAC authorizer sees the new binding a moment later.
	testenv.EventuallyWithin(t, 30*time.Second, "the pull secret readable by "+name, func() (bool, error) {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "registry"}}}
		res, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed, err
	})

	ns := "user-" + name
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	for _, s := range []string{"registry", "job-secret"} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s}, StringData: map[string]string{"k": "v"}}
		if _, err := env.Kube.Client.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	checkAccess(t, c, name, []access{
		{verb: "get", resource: "secrets", namespace: ns, name: "registry", allowed: true},
		{verb: "list", resource: "secrets", name: "registry", allowed: true},
		{verb: "patch", resource: "secrets", namespace: ns, name: "registry", allowed: true},
		{verb: "get", resource: "serviceaccounts", namespace: ns, name: "default", allowed: true},
		{verb: "list", resource: "serviceaccounts", name: "default", allowed: true},
		// Create cannot be limited by name in RBAC: the guard policy does.
		{verb: "create", resource: "secrets", namespace: ns, allowed: true},
		// The thief of the token:
		{verb: "list", resource: "secrets", allowed: false},
		{verb: "list", resource: "secrets", namespace: "kube-system", allowed: false},
		{verb: "watch", resource: "secrets", allowed: false},
		{verb: "get", resource: "secrets", namespace: ns, name: "job-secret", allowed: false},
		{verb: "get", resource: "secrets", namespace: "kube-system", name: "bootstrap-token-abcdef", allowed: false},
		{verb: "patch", resource: "secrets", namespace: ns, name: "job-secret", allowed: false},
		{verb: "get", resource: "serviceaccounts", namespace: "kube-system", name: "admin", allowed: false},
		{verb: "list", resource: "serviceaccounts", allowed: false},
	})

	// The calls themselves, as the tool makes them and as a thief would.
	byName := func(n string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", n).String()}
	}
	list, err := c.CoreV1().Secrets("").List(ctx, byName("registry"))
	if err != nil {
		t.Errorf("list secrets named registry cluster-wide (the reconcile pass): %v", err)
	} else if len(list.Items) == 0 {
		t.Errorf("list secrets named registry cluster-wide found none, want the one in %s", ns)
	}
	if _, err := c.CoreV1().ServiceAccounts("").List(ctx, byName("default")); err != nil {
		t.Errorf("list service accounts named default cluster-wide (the reconcile pass): %v", err)
	}
	attempts := map[string]error{}
	_, attempts["list secrets cluster-wide"] = c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	_, attempts["list secrets in kube-system"] = c.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	_, attempts["list secrets named job-secret"] = c.CoreV1().Secrets("").List(ctx, byName("job-secret"))
	_, attempts["get job-secret"] = c.CoreV1().Secrets(ns).Get(ctx, "job-secret", metav1.GetOptions{})
	for what, err := range attempts {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: err = %v, want Forbidden", what, name, err)
		}
	}
}

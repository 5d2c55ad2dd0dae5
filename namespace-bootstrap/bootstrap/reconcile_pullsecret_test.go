package bootstrap

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// TestReconcilePullSecretAsServiceAccount runs a login and a reconcile pass
// with an image pull secret as namespace-bootstrap's service account, with
// the RBAC the chart ships (Secrets only by the pull secret's name): the
// login creates the pull secret, a pass restores a drifted one and the
// default service account's imagePullSecrets, and a thief of the token
// reads no other Secret (kube-system's, another name in a user namespace).
func TestReconcilePullSecretAsServiceAccount(t *testing.T) {
	ctx := context.Background()
	cfg := newConfig(t, allOptions(t)...)
	saCfg := env.Kube.ServiceAccountConfig("namespace-bootstrap", "namespace-bootstrap")
	f := newFixture(t, cfg, saCfg)
	ns := cfg.NamespacePrefix + "alice"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "alice"); err != nil {
		t.Fatalf("Bootstrap(alice) as the service account = %v", err)
	}
	c := env.Kube.Client
	sec, err := c.CoreV1().Secrets(ns).Get(ctx, "registry", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pull secret after login: %v", err)
	}
	want := string(sec.Data[corev1.DockerConfigJsonKey])

	// Drift: the pull secret's content and the default service account's
	// imagePullSecrets.
	sec.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"evil.example.org":{"auth":"eDp4"}}}`)
	if _, err := c.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	sa, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "other"}}
	if _, err := c.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	if err := f.b.Reconcile(ctx, 2); err != nil {
		t.Fatalf("Reconcile() as the service account = %v", err)
	}
	sec, err = c.CoreV1().Secrets(ns).Get(ctx, "registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(sec.Data[corev1.DockerConfigJsonKey]); got != want {
		t.Errorf("pull secret after reconcile = %s, want %s restored", got, want)
	}
	sa, err = c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasPullSecret(sa, "registry") {
		t.Errorf("default service account imagePullSecrets after reconcile = %v, want registry", sa.ImagePullSecrets)
	}

	// The thief of the token.
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-job"}, StringData: map[string]string{"k": "v"}}
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	thief, err := testenv.ClientFor(saCfg)
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[string]error{}
	_, attempts["list secrets cluster-wide"] = thief.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	_, attempts["list secrets in kube-system"] = thief.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	_, attempts["list secrets in the user namespace"] = thief.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	_, attempts["get another secret in the user namespace"] = thief.CoreV1().Secrets(ns).Get(ctx, "alice-job", metav1.GetOptions{})
	_, attempts["watch secrets cluster-wide"] = thief.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{})
	byOther := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "alice-job").String()}
	_, attempts["list secrets named alice-job"] = thief.CoreV1().Secrets("").List(ctx, byOther)
	for what, err := range attempts {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as namespace-bootstrap: err = %v, want Forbidden", what, err)
		}
	}
}

func hasPullSecret(sa *corev1.ServiceAccount, name string) bool {
	for _, r := range sa.ImagePullSecrets {
		if r.Name == name {
			return true
		}
	}
	return false
}

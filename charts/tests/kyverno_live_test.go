package tests

// The Kyverno engine proven on a running Kyverno admission controller, not
// only through the CLI.
//
// startKyvernoEngine(t, helmArgs...) brings the Kyverno engine up for one
// test: it starts Kyverno's admission controller (env.StartKyverno, from
// pkg/testenv: a local process built by hack/kyverno.sh, its webhooks
// registered on the test API server), installs the umbrella chart as release
// kubehpc-kyverno with only the policies enabled
// (testdata/kyverno-live-values.yaml: policies.engine=kyverno,
// policies.identitySource=configMaps, ClusterPolicies named kubehpc-ky-*,
// namespaces named ky-*), and waits until Kyverno enforces them. helmArgs go
// to helm install after those values (e.g. "--set",
// "policies.lifetime.max=12h"). When the test ends the release is
// uninstalled and Kyverno stopped (its webhook configurations removed). Run
// one Kyverno at a time: its webhook configurations have fixed names.
//
// Users come from the engine: newUser adds them to ldap-configmap's
// ConfigMaps, creates their namespace ky-<name>-<n> and binds them to
// ood-user:
//
//	eng := startKyvernoEngine(t)
//	alice := eng.newUser(t, "alice", "10001", "10001", []string{"10001", "20001"}, []string{"alice", "pzs0001"})
//	_, err := alice.Client.CoreV1().Pods(alice.Namespace).Create(ctx, goodPod(alice), metav1.CreateOptions{})
//	if !kyvernoDenied(err, "runAsUser must be 10001") { ... }
//
// A test that installs the policies itself (the attack catalogue's
// installCatalogue) only needs Kyverno running first:
// env.StartKyverno(t, testenv.KyvernoOptions{}). Kyverno's denials come
// from a webhook, so the API server returns them as 400 BadRequest
// (`admission webhook "validate.kyverno.svc-fail" denied the request: ...`),
// not Forbidden or Invalid as a ValidatingAdmissionPolicy's: kyvernoDenied
// checks that. Its messages name the user by namespace ("the LDAP UID of the
// user of ky-alice-7"): identity comes from the ConfigMaps, keyed by
// namespace.
//
// The chart's ClusterPolicies match kinds Pod, Pod/ephemeralcontainers and
// Pod/resize, so both subresources are checked under this engine too
// (attacks_test.go's catalogue, TestAttackCatalogueKyverno, proves it).

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// kyvernoEngine is the chart's policies enforced by a running Kyverno.
type kyvernoEngine struct {
	// Namespace is the release namespace, holding ldap-configmap's
	// ConfigMaps (user-uid-map, ...) that the ClusterPolicies read.
	Namespace string
	Kyverno   *testenv.Kyverno
}

const kyvernoRelease = "kubehpc-kyverno"

// identityMaps are ldap-configmap's ConfigMaps, in the order of
// newUser's values: uid, gid, gids, groups, home.
var identityMaps = []string{"user-uid-map", "user-gid-map", "user-gids-map", "user-groups-map", "user-home-map"}

// startKyvernoEngine starts Kyverno and installs the policies for it: see the
// top of this file.
func startKyvernoEngine(t *testing.T, helmArgs ...string) *kyvernoEngine {
	t.Helper()
	installUmbrella(t) // ood-user and namespace-bootstrap's service account
	ctx := context.Background()
	eng := &kyvernoEngine{Namespace: kyvernoRelease, Kyverno: env.StartKyverno(t, testenv.KyvernoOptions{})}
	// The ConfigMaps exist before the policies that read them.
	ensureNamespace(t, eng.Namespace)
	for _, name := range identityMaps {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{}}
		if _, err := env.Kube.Client.CoreV1().ConfigMaps(eng.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create ConfigMap %s/%s: %v", eng.Namespace, name, err)
		}
	}
	args := append([]string{"install", kyvernoRelease, umbrella(t), "--namespace", eng.Namespace,
		"--values", filepath.Join("testdata", "kyverno-live-values.yaml")}, helmArgs...)
	start := time.Now()
	if _, err := helm(t, args...); err != nil {
		t.Fatalf("install the umbrella chart with policies.engine=kyverno: %v\n--- Kyverno log ---\n%s", err, eng.Kyverno.LogTail())
	}
	// Before Kyverno stops (cleanups run last-in first-out).
	t.Cleanup(func() {
		if _, err := helm(t, "uninstall", kyvernoRelease, "--namespace", eng.Namespace); err != nil {
			t.Errorf("helm uninstall %s: %v", kyvernoRelease, err)
		}
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), eng.Namespace, metav1.DeleteOptions{})
	})
	// Kyverno adds a policy's kinds to its webhooks once it has read it:
	// poll a known-bad pod until Kyverno denies it.
	probe := eng.newUser(t, "kyverno-probe", "10001", "10001", []string{"10001"}, []string{"probe"})
	pod := goodPod(probe)
	pod.Spec.HostNetwork = true
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := probe.Client.CoreV1().Pods(probe.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if ctx.Err() == nil {
			last = err
		}
		return kyvernoDenied(last, "host namespaces are not allowed"), nil
	})
	if err != nil {
		t.Fatalf("Kyverno did not enforce the chart's ClusterPolicies within 3 minutes (last result: %v): %v\n--- Kyverno log ---\n%s", last, err, eng.Kyverno.LogTail())
	}
	t.Logf("helm install with policies.engine=kyverno until enforced: %v", time.Since(start).Round(time.Millisecond))
	return eng
}

// newUser adds a user to the identity ConfigMaps under their new namespace
// ky-<name>-<n> (which the Kyverno engine's policies select by name) and
// binds them to ood-user.
func (eng *kyvernoEngine) newUser(t testing.TB, name, uid, gid string, gids, groups []string) *user {
	t.Helper()
	ns := fmt.Sprintf("ky-%s-%d", name, seq.Add(1))
	values := []string{uid, gid, jsonStrings(gids), jsonStrings(groups), "/users/" + name}
	ctx := context.Background()
	for i, mapName := range identityMaps {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := env.Kube.Client.CoreV1().ConfigMaps(eng.Namespace).Get(ctx, mapName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[ns] = values[i]
			_, err = env.Kube.Client.CoreV1().ConfigMaps(eng.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("add %s to ConfigMap %s/%s: %v", ns, eng.Namespace, mapName, err)
		}
	}
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return bindUser(t, &user{Name: name, Namespace: ns, UID: uid, GID: gid, GIDs: gids, Groups: groups})
}

// jsonStrings is ldap-configmap's encoding of a list: a JSON array of strings.
func jsonStrings(list []string) string {
	return `["` + strings.Join(list, `","`) + `"]`
}

// kyvernoDenied reports whether err is a denial by Kyverno's validating
// webhook whose message holds want.
func kyvernoDenied(err error, want string) bool {
	return err != nil && strings.Contains(err.Error(), `admission webhook "validate.kyverno.svc`) && strings.Contains(err.Error(), want)
}

// TestKyvernoLive proves the chart's ClusterPolicies on a running Kyverno,
// through the real API server as a portal user: a well-formed pod is
// admitted; a pod with another UID is denied with the policy's message; an
// UPDATE that changes the pod's account label is denied, one that adds an
// unrelated label admitted; a privileged ephemeral container (the
// pods/ephemeralcontainers subresource, kubectl debug) is denied, a
// well-formed one admitted (pods/resize: see the top of this file). Once
// Kyverno is stopped its webhooks are gone and pods are admitted again.
func TestKyvernoLive(t *testing.T) {
	eng := startKyvernoEngine(t)
	ctx := context.Background()
	u := eng.newUser(t, "ivan", "10011", "10011", []string{"10011", "20001"}, []string{"ivan", "pzs0001"})
	pods := u.Client.CoreV1().Pods(u.Namespace)
	pod, err := pods.Create(ctx, goodPod(u), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a well-formed pod as %s: %v", u.Name, err)
	}

	t.Run("another UID", func(t *testing.T) {
		p := goodPod(u)
		p.Spec.SecurityContext.RunAsUser = ptr(int64(10002))
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if want := "runAsUser must be 10011, the LDAP UID of the user of " + u.Namespace; !kyvernoDenied(err, want) {
			t.Errorf("create a pod with runAsUser 10002: err = %v, want Kyverno's denial containing %q", err, want)
		}
	})

	t.Run("UPDATE of the account label", func(t *testing.T) {
		_, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"account":"ivan"}}}`), metav1.PatchOptions{})
		if want := "the label account of a pod cannot change after creation"; !kyvernoDenied(err, want) {
			t.Errorf("change the account label from pzs0001 to ivan: err = %v, want Kyverno's denial containing %q", err, want)
		}
		if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"note":"x"}}}`), metav1.PatchOptions{}); err != nil {
			t.Errorf("add an unrelated label: %v", err)
		}
	})

	t.Run("pods/ephemeralcontainers", func(t *testing.T) {
		// ood-user does not grant kubectl debug; a site may.
		grantSubresources(t, u, "pods/ephemeralcontainers")
		debug := func(name string, privileged bool) error {
			p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sc := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
			if privileged {
				sc = &corev1.SecurityContext{Privileged: ptr(true)}
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: name, Image: "registry.example.org/debug:1", SecurityContext: sc,
			}})
			_, err = pods.UpdateEphemeralContainers(ctx, pod.Name, p, metav1.UpdateOptions{})
			return err
		}
		if err := debug("privileged", true); !kyvernoDenied(err, "privileged containers are not allowed") {
			t.Errorf("add a privileged ephemeral container: err = %v, want Kyverno's denial containing %q", err, "privileged containers are not allowed")
		}
		if err := debug("ok", false); err != nil {
			t.Errorf("add a well-formed ephemeral container: %v", err)
		}
	})

	t.Run("identity floor", func(t *testing.T) {
		runIdentityFloors(t, func(t *testing.T, name, uid, gid string, gids []string) *user {
			return eng.newUser(t, name, uid, gid, gids, []string{name, "pzs0001"})
		}, func(t *testing.T, u *user, home string) {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cm, err := env.Kube.Client.CoreV1().ConfigMaps(eng.Namespace).Get(ctx, "user-home-map", metav1.GetOptions{})
				if err != nil {
					return err
				}
				cm.Data[u.Namespace] = home
				_, err = env.Kube.Client.CoreV1().ConfigMaps(eng.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatalf("set the home of %s to %s: %v", u.Namespace, home, err)
			}
		}, kyvernoDenied)
	})

	// Stop (what the test's cleanup does) leaves a usable API server: no
	// webhook configuration of Kyverno's is left to fail requests.
	t.Run("stopped cleanly", func(t *testing.T) {
		eng.Kyverno.Stop()
		for _, kind := range []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
			out, err := kubectl(t, "get", kind, "-l", "webhook.kyverno.io/managed-by=kyverno", "-o", "name")
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("%s of Kyverno's after Stop: %q (err %v), want none", kind, out, err)
			}
		}
		if _, err := pods.Create(ctx, goodPod(u), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("create a pod after Kyverno stopped: %v", err)
		}
	})
}

// grantSubresources lets u update and patch the given pod subresources in
// their namespace (what a site granting kubectl debug would add to ood-user) and waits until the authorizer sees it.
func grantSubresources(t *testing.T, u *user, subresources ...string) {
	t.Helper()
	ctx := context.Background()
	name := "kubehpc-test-" + strings.ReplaceAll(strings.Join(subresources, "-"), "/", "-")
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: subresources, Verbs: []string{"update", "patch"}}}}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: u.Name}},
	}
	if _, err := env.Kube.Client.RbacV1().Roles(u.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.Client.RbacV1().RoleBindings(u.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range subresources {
		resource, sub, _ := strings.Cut(s, "/")
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: "update", Resource: resource, Subresource: sub, Namespace: u.Namespace}}}
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			res, err := u.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			return err == nil && res.Status.Allowed, nil
		})
		if err != nil {
			t.Fatalf("%s may not update %s within 30s of the RoleBinding: %v", u.Name, s, err)
		}
	}
}

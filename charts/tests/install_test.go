package tests

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// releaseNamespace is where the tests install the umbrella chart.
const releaseNamespace = "kubehpc"

var (
	installOnce sync.Once
	installErr  error
)

// installUmbrella installs the umbrella chart once per test binary (its
// cluster-scoped objects allow one release) with testdata/install-values.yaml
// and waits until the admission policies are enforced.
func installUmbrella(t testing.TB) {
	t.Helper()
	installOnce.Do(func() {
		start := time.Now()
		_, installErr = helm(t, "install", "kubehpc", umbrella(t), "--namespace", releaseNamespace, "--create-namespace",
			"--values", filepath.Join("testdata", "install-values.yaml"))
		if installErr != nil {
			return
		}
		t.Logf("helm install of the umbrella chart took %v", time.Since(start).Round(time.Millisecond))
		// The RBAC authorizer sees the new bindings a moment later.
		installErr = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Verb: "create", Resource: "namespaces"}}}
			res, err := saClient(t, "namespace-bootstrap").AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			return err == nil && res.Status.Allowed, nil
		})
		if installErr != nil {
			return
		}
		installErr = waitForPolicies(t, "user-wait-")
	})
	if installErr != nil {
		t.Fatalf("install the umbrella chart: %v", installErr)
	}
}

// waitForPolicies polls a known-bad pod (host network, in a user namespace with
// an identity) with server-side dry-run until the API server denies it: a
// ValidatingAdmissionPolicy takes effect 0.1-0.2 s after it is created.
func waitForPolicies(t testing.TB, prefix string) error {
	u := newUser(t, prefix+"probe", "10001", "10001", []string{"10001"}, []string{"probe"})
	pod := goodPod(u)
	pod.Spec.HostNetwork = true
	ctx := context.Background()
	return pollDenied(ctx, func() error {
		_, err := env.Kube.Client.CoreV1().Pods(u.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "ValidatingAdmissionPolicy")
}

// pollDenied calls create every testenv.PollInterval until its error
// contains want, for at most 30 s.
func pollDenied(ctx context.Context, create func() error, want string) error {
	var last error
	err := testenv.Poll(ctx, testenv.PollInterval, 30*time.Second, func() (bool, error) {
		last = create()
		return last != nil && strings.Contains(last.Error(), want), nil
	})
	if err != nil {
		return fmt.Errorf("policies not enforced within 30s (last result: %v): %w", last, err)
	}
	return nil
}

// TestInstallUmbrella installs the umbrella chart into the real control plane
// and checks that every tool's workload, service account and policy exists.
func TestInstallUmbrella(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	c := env.Kube.Client
	for _, d := range []string{"ldap-configmap", "job-pod-reaper", "namespace-bootstrap"} {
		dep, err := c.AppsV1().Deployments(releaseNamespace).Get(ctx, d, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Deployment %s: %v", d, err)
			continue
		}
		checkHardened(t, d, dep.Spec.Template.Spec)
	}
	if dep, err := c.AppsV1().Deployments(releaseNamespace).Get(ctx, "job-pod-reaper", metav1.GetOptions{}); err == nil {
		if *dep.Spec.Replicas != 2 || !contains(dep.Spec.Template.Spec.Containers[0].Args, "--leader-elect") {
			t.Errorf("job-pod-reaper: replicas %d args %v, want 2 replicas with --leader-elect", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Args)
		}
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(releaseNamespace).Get(ctx, "job-pod-reaper", metav1.GetOptions{}); err != nil {
		t.Errorf("job-pod-reaper PodDisruptionBudget: %v", err)
	}
	cj, err := c.BatchV1().CronJobs(releaseNamespace).Get(ctx, "namespace-reaper", metav1.GetOptions{})
	if err != nil {
		t.Errorf("CronJob namespace-reaper: %v", err)
	} else {
		spec := cj.Spec.JobTemplate.Spec.Template.Spec
		checkHardened(t, "namespace-reaper", spec)
		if !contains(spec.Containers[0].Args, "--once") {
			t.Errorf("namespace-reaper CronJob args %v, want --once", spec.Containers[0].Args)
		}
	}
	for _, sa := range []string{"ldap-configmap", "job-pod-reaper", "namespace-reaper", "namespace-bootstrap"} {
		if _, err := c.CoreV1().ServiceAccounts(releaseNamespace).Get(ctx, sa, metav1.GetOptions{}); err != nil {
			t.Errorf("ServiceAccount %s: %v", sa, err)
		}
	}
	for _, p := range []string{"kubehpc-pod-identity", "kubehpc-pod-security", "kubehpc-pod-hostpath", "kubehpc-pod-immutable", "kubehpc-namespace-identity"} {
		// The API server type-checks each policy against the Pod and
		// Namespace schemas in the background: wait for the result.
		var vap *admissionregistrationv1.ValidatingAdmissionPolicy
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			vap, err = c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, p, metav1.GetOptions{})
			return err == nil && vap.Status.TypeChecking != nil, nil
		})
		if err != nil {
			t.Errorf("ValidatingAdmissionPolicy %s: no type-checking result: %v", p, err)
			continue
		}
		for _, w := range vap.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("ValidatingAdmissionPolicy %s: type-checking warning at %s: %s", p, w.FieldRef, w.Warning)
		}
	}
	// helm upgrade with the same values changes nothing that fails.
	if _, err := helm(t, "upgrade", "kubehpc", umbrella(t), "--namespace", releaseNamespace,
		"--values", filepath.Join("testdata", "install-values.yaml")); err != nil {
		t.Errorf("helm upgrade: %v", err)
	}
}

// checkHardened asserts the pod security settings every tool's pod must have.
func checkHardened(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v, want runAsNonRoot and seccomp RuntimeDefault", name, psc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: securityContext %+v, want read-only root, no privilege escalation, drop ALL", name, c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources %+v, want CPU and memory requests and limits", name, c.Name, c.Resources)
		}
	}
}

// user is a portal user with a namespace carrying its identity.
type user struct {
	Name, Namespace, UID, GID string
	GIDs, Groups              []string
	Client                    kubernetes.Interface
}

// newUser creates the user's namespace the way namespace-bootstrap does (as
// its service account, so the identity annotations are allowed), labelled
// for the policies, with a RoleBinding to ood-user, and returns a client
// acting as the user.
func newUser(t testing.TB, name, uid, gid string, gids, groups []string) *user {
	t.Helper()
	// The user is named for the namespace, as namespace-bootstrap's guard
	// wants of the owner (pkg/naming.NamespaceForUser).
	name = fmt.Sprintf("%s-%d", name, seq.Add(1))
	ns := "user-" + name
	ann := map[string]string{
		"kubehpc.io/user":   name,
		"kubehpc.io/uid":    uid,
		"kubehpc.io/gid":    gid,
		"kubehpc.io/gids":   "," + strings.Join(gids, ",") + ",",
		"kubehpc.io/groups": "," + strings.Join(groups, ",") + ",",
		"kubehpc.io/home":   "/users/" + name,
	}
	if uid == "" {
		ann = nil
	}
	createUserNamespace(t, ns, map[string]string{"app.kubernetes.io/name": "open-ondemand"}, ann)
	return bindUser(t, &user{Name: name, Namespace: ns, UID: uid, GID: gid, GIDs: gids, Groups: groups})
}

// createUserNamespace creates a namespace as namespace-bootstrap's service
// account (with its managed-by label, as namespace-bootstrap does) and
// deletes it (as the admin) when the test ends. Without an owner in
// annotations it is owned by the user it is named for (user-<owner>), as
// namespace-bootstrap's guard wants of every namespace it creates.
func createUserNamespace(t testing.TB, ns string, labels, annotations map[string]string) {
	t.Helper()
	if annotations["kubehpc.io/user"] == "" {
		annotations = maps.Clone(annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations["kubehpc.io/user"] = strings.TrimPrefix(ns, "user-")
	}
	bootstrap := saClient(t, "namespace-bootstrap")
	all := map[string]string{"app.kubernetes.io/managed-by": "namespace-bootstrap"}
	for k, v := range labels {
		all[k] = v
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: all, Annotations: annotations}}
	if _, err := bootstrap.CoreV1().Namespaces().Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s as namespace-bootstrap: %v", ns, err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

// bindUser binds the user to ood-user in their namespace (as
// namespace-bootstrap would) and makes their client.
func bindUser(t testing.TB, u *user) *user {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: u.Name + "-ood-user"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ood-user"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: u.Name}},
	}
	if _, err := env.Kube.Client.RbacV1().RoleBindings(u.Namespace).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind %s to ood-user: %v", u.Name, err)
	}
	c, err := testenv.ClientFor(env.Kube.ConfigAs(u.Name))
	if err != nil {
		t.Fatal(err)
	}
	u.Client = c
	// The API server's RBAC authorizer sees a new binding a moment later.
	review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
		Verb: "create", Resource: "pods", Namespace: u.Namespace}}}
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		res, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s may not create pods in %s within 30s of the RoleBinding: %v", u.Name, u.Namespace, err)
	}
	return u
}

// saClient acts as a tool's service account in the release namespace.
func saClient(t testing.TB, name string) kubernetes.Interface {
	t.Helper()
	c, err := testenv.ClientFor(env.Kube.ServiceAccountConfig(releaseNamespace, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// isDenied reports whether err is an admission denial whose message holds want.
func isDenied(err error, want string) bool {
	return err != nil && (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) && strings.Contains(err.Error(), want)
}

// TestSubchartsInstallAlone installs each tool's chart on its own (as a site
// that wants only one tool would), into its own namespace and under another
// name so it does not collide with the umbrella's cluster-scoped objects,
// and checks its workload and service account exist.
func TestSubchartsInstallAlone(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	for _, s := range subcharts[:4] {
		t.Run(s, func(t *testing.T) {
			ns, name := "alone-"+s, "alone-"+s
			args := []string{"install", name, subchart(t, s), "--namespace", ns, "--create-namespace", "--set", "fullnameOverride=" + name}
			if s == "namespace-bootstrap" {
				// The ownership guard is cluster-wide and names one
				// namespace-bootstrap: a second one would refuse the
				// umbrella's logins (the other tests') while it exists.
				args = append(args, "--set", "clusterRoles.create=false", "--set", "guard.enabled=false")
			}
			if _, err := helm(t, args...); err != nil {
				t.Fatalf("helm install %s alone: %v", s, err)
			}
			t.Cleanup(func() { _, _ = helm(t, "uninstall", name, "--namespace", ns) })
			if _, err := env.Kube.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("Deployment %s/%s: %v", ns, name, err)
			}
			if _, err := env.Kube.Client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("ServiceAccount %s/%s: %v", ns, name, err)
			}
		})
	}
}

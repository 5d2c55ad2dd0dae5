package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// attempt is one write an attacker tries, and what must happen.
type attempt struct {
	name    string
	do      func() error
	allowed bool
	// want is a substring of the denial (a guard's message, or "forbidden"
	// for RBAC).
	want string
}

func runAttempts(t *testing.T, who string, attempts []attempt) {
	t.Helper()
	for _, a := range attempts {
		err := a.do()
		switch {
		case a.allowed && err != nil:
			t.Errorf("%s: %s: %v, want allowed", who, a.name, err)
		case !a.allowed && err == nil:
			t.Errorf("%s: %s: allowed, want denied (%s)", who, a.name, a.want)
		case !a.allowed && !isDenied(err, a.want):
			t.Errorf("%s: %s: %v, want denied with %q", who, a.name, err, a.want)
		}
	}
}

func roleBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: name}
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: name}
}

// TestGuardNamespaceBootstrap is issue 11's hole 1: with namespace-bootstrap's
// token, the path to cluster-admin (bind ood-user to itself in kube-system,
// make a controller-like ServiceAccount and a token Secret there, patch an
// aggregated ClusterRole, bind cluster-admin) and every smaller abuse inside
// user namespaces is refused, while what a login writes still goes through.
func TestGuardNamespaceBootstrap(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	c := saClient(t, "namespace-bootstrap")
	self := saSubject(releaseNamespace, "namespace-bootstrap")
	ns := fmt.Sprintf("user-gb-%d", seq.Add(1))
	createUserNamespace(t, ns, map[string]string{"app.kubernetes.io/name": "open-ondemand"}, nil)
	owner := strings.TrimPrefix(ns, "user-")
	foreign := fmt.Sprintf("user-foreign-%d", seq.Add(1))
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreign}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, foreign, metav1.DeleteOptions{}) })
	const guard = "namespace-bootstrap guard: "
	createRB := func(ns string, rb *rbacv1.RoleBinding) func() error {
		return func() error {
			_, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
			return err
		}
	}
	createNS := func(name string, labels map[string]string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
			if err == nil {
				t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
			}
			return err
		}
	}
	patchNS := func(name, patch string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}
	}
	managed := map[string]string{"app.kubernetes.io/managed-by": "namespace-bootstrap"}
	runAttempts(t, "namespace-bootstrap", []attempt{
		// The escalation path.
		{name: "bind ood-user to itself in kube-system", do: createRB("kube-system", roleBinding("x", "ood-user", self)), want: guard + "namespace-bootstrap writes only in user namespaces"},
		{name: "create a controller-like ServiceAccount in kube-system", do: func() error {
			_, err := c.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "replicaset-controller2"}}, metav1.CreateOptions{})
			return err
		}, want: "forbidden"},
		{name: "create a token Secret in kube-system", do: func() error {
			_, err := c.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tok",
				Annotations: map[string]string{"kubernetes.io/service-account.name": "replicaset-controller"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{})
			return err
		}, want: "forbidden"},
		{name: "patch an aggregated ClusterRole", do: func() error {
			_, err := c.RbacV1().ClusterRoles().Patch(ctx, "admin", types.MergePatchType, []byte(`{"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}`), metav1.PatchOptions{})
			return err
		}, want: "forbidden"},
		{name: "bind cluster-admin", do: func() error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pwn"},
				RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: []rbacv1.Subject{self}}, metav1.CreateOptions{})
			return err
		}, want: "forbidden"},
		{name: "bind cluster-admin in a user namespace", do: createRB(ns, roleBinding("pwn", "cluster-admin", self)), want: "forbidden"},
		// Namespaces outside its reach.
		{name: "create namespace prod-db", do: createNS("prod-db", managed), want: guard + "namespace-bootstrap writes only in user namespaces"},
		{name: "create an unmanaged user namespace", do: createNS(fmt.Sprintf("user-unmanaged-%d", seq.Add(1)), nil), want: guard + "a Namespace namespace-bootstrap writes carries"},
		{name: "label kube-system", do: patchNS("kube-system", `{"metadata":{"labels":{"app.kubernetes.io/name":"open-ondemand"}}}`), want: guard},
		{name: "take over a user-named namespace someone else made", do: patchNS(foreign, `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"namespace-bootstrap"}}}`), want: guard + "namespace " + foreign + " is not managed"},
		{name: "bind ood-user in a namespace someone else made", do: createRB(foreign, roleBinding("x", "ood-user", userSubject(owner))), want: guard + "namespace " + foreign + " is not managed"},
		// Inside a user namespace: only what the template writes.
		{name: "bind ood-user to itself", do: createRB(ns, roleBinding("x1", "ood-user", self)), want: guard + "RoleBinding x1"},
		{name: "bind ood-user to another user", do: createRB(ns, roleBinding("x2", "ood-user", userSubject("mallory"))), want: guard + "RoleBinding x2"},
		{name: "bind ood-user to the owner and another user", do: createRB(ns, roleBinding("x3", "ood-user", userSubject(owner), userSubject("mallory"))), want: guard + "RoleBinding x3"},
		{name: "bind ood-initializer to a kube-system ServiceAccount", do: createRB(ns, roleBinding("x4", "ood-initializer", saSubject("kube-system", "default"))), want: guard + "RoleBinding x4"},
		{name: "bind job-pod-reaper to itself", do: createRB(ns, roleBinding("x5", "job-pod-reaper", self)), want: guard + "RoleBinding x5"},
		{name: "create a ServiceAccount", do: func() error {
			_, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "evil"}}, metav1.CreateOptions{})
			return err
		}, want: "forbidden"},
		// Deletion by the garbage collector instead: owner references, finalizers.
		{name: "give a user namespace a missing owner", do: patchNS(ns, `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"ghost","uid":"6a4d4a4e-0000-4000-8000-000000000001"}]}}`), want: guard + "namespace-bootstrap sets or changes no owner references or finalizers"},
		{name: "block a user namespace's deletion", do: patchNS(ns, `{"metadata":{"finalizers":["example.org/forever"]}}`), want: guard + "namespace-bootstrap sets or changes no owner references or finalizers"},
		{name: "create a RoleBinding owned by a missing object", do: func() error {
			rb := roleBinding("gb-owned", "ood-user", userSubject(owner))
			rb.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "ghost", UID: "6a4d4a4e-0000-4000-8000-000000000002"}}
			return createRB(ns, rb)()
		}, want: guard + "namespace-bootstrap sets or changes no owner references or finalizers"},
		// Events: only where it records them.
		{name: "forge an Event in kube-system", do: func() error {
			_, err := c.CoreV1().Events("kube-system").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "forged"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "kube-apiserver"}, Reason: "Pwned", Message: "x", Type: "Warning",
				Source: corev1.EventSource{Component: "kubelet"}}, metav1.CreateOptions{})
			return err
			// This guard or the Events guard, whichever the API server reports.
		}, want: guard},
		{name: "record an Event in the user namespace", do: func() error {
			_, err := c.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "bootstrapped"},
				InvolvedObject: corev1.ObjectReference{Kind: "Namespace", Namespace: ns, Name: ns}, Reason: "Bootstrapped", Message: "x", Type: "Normal",
				Source: corev1.EventSource{Component: "namespace-bootstrap"}}, metav1.CreateOptions{})
			return err
		}, allowed: true},
		{name: "record an Event in its own namespace", do: func() error {
			_, err := c.CoreV1().Events(releaseNamespace).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "collision-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: releaseNamespace, Name: "namespace-bootstrap-0"}, Reason: "IdentityCollision", Message: "x", Type: "Warning",
				Source: corev1.EventSource{Component: "namespace-bootstrap"}}, metav1.CreateOptions{})
			return err
		}, allowed: true},
		// What a login writes.
		{name: "bind ood-user to the owner", do: createRB(ns, roleBinding("gb-ood-user", "ood-user", userSubject(owner))), allowed: true},
		{name: "bind ood-initializer to the default ServiceAccount", do: createRB(ns, roleBinding("gb-ood-initializer", "ood-initializer", saSubject(ns, "default"))), allowed: true},
		{name: "bind job-pod-reaper to job-pod-reaper", do: createRB(ns, roleBinding("gb-job-pod-reaper", "job-pod-reaper", saSubject(releaseNamespace, "job-pod-reaper"))), allowed: true},
		{name: "record the login", do: patchNS(ns, `{"metadata":{"annotations":{"openondemand.org/last-hook-execution":"1800000000"}}}`), allowed: true},
	})
}

// TestGuardNamespaceOwnership: the owner annotation and the managed label
// are written by namespace-bootstrap only and never changed afterwards, by
// anyone: the cluster admin, another tool, or namespace-bootstrap itself.
func TestGuardNamespaceOwnership(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	ns := fmt.Sprintf("user-own-%d", seq.Add(1))
	createUserNamespace(t, ns, map[string]string{"app.kubernetes.io/name": "open-ondemand"}, nil)
	ownerless := fmt.Sprintf("user-ownerless-%d", seq.Add(1))
	// Made by Open OnDemand, not yet adopted: namespace-bootstrap creates
	// none without an owner.
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownerless,
		Labels: map[string]string{"app.kubernetes.io/name": "open-ondemand"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, ownerless, metav1.DeleteOptions{}) })
	hook := fmt.Sprintf("user-hook-%d", seq.Add(1))
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: hook,
		Labels: map[string]string{"app.kubernetes.io/name": "open-ondemand"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, hook, metav1.DeleteOptions{}) })
	patch := func(c kubernetes.Interface, name, p string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(p), metav1.PatchOptions{})
			return err
		}
	}
	admin, bootstrap, ldap := env.Kube.Client, saClient(t, "namespace-bootstrap"), saClient(t, "ldap-configmap")
	const once = "namespace ownership: the owner of namespace "
	const only = "namespace ownership: only namespace-bootstrap"
	// The admin's writes of kubehpc.io/user are also refused by the pod
	// policies' identity rule (rule 9), whichever the API server reports;
	// the tools' service accounts pass rule 9, so their cases show this
	// guard alone.
	runAttempts(t, "ownership", []attempt{
		{name: "admin changes the owner", do: patch(admin, ns, `{"metadata":{"annotations":{"kubehpc.io/user":"mallory"}}}`), want: "kubehpc.io/user"},
		{name: "admin removes the owner", do: patch(admin, ns, `{"metadata":{"annotations":{"kubehpc.io/user":null}}}`), want: "kubehpc.io/user"},
		// Another spelling of the user the namespace is named for, so that
		// only the write-once rule refuses it.
		{name: "namespace-bootstrap changes the owner", do: patch(bootstrap, ns, `{"metadata":{"annotations":{"kubehpc.io/user":"`+strings.ToUpper(strings.TrimPrefix(ns, "user-"))+`"}}}`), want: once + ns},
		// ldap-configmap's own guard refuses these too, whichever the API server reports.
		{name: "ldap-configmap writes LDAP's spelling", do: patch(ldap, ns, `{"metadata":{"annotations":{"kubehpc.io/user":"OWN"}}}`), want: "forbidden"},
		{name: "admin removes the managed label", do: patch(admin, ns, `{"metadata":{"labels":{"app.kubernetes.io/managed-by":null}}}`), want: "cannot be removed or changed"},
		{name: "admin sets an owner on an ownerless namespace", do: patch(admin, ownerless, `{"metadata":{"annotations":{"kubehpc.io/user":"mallory"}}}`), want: "kubehpc.io/user"},
		{name: "ldap-configmap sets an owner on an ownerless namespace", do: patch(ldap, ownerless, `{"metadata":{"annotations":{"kubehpc.io/user":"mallory"}}}`), want: "forbidden"},
		{name: "admin labels a namespace managed", do: patch(admin, hook, `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"namespace-bootstrap"}}}`), want: only + " labels a namespace"},
		{name: "admin creates a namespace with an owner", do: func() error {
			_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("user-pre-%d", seq.Add(1)),
				Annotations: map[string]string{"kubehpc.io/user": "mallory"}}}, metav1.CreateOptions{})
			return err
		}, want: "kubehpc.io/user"},
		{name: "admin changes the owner through the status subresource", do: func() error {
			_, err := admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(`{"metadata":{"annotations":{"kubehpc.io/user":"eve"}}}`), metav1.PatchOptions{}, "status")
			return err
		}, want: "kubehpc.io/user"},
		{name: "namespace-bootstrap's token changes the owner through the status subresource", do: func() error {
			_, err := bootstrap.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(`{"metadata":{"annotations":{"kubehpc.io/user":"eve"}}}`), metav1.PatchOptions{}, "status")
			return err
		}, want: "forbidden"},
		{name: "admin changes the owner through the finalize subresource", do: func() error {
			cur, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Annotations["kubehpc.io/user"] = "eve2"
			_, err = admin.CoreV1().Namespaces().Finalize(ctx, cur, metav1.UpdateOptions{})
			return err
			// The ownership policy or rule 9 (namespace-identity, which also
			// covers namespaces/finalize), whichever the API server reports.
		}, want: "kubehpc.io/user"},
		{name: "admin annotates something else", do: patch(admin, ns, `{"metadata":{"annotations":{"example.org/note":"x"}}}`), allowed: true},
		{name: "namespace-bootstrap adopts Open OnDemand's namespace", do: patch(bootstrap, hook, `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"namespace-bootstrap"},"annotations":{"kubehpc.io/user":"`+strings.TrimPrefix(hook, "user-")+`"}}}`), allowed: true},
	})
}

// TestGuardNamespaceReaper is issue 11's hole 6 for namespace-reaper: its
// token may delete only idle user namespaces, and change nothing on a
// namespace but its activity annotation (so it cannot switch a namespace's
// pod policies off by relabelling it).
func TestGuardNamespaceReaper(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	c := saClient(t, "namespace-reaper")
	mk := func(name string, labels map[string]string) string {
		t.Helper()
		if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
		return name
	}
	ood := map[string]string{"app.kubernetes.io/name": "open-ondemand"}
	prod := mk(fmt.Sprintf("prod-db-%d", seq.Add(1)), ood)
	unlabelled := mk(fmt.Sprintf("user-plain-%d", seq.Add(1)), nil)
	idle := mk(fmt.Sprintf("user-idle-%d", seq.Add(1)), ood)
	active := mk(fmt.Sprintf("user-active-%d", seq.Add(1)), ood)
	del := func(name string) func() error {
		return func() error { return c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) }
	}
	patch := func(name, p string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(p), metav1.PatchOptions{})
			return err
		}
	}
	const guard = "namespace-reaper guard: "
	runAttempts(t, "namespace-reaper", []attempt{
		{name: "delete kube-system", do: del("kube-system"), want: "forbidden"},
		{name: "delete the release namespace", do: del(releaseNamespace), want: guard + "namespace-reaper deletes only user namespaces"},
		{name: "delete " + prod, do: del(prod), want: guard},
		{name: "delete an unlabelled user-named namespace", do: del(unlabelled), want: guard},
		{name: "remove the policies' label", do: patch(active, `{"metadata":{"labels":{"app.kubernetes.io/name":null}}}`), want: guard + "namespace-reaper may change only the kubehpc.io/last-activity annotation"},
		{name: "label kube-system for the policies", do: patch("kube-system", `{"metadata":{"labels":{"app.kubernetes.io/name":"x"}}}`), want: guard},
		{name: "change the identity", do: patch(active, `{"metadata":{"annotations":{"kubehpc.io/uid":"0"}}}`), want: "forbidden"},
		{name: "annotate", do: patch(active, `{"metadata":{"annotations":{"example.org/x":"y"}}}`), want: guard + "namespace-reaper may change only"},
		{name: "give " + prod + " a missing owner (the garbage collector would delete it)", do: patch(prod, `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"ghost","uid":"6a4d4a4e-0000-4000-8000-000000000001"}]}}`), want: guard + "namespace-reaper updates only user namespaces"},
		{name: "give a user namespace a missing owner", do: patch(active, `{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"ghost","uid":"6a4d4a4e-0000-4000-8000-000000000001"}]}}`), want: guard + "namespace-reaper may change only"},
		{name: "block a user namespace's deletion", do: patch(active, `{"metadata":{"finalizers":["example.org/forever"]}}`), want: guard + "namespace-reaper may change only"},
		{name: "record activity", do: patch(active, `{"metadata":{"annotations":{"kubehpc.io/last-activity":"2026-12-01T00:00:00Z"}}}`), allowed: true},
		{name: "delete an idle user namespace", do: del(idle), allowed: true},
	})
	if _, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, prod, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Errorf("%s was deleted", prod)
	}
}

// TestGuardNamespaceBootstrapOwnerName: namespace-bootstrap's token cannot
// squat a namespace named for one user on behalf of another (which the
// ood-user RoleBinding rule would then open to that other user, running as
// the first one's identity): the owner annotation it writes on create or on
// adoption names the user the namespace is named for (pkg/naming), and a
// namespace it creates has one.
func TestGuardNamespaceBootstrapOwnerName(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	c := saClient(t, "namespace-bootstrap")
	n := seq.Add(1)
	carol := fmt.Sprintf("user-carol%d", n)
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: carol,
		Labels: map[string]string{"app.kubernetes.io/name": "open-ondemand"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, carol, metav1.DeleteOptions{}) })
	create := func(name, owner string) func() error {
		return func() error {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "namespace-bootstrap"}}}
			if owner != "" {
				ns.Annotations = map[string]string{"kubehpc.io/user": owner}
			}
			_, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			if err == nil {
				t.Cleanup(func() { _ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}) })
			}
			return err
		}
	}
	adopt := func(name, owner string) func() error {
		return func() error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType,
				[]byte(fmt.Sprintf(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"namespace-bootstrap"},"annotations":{"kubehpc.io/user":%q}}}`, owner)), metav1.PatchOptions{})
			return err
		}
	}
	const want = "namespace-bootstrap guard: the owner (kubehpc.io/user) of a Namespace namespace-bootstrap writes is the user it is named for"
	runAttempts(t, "namespace-bootstrap", []attempt{
		{name: "create user-bob owned by alice", do: create(fmt.Sprintf("user-bob%d", n), fmt.Sprintf("alice%d", n)), want: want},
		{name: "create a namespace owned by a user whose name only starts like it", do: create(fmt.Sprintf("user-bob%d-x", n), fmt.Sprintf("bob%d", n)), want: want},
		{name: "create a user namespace without an owner", do: create(fmt.Sprintf("user-nobody%d", n), ""), want: want},
		{name: "adopt carol's Open OnDemand namespace for alice", do: adopt(carol, fmt.Sprintf("alice%d", n)), want: want},
		{name: "create user-dave owned by dave", do: create(fmt.Sprintf("user-dave%d", n), fmt.Sprintf("dave%d", n)), allowed: true},
		{name: "create user-john-smith owned by John.Smith", do: create(fmt.Sprintf("user-john-smith%d", n), fmt.Sprintf("John.Smith%d", n)), allowed: true},
		{name: "create user-erin-example-org owned by erin@example.org", do: create(fmt.Sprintf("user-erin%d-example-org", n), fmt.Sprintf("erin%d@example.org", n)), allowed: true},
		{name: "adopt carol's Open OnDemand namespace for carol", do: adopt(carol, fmt.Sprintf("Carol%d", n)), allowed: true},
	})
}

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// access is one API call a tool does (allowed) or must not be able to do.
type access struct {
	verb, group, resource, subresource, namespace, name string
	allowed                                             bool
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.subresource != "" {
		s += "/" + a.subresource
	}
	if a.group != "" {
		s += "." + a.group
	}
	if a.namespace != "" {
		s += " in " + a.namespace
	}
	if a.name != "" {
		s += " named " + a.name
	}
	return s
}

// checkAccess asks the API server, as the client's identity, whether each
// call is allowed (SelfSubjectAccessReview: the authorizer's real answer).
func checkAccess(t *testing.T, c kubernetes.Interface, who string, table []access) {
	t.Helper()
	for _, a := range table {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
		}}}
		res, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview as %s: %v", who, err)
		}
		if res.Status.Allowed != a.allowed {
			t.Errorf("%s may %s: %v, want %v", who, a, res.Status.Allowed, a.allowed)
		}
	}
}

// TestRBACLdapConfigMap: ldap-configmap may read and apply only its enabled
// maps in its namespace, and list, watch and patch namespaces (annotations).
func TestRBACLdapConfigMap(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "ldap-configmap")
	ns := releaseNamespace
	other := newUser(t, "lc", "10001", "10001", []string{"10001"}, []string{"lc"}).Namespace
	checkAccess(t, c, "ldap-configmap", []access{
		{verb: "get", resource: "configmaps", namespace: ns, name: "user-uid-map", allowed: true},
		{verb: "patch", resource: "configmaps", namespace: ns, name: "user-gids-map", allowed: true},
		{verb: "create", resource: "configmaps", namespace: ns, name: "user-groups-map", allowed: true},
		{verb: "list", resource: "namespaces", allowed: true},
		{verb: "watch", resource: "namespaces", allowed: true},
		{verb: "patch", resource: "namespaces", name: other, allowed: true},
		{verb: "create", resource: "events", namespace: ns, allowed: true},
		{verb: "create", resource: "events", namespace: "default", allowed: true},
		// Not needed:
		{verb: "patch", resource: "configmaps", namespace: ns, name: "kube-root-ca.crt", allowed: false},
		{verb: "get", resource: "configmaps", namespace: ns, name: "user-home-map", allowed: false},
		{verb: "delete", resource: "configmaps", namespace: ns, name: "user-uid-map", allowed: false},
		{verb: "list", resource: "configmaps", namespace: ns, allowed: false},
		{verb: "create", resource: "configmaps", namespace: ns, name: "other", allowed: false},
		{verb: "create", resource: "events", namespace: other, allowed: false},
		{verb: "create", resource: "configmaps", namespace: other, allowed: false},
		{verb: "get", resource: "secrets", namespace: ns, allowed: false},
		{verb: "create", resource: "namespaces", allowed: false},
		{verb: "delete", resource: "namespaces", name: other, allowed: false},
		{verb: "update", resource: "namespaces", name: other, allowed: false},
		{verb: "create", resource: "pods", namespace: other, allowed: false},
	})
	ctx := context.Background()
	// Real calls: server-side apply of a map (creating it), and of its
	// identity annotations on a user namespace.
	cm := corev1ac.ConfigMap("user-uid-map", ns).WithData(map[string]string{other: "10001"})
	if _, err := c.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: "ldap-configmap"}); err != nil {
		t.Errorf("apply ConfigMap user-uid-map as ldap-configmap: %v", err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Apply(ctx, corev1ac.ConfigMap("user-uid-map", ns).WithData(map[string]string{other: "10001", "user-x": "1"}),
		metav1.ApplyOptions{FieldManager: "ldap-configmap"}); err != nil {
		t.Errorf("re-apply ConfigMap user-uid-map as ldap-configmap: %v", err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Apply(ctx, corev1ac.ConfigMap("not-a-map", ns), metav1.ApplyOptions{FieldManager: "ldap-configmap"}); !apierrors.IsForbidden(err) {
		t.Errorf("apply ConfigMap not-a-map as ldap-configmap: err = %v, want Forbidden", err)
	}
	nsApply := corev1ac.Namespace(other).WithAnnotations(map[string]string{"kubehpc.io/uid": "10001", "kubehpc.io/gid": "10001"})
	if _, err := c.CoreV1().Namespaces().Apply(ctx, nsApply, metav1.ApplyOptions{FieldManager: "ldap-configmap"}); err != nil {
		t.Errorf("apply identity annotations on %s as ldap-configmap: %v", other, err)
	}
	if _, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=open-ondemand"}); err != nil {
		t.Errorf("list namespaces as ldap-configmap: %v", err)
	}
}

// TestRBACJobPodReaper: job-pod-reaper (cluster scope) may watch and delete
// pods and their job's Services and ConfigMaps, delete a job's Secrets with
// a DELETE collection (never read them), record Events and hold its Lease;
// nothing else.
func TestRBACJobPodReaper(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "job-pod-reaper")
	u := newUser(t, "jr", "10001", "10001", []string{"10001"}, []string{"jr"}).Namespace
	var table []access
	for _, r := range []string{"pods", "services", "configmaps", "secrets"} {
		for _, v := range []string{"list", "watch", "delete"} {
			// Secrets: no read at all, only deletecollection (guard_job_pod_reaper_test.go).
			table = append(table, access{verb: v, resource: r, allowed: r != "secrets"}, access{verb: v, resource: r, namespace: u, allowed: r != "secrets"})
		}
		for _, v := range []string{"create", "update", "patch"} {
			table = append(table, access{verb: v, resource: r, namespace: u, allowed: false})
		}
	}
	table = append(table, access{verb: "deletecollection", resource: "secrets", namespace: u, allowed: true},
		access{verb: "deletecollection", resource: "pods", namespace: u, allowed: false})
	table = append(table,
		// User namespaces are known by name: no need to read namespaces.
		access{verb: "list", resource: "namespaces", allowed: false},
		access{verb: "watch", resource: "namespaces", allowed: false},
		access{verb: "create", resource: "events", namespace: u, allowed: true},
		access{verb: "patch", resource: "events", namespace: u, allowed: true},
		access{verb: "list", resource: "events", namespace: u, allowed: true},
		access{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace, allowed: true},
		access{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace, name: "job-pod-reaper", allowed: true},
		access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace, name: "job-pod-reaper", allowed: true},
		// Not needed:
		access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace, name: "ldap-configmap", allowed: false},
		access{verb: "get", resource: "secrets", namespace: u, name: "x", allowed: false},
		access{verb: "delete", resource: "namespaces", name: u, allowed: false},
		access{verb: "patch", resource: "namespaces", name: u, allowed: false},
		access{verb: "delete", resource: "persistentvolumeclaims", namespace: u, allowed: false},
		access{verb: "delete", group: "apps", resource: "deployments", namespace: u, allowed: false},
		access{verb: "create", resource: "pods", subresource: "exec", namespace: u, allowed: false},
	)
	checkAccess(t, c, "job-pod-reaper", table)
	ctx := context.Background()
	if _, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=open-ondemand"}); err != nil {
		t.Errorf("list pods cluster-wide as job-pod-reaper: %v", err)
	}
	if err := c.CoreV1().Pods(u).Delete(ctx, "gone", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("delete a missing pod as job-pod-reaper: err = %v, want NotFound (allowed)", err)
	}
}

// TestRBACNamespaceReaper: namespace-reaper may watch, annotate and delete
// namespaces, watch pods and list PersistentVolumeClaims; nothing else.
func TestRBACNamespaceReaper(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "namespace-reaper")
	u := newUser(t, "nr", "10001", "10001", []string{"10001"}, []string{"nr"}).Namespace
	checkAccess(t, c, "namespace-reaper", []access{
		{verb: "list", resource: "namespaces", allowed: true},
		{verb: "watch", resource: "namespaces", allowed: true},
		{verb: "get", resource: "namespaces", name: u, allowed: true},
		{verb: "patch", resource: "namespaces", name: u, allowed: true},
		{verb: "delete", resource: "namespaces", name: u, allowed: true},
		{verb: "list", resource: "pods", allowed: true},
		{verb: "watch", resource: "pods", allowed: true},
		{verb: "list", resource: "persistentvolumeclaims", allowed: true},
		{verb: "create", resource: "events", namespace: "default", allowed: true},
		// Not needed:
		{verb: "create", resource: "events", namespace: u, allowed: false},
		{verb: "create", resource: "namespaces", allowed: false},
		{verb: "delete", resource: "pods", namespace: u, allowed: false},
		{verb: "list", resource: "secrets", allowed: false},
		{verb: "delete", resource: "persistentvolumeclaims", namespace: u, allowed: false},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: u, allowed: false},
	})
	if _, err := c.CoreV1().Namespaces().Patch(context.Background(), u, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"kubehpc.io/last-activity":"2026-01-01T00:00:00Z"}}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("record last activity on %s as namespace-reaper: %v", u, err)
	}
}

// TestRBACNamespaceBootstrap: namespace-bootstrap may create namespaces and
// their objects, and bind only the listed ClusterRoles: binding cluster-admin
// (which it does not hold) is refused by the API server's escalation check.
func TestRBACNamespaceBootstrap(t *testing.T) {
	installUmbrella(t)
	c := saClient(t, "namespace-bootstrap")
	ctx := context.Background()
	ns := fmt.Sprintf("user-nb-%d", seq.Add(1))
	createUserNamespace(t, ns, map[string]string{"app.kubernetes.io/name": "open-ondemand"}, nil)
	checkAccess(t, c, "namespace-bootstrap", []access{
		{verb: "create", resource: "namespaces", allowed: true},
		{verb: "patch", resource: "namespaces", name: ns, allowed: true},
		{verb: "list", resource: "namespaces", allowed: true},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: ns, allowed: true},
		{verb: "patch", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: ns, allowed: true},
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: "ood-user", allowed: true},
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: "ood-initializer", allowed: true},
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: "job-pod-reaper", allowed: true},
		{verb: "create", group: "networking.k8s.io", resource: "networkpolicies", namespace: ns, allowed: true},
		{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
		// Not needed:
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: "cluster-admin", allowed: false},
		{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles", allowed: false},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", allowed: false},
		{verb: "delete", resource: "namespaces", name: ns, allowed: false},
		{verb: "create", resource: "pods", namespace: ns, allowed: false},
		{verb: "get", resource: "secrets", namespace: ns, name: "x", allowed: false},
		{verb: "create", resource: "resourcequotas", namespace: ns, allowed: true},
		// ServiceAccounts only with an image pull secret (the default one gets it).
		{verb: "patch", resource: "serviceaccounts", namespace: ns, allowed: false},
		{verb: "create", resource: "secrets", namespace: ns, allowed: false},
	})
	bind := func(name, role string) error {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: strings.TrimPrefix(ns, "user-")}},
		}
		_, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
		return err
	}
	if err := bind("nb-ood-user", "ood-user"); err != nil {
		t.Errorf("bind ood-user as namespace-bootstrap: %v", err)
	}
	if err := bind("nb-admin", "cluster-admin"); !apierrors.IsForbidden(err) {
		t.Errorf("bind cluster-admin as namespace-bootstrap: err = %v, want Forbidden", err)
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-from-other-namespaces"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := c.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Errorf("create NetworkPolicy as namespace-bootstrap: %v", err)
	}
}

// TestUserRoleGrantsNoNamespaceVerbs proves the second half of rule 9: the
// ClusterRole the chart binds to each user in their namespace grants nothing
// on the Namespace object itself (a RoleBinding in user-x granting namespace
// verbs would apply to user-x), so users cannot edit their identity.
func TestUserRoleGrantsNoNamespaceVerbs(t *testing.T) {
	installUmbrella(t)
	u := newUser(t, "frank", "10006", "10006", []string{"10006"}, []string{"frank"})
	var table []access
	for _, v := range []string{"get", "update", "patch", "delete"} {
		table = append(table, access{verb: v, resource: "namespaces", name: u.Namespace, allowed: false})
	}
	table = append(table, access{verb: "create", resource: "pods", namespace: u.Namespace, allowed: true},
		access{verb: "create", resource: "pods", namespace: releaseNamespace, allowed: false})
	checkAccess(t, u.Client, "user frank", table)
	_, err := u.Client.CoreV1().Namespaces().Patch(context.Background(), u.Namespace, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"kubehpc.io/uid":"0"}}}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("patch own namespace's uid as the user: err = %v, want Forbidden", err)
	}
	role, err := env.Kube.Client.RbacV1().ClusterRoles().Get(context.Background(), "ood-user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			if res == "namespaces" || res == "*" {
				t.Errorf("ClusterRole ood-user grants %v on %s", r.Verbs, res)
			}
		}
	}
}

// TestNamespaceIdentityGuard proves rule 9 on the real API server: only
// ldap-configmap's and namespace-bootstrap's service accounts may set or
// change the identity annotations of a namespace; not the cluster admin, not
// another tool that may patch namespaces; other annotations stay free.
func TestNamespaceIdentityGuard(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "grace", "10007", "10007", []string{"10007"}, []string{"grace"})
	patch := func(c kubernetes.Interface, body string) error {
		_, err := c.CoreV1().Namespaces().Patch(ctx, u.Namespace, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	}
	want := "only ldap-configmap and namespace-bootstrap may set or change the identity annotations of namespace " + u.Namespace
	cases := []struct {
		name, who, body string
		// sub is the subresource: status (a merge patch) or finalize (a PUT).
		sub     string
		c       kubernetes.Interface
		allowed bool
		want    string
	}{
		{name: "admin changes the uid", c: env.Kube.Client, body: `{"metadata":{"annotations":{"kubehpc.io/uid":"0"}}}`, want: want + "; admin changed: kubehpc.io/uid"},
		{name: "admin removes the gids", c: env.Kube.Client, body: `{"metadata":{"annotations":{"kubehpc.io/gids":null}}}`, want: "changed: kubehpc.io/gids"},
		{name: "admin adds a group", c: env.Kube.Client, body: `{"metadata":{"annotations":{"kubehpc.io/groups":",grace,pzs0001,"}}}`, want: "changed: kubehpc.io/groups"},
		{name: "namespace-reaper changes the home", c: saClient(t, "namespace-reaper"), body: `{"metadata":{"annotations":{"kubehpc.io/home":"/"}}}`, want: "namespace-reaper"}, // rule 9 or the reaper's own guard, whichever the API server reports
		{name: "admin changes the uid through namespaces/status", c: env.Kube.Client, sub: "status", body: `{"metadata":{"annotations":{"kubehpc.io/uid":"0"}}}`, want: want + "; admin changed: kubehpc.io/uid"},
		{name: "admin changes the home through namespaces/finalize", c: env.Kube.Client, sub: "finalize", body: `{"metadata":{"annotations":{"kubehpc.io/home":"/etc"}}}`, want: want + "; admin changed: kubehpc.io/home"},
		{name: "admin changes another annotation", c: env.Kube.Client, body: `{"metadata":{"annotations":{"openondemand.org/last-hook-execution":"1700000000"}}}`, allowed: true},
		{name: "ldap-configmap changes the groups", c: saClient(t, "ldap-configmap"), body: `{"metadata":{"annotations":{"kubehpc.io/groups":",grace,pzs0003,"}}}`, allowed: true},
		{name: "namespace-bootstrap changes the gids", c: saClient(t, "namespace-bootstrap"), body: `{"metadata":{"annotations":{"kubehpc.io/gids":",10007,20003,"}}}`, allowed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch tc.sub {
			case "":
				err = patch(tc.c, tc.body)
			case "status":
				_, err = tc.c.CoreV1().Namespaces().Patch(ctx, u.Namespace, types.MergePatchType, []byte(tc.body), metav1.PatchOptions{}, "status")
			case "finalize":
				var ns *corev1.Namespace
				if ns, err = tc.c.CoreV1().Namespaces().Get(ctx, u.Namespace, metav1.GetOptions{}); err == nil {
					if err = json.Unmarshal([]byte(tc.body), ns); err == nil {
						_, err = tc.c.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
					}
				}
			}
			if tc.allowed && err != nil {
				t.Errorf("patch %s: %v", tc.body, err)
			}
			if !tc.allowed && !isDenied(err, tc.want) {
				t.Errorf("patch %s: err = %v, want a denial containing %q", tc.body, err, tc.want)
			}
		})
	}
	t.Run("admin creates a namespace with an identity", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("user-forged-%d", seq.Add(1)),
			Annotations: map[string]string{"kubehpc.io/uid": "10001"}}}
		_, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if !isDenied(err, "changed: kubehpc.io/uid") {
			t.Errorf("create a namespace with kubehpc.io/uid as admin: err = %v, want a denial", err)
		}
	})
}

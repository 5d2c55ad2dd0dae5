package tests

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehpc/kubehpc/ldap-configmap/mapsync"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The ldap-configmap guard's messages start with this.
const ldapGuard = "ldap-configmap guard: "

// nsPatch merge-patches a namespace's metadata as c.
func nsPatch(c kubernetes.Interface, name, metadata string) error {
	_, err := c.CoreV1().Namespaces().Patch(context.Background(), name, types.MergePatchType,
		[]byte(`{"metadata":`+metadata+`}`), metav1.PatchOptions{FieldManager: "ldap-configmap"})
	return err
}

// widenRBAC grants the ServiceAccount far more than the chart does (as a
// mistaken extra binding would), so that what it then attempts reaches the
// guard, and waits until the authorizer sees the grant.
func widenRBAC(t *testing.T, sa string) {
	t.Helper()
	env.ServiceAccount(t, releaseNamespace, sa, testenv.Grant{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps", "namespaces", "secrets"}, Verbs: []string{"*"}}}})
}

// TestGuardLdapConfigMap proves the chart's ldap-configmap guard on the API
// server, acting as the ServiceAccount exactly as the chart installs it
// (issue 11 hole 6 and "ownership"): a stolen token can neither switch the
// pod policies off for a namespace (remove app.kubernetes.io/name, label
// kube-system), nor take a namespace over (change kubehpc.io/user), nor
// annotate a namespace that is not a user's; and with RBAC widened by
// mistake it still cannot write another ConfigMap, a ConfigMap in
// kube-system, or create or delete namespaces. A real sync as that
// ServiceAccount still succeeds, and leaves the owner and labels alone.
func TestGuardLdapConfigMap(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	sa := saClient(t, "ldap-configmap")
	// The API server type-checks the policy in the background: no warning.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		vap, err := env.Kube.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "ldap-configmap-guard", metav1.GetOptions{})
		if err != nil || vap.Status.TypeChecking == nil {
			return false, nil
		}
		for _, w := range vap.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("ldap-configmap-guard: type-checking warning at %s: %s", w.FieldRef, w.Warning)
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("ldap-configmap-guard: no type-checking result: %v", err)
	}
	u := newUser(t, "gd", "10001", "10001", []string{"10001"}, []string{"gd"})

	attacks := []struct {
		name string
		do   func() error
		want string
	}{
		{"remove app.kubernetes.io/name from a user namespace", func() error {
			return nsPatch(sa, u.Namespace, `{"labels":{"app.kubernetes.io/name":null}}`)
		}, "may not change the labels of namespace " + u.Namespace},
		{"label kube-system for the policies", func() error {
			return nsPatch(sa, "kube-system", `{"labels":{"app.kubernetes.io/name":"open-ondemand"}}`)
		}, "kube-system"},
		{"change the owner annotation", func() error {
			return nsPatch(sa, u.Namespace, `{"annotations":{"kubehpc.io/user":"mallory"}}`)
		}, "may change only the annotations kubehpc.io/uid, kubehpc.io/gid, kubehpc.io/gids, kubehpc.io/groups, kubehpc.io/home of namespace " + u.Namespace + ", not kubehpc.io/user"},
		{"remove the owner annotation", func() error {
			return nsPatch(sa, u.Namespace, `{"annotations":{"kubehpc.io/user":null}}`)
		}, "not kubehpc.io/user"},
		{"add another annotation", func() error {
			return nsPatch(sa, u.Namespace, `{"annotations":{"scheduler.alpha.kubernetes.io/node-selector":"evil=true"}}`)
		}, "not scheduler.alpha.kubernetes.io/node-selector"},
		{"annotate a namespace that is not a user's", func() error {
			return nsPatch(sa, releaseNamespace, `{"annotations":{"kubehpc.io/uid":"0"}}`)
		}, "may annotate only namespaces named user-*, not " + releaseNamespace},
		{"add a finalizer", func() error {
			return nsPatch(sa, u.Namespace, `{"finalizers":["example.org/block"]}`)
		}, "may not change the spec, finalizers or owner references of namespace " + u.Namespace},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			err := a.do()
			// The owner annotation is also guarded by namespace-bootstrap's
			// ownership policy: either denial may be the one reported.
			if strings.Contains(a.name, "owner annotation") && isDenied(err, "namespace ownership: the owner of namespace "+u.Namespace) {
				return
			}
			if !isDenied(err, ldapGuard) || !isDenied(err, a.want) {
				t.Errorf("err = %v, want a denial containing %q and %q", err, ldapGuard, a.want)
			}
		})
	}

	// The second wall: RBAC widened by mistake.
	widenRBAC(t, "ldap-configmap")
	if _, err := env.Kube.Client.CoreV1().ConfigMaps(releaseNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-uid-map"}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cm := func(ns, name string) error {
		_, err := sa.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}
	wide := []struct {
		name string
		do   func() error
		want string
	}{
		{"write a ConfigMap with another name", func() error { return cm(releaseNamespace, "kube-root-ca-evil") },
			"may create and update only the ConfigMaps user-uid-map, user-gid-map, user-gids-map, user-groups-map in namespace kubehpc, not CREATE configmaps kube-root-ca-evil in namespace kubehpc"},
		{"write a ConfigMap in kube-system", func() error { return cm("kube-system", "user-uid-map") },
			"not CREATE configmaps user-uid-map in namespace kube-system"},
		{"delete its own ConfigMap", func() error {
			return sa.CoreV1().ConfigMaps(releaseNamespace).Delete(ctx, "user-uid-map", metav1.DeleteOptions{})
		}, "not DELETE configmaps user-uid-map"},
		{"create a namespace", func() error {
			_, err := sa.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "user-gd-evil"}}, metav1.CreateOptions{})
			return err
		}, "may only update existing namespaces' identity annotations, not CREATE namespaces user-gd-evil"},
		{"delete a user namespace", func() error { return sa.CoreV1().Namespaces().Delete(ctx, u.Namespace, metav1.DeleteOptions{}) },
			"not DELETE namespaces " + u.Namespace},
		{"create a Secret", func() error {
			_, err := sa.CoreV1().Secrets(u.Namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}, "not CREATE secrets x in namespace " + u.Namespace},
	}
	for _, a := range wide {
		t.Run(a.name, func(t *testing.T) {
			err := a.do()
			// The owner annotation is also guarded by namespace-bootstrap's
			// ownership policy: either denial may be the one reported.
			if strings.Contains(a.name, "owner annotation") && isDenied(err, "namespace ownership: the owner of namespace "+u.Namespace) {
				return
			}
			if !isDenied(err, ldapGuard) || !isDenied(err, a.want) {
				t.Errorf("err = %v, want a denial containing %q and %q", err, ldapGuard, a.want)
			}
		})
	}

	t.Run("a real sync as the ServiceAccount", func(t *testing.T) { guardedSync(t, sa) })
}

// guardedSync runs one real ldap-configmap pass against a fresh slapd as the
// chart's ServiceAccount, with the chart's mappers and namespace, on user
// namespaces made by namespace-bootstrap: it must succeed, annotate, remove
// the identity of a user gone from LDAP, and keep owners and labels.
func guardedSync(t *testing.T, sa kubernetes.Interface) {
	ctx := context.Background()
	s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	lbl := map[string]string{"app.kubernetes.io/name": "open-ondemand"}
	n := seq.Add(1)
	prefix := fmt.Sprintf("user-gd%d-", n)
	// Owned by the users they are named for (gdN-alice, gdN-zed): the
	// directory's users are found by the name after the prefix.
	createUserNamespace(t, prefix+"alice", lbl, nil)
	createUserNamespace(t, prefix+"zed", lbl, map[string]string{"kubehpc.io/uid": "999", "kubehpc.io/gid": "999"})
	c := mapsync.NewConfig()
	c.URL, c.BindDN, c.BindPassword = s.URL, s.BindDN, s.Password
	c.UserBaseDN, c.GroupBaseDN = "ou=people,"+s.Suffix, "ou=groups,"+s.Suffix
	c.Scheme = ldapdir.SchemeMemberUID
	c.Mappers = []string{"user-uid", "user-gid", "user-gids", "user-groups"}
	c.Namespace = releaseNamespace
	c.UserPrefix = prefix
	c.NamespaceAnnotations = true
	c.AllowLargeDrop = true // other tests' maps in the release namespace
	c.PodNamespace, c.PodName = releaseNamespace, "ldap-configmap-guard-test"
	c.Out = &bytes.Buffer{}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := mapsync.New(c, mapsync.Deps{Client: sa, Log: zaptest.NewLogger(t), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce() as the ServiceAccount = %v, want success", err)
	}
	for name, want := range map[string]map[string]string{
		prefix + "alice": {"kubehpc.io/user": fmt.Sprintf("gd%d-alice", n), "kubehpc.io/uid": "10001", "kubehpc.io/gids": ",10001,20001,20100,"},
		prefix + "zed":   {"kubehpc.io/user": fmt.Sprintf("gd%d-zed", n), "kubehpc.io/uid": "", "kubehpc.io/gid": ""},
	} {
		ns, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if ns.Annotations[k] != v {
				t.Errorf("namespace %s annotation %s = %q, want %q", name, k, ns.Annotations[k], v)
			}
		}
		if ns.Labels["app.kubernetes.io/name"] != "open-ondemand" {
			t.Errorf("namespace %s labels = %v, want the open-ondemand label kept", name, ns.Labels)
		}
	}
	m, err := env.Kube.Client.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, "user-uid-map", metav1.GetOptions{})
	if err != nil || m.Data[prefix+"alice"] != "10001" {
		t.Errorf("user-uid-map = %v (err %v), want %salice: 10001", m.Data, err, prefix)
	}
}

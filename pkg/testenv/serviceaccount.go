package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Grant is a set of RBAC rules given to a ServiceAccount: cluster-wide (a
// ClusterRole and a ClusterRoleBinding) when Namespaces is empty, otherwise in
// each of Namespaces only (the ClusterRole bound by a RoleBinding in each, as
// a chart binds a tool's role in the namespaces it may act in).
type Grant struct {
	Rules      []rbacv1.PolicyRule
	Namespaces []string
}

// ServiceAccount is an identity acting with exactly the rules it was granted.
type ServiceAccount struct {
	Namespace, Name string
	// Config authenticates as the ServiceAccount (by impersonation: the
	// user name and groups its token would carry).
	Config *rest.Config
	Client kubernetes.Interface
}

// ServiceAccount returns the ServiceAccount namespace/name holding grants,
// and waits until the API server's authorizer applies them (RBAC sees a new
// binding a moment later). Nothing else is granted: a test acting through it
// proves a tool needs no more than these rules, and that what they omit is
// Forbidden. Calling it again for the same account adds grants. The roles and
// bindings are deleted when the test ends; the ServiceAccount object itself
// is not created (authorisation needs only its name).
func (e *Env) ServiceAccount(t testing.TB, namespace, name string, grants ...Grant) *ServiceAccount {
	t.Helper()
	ctx := context.Background()
	rbac := e.Kube.Client.RbacV1()
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}}
	for _, g := range grants {
		role := e.UniqueName("testenv-" + name + "-")
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: g.Rules}
		if _, err := rbac.ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRole %s for ServiceAccount %s/%s: %v", role, namespace, name, err)
		}
		t.Cleanup(func() {
			deleteLogged(t, "ClusterRole "+role, rbac.ClusterRoles().Delete(ctx, role, metav1.DeleteOptions{}))
		})
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}
		if len(g.Namespaces) == 0 {
			crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role}, RoleRef: ref, Subjects: subjects}
			if _, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
				t.Fatalf("bind ClusterRole %s to ServiceAccount %s/%s: %v", role, namespace, name, err)
			}
			t.Cleanup(func() {
				deleteLogged(t, "ClusterRoleBinding "+role, rbac.ClusterRoleBindings().Delete(ctx, role, metav1.DeleteOptions{}))
			})
		}
		for _, ns := range g.Namespaces {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role}, RoleRef: ref, Subjects: subjects}
			if _, err := rbac.RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatalf("bind ClusterRole %s to ServiceAccount %s/%s in %s: %v", role, namespace, name, ns, err)
			}
			t.Cleanup(func() {
				deleteLogged(t, "RoleBinding "+ns+"/"+role, rbac.RoleBindings(ns).Delete(ctx, role, metav1.DeleteOptions{}))
			})
		}
	}
	user := "system:serviceaccount:" + namespace + ":" + name
	for _, g := range grants {
		scopes := g.Namespaces
		if len(scopes) == 0 {
			scopes = []string{""}
		}
		for _, ns := range scopes {
			for _, r := range g.Rules {
				review := accessReview(user, ServiceAccountGroups(namespace), ns, r)
				EventuallyWithin(t, 30*time.Second, fmt.Sprintf("the authorizer to let %s %s", user, describeReview(review)), func() (bool, error) {
					res, err := e.Kube.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
					if err != nil {
						return false, fmt.Errorf("SubjectAccessReview: %w", err)
					}
					return res.Status.Allowed, nil
				})
			}
		}
	}
	cfg := e.Kube.ServiceAccountConfig(namespace, name)
	client, err := ClientFor(cfg)
	if err != nil {
		t.Fatalf("client for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return &ServiceAccount{Namespace: namespace, Name: name, Config: cfg, Client: client}
}

// accessReview asks whether user may do the first verb of rule on its first
// resource (and first name) in namespace: one request the rule allows.
func accessReview(user string, groups []string, namespace string, r rbacv1.PolicyRule) *authv1.SubjectAccessReview {
	spec := authv1.SubjectAccessReviewSpec{User: user, Groups: groups}
	verb := first(r.Verbs)
	if len(r.NonResourceURLs) > 0 {
		spec.NonResourceAttributes = &authv1.NonResourceAttributes{Path: r.NonResourceURLs[0], Verb: verb}
	} else {
		res, sub, _ := strings.Cut(first(r.Resources), "/")
		spec.ResourceAttributes = &authv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: first(r.APIGroups),
			Resource: res, Subresource: sub, Name: first(r.ResourceNames)}
	}
	return &authv1.SubjectAccessReview{Spec: spec}
}

func describeReview(r *authv1.SubjectAccessReview) string {
	if a := r.Spec.NonResourceAttributes; a != nil {
		return a.Verb + " " + a.Path
	}
	a := r.Spec.ResourceAttributes
	s := a.Verb + " " + a.Resource
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	if a.Group != "" {
		s += "." + a.Group
	}
	if a.Name != "" {
		s += " " + a.Name
	}
	if a.Namespace != "" {
		s += " in " + a.Namespace
	}
	return s
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// deleteLogged logs a failed clean-up deletion (NotFound is done).
func deleteLogged(t testing.TB, what string, err error) {
	if err != nil && !apierrors.IsNotFound(err) {
		t.Logf("delete %s: %v", what, err)
	}
}

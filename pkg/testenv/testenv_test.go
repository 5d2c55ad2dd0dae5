package testenv

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var env *Env

func TestMain(m *testing.M) {
	os.Exit(Main(m, Options{Kube: true, LDAP: true}, &env))
}

// TestRBACEnforced proves the control plane authorises with RBAC: a service
// account with no RoleBinding is Forbidden, and allowed once bound.
func TestRBACEnforced(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "rbac-", nil)
	sa, err := ClientFor(env.Kube.ServiceAccountConfig(ns, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	_, err = sa.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create ConfigMap as unbound service account: err = %v, want Forbidden", err)
	}
	role, rb := configMapWriter(ns, "nobody")
	if _, err := env.Kube.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ConfigMap after binding a Role that allows it: %v", err)
	}
	other := env.Namespace(t, "rbac-other-", nil)
	if _, err := sa.CoreV1().ConfigMaps(other).Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create ConfigMap in another namespace: err = %v, want Forbidden", err)
	}
}

// TestStaticToken proves a static token authenticates as its user.
func TestStaticToken(t *testing.T) {
	c, err := ClientFor(env.Kube.TokenConfig(env.Kube.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	if got := res.Status.UserInfo.Username; got != "admin" {
		t.Errorf("token user = %q, want admin", got)
	}
}

func TestLDAPSearch(t *testing.T) {
	pool := env.LDAP.CA.Pool()
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	dial := func(url string) (*ldap.Conn, error) {
		return ldap.DialURL(url, ldap.DialWithTLSConfig(tlsCfg))
	}
	tests := []struct {
		name     string
		url      string
		startTLS bool
	}{
		{name: "plain", url: env.LDAP.URL},
		{name: "StartTLS", url: env.LDAP.URL, startTLS: true},
		{name: "ldaps", url: env.LDAP.LDAPSURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := dial(tt.url)
			if err != nil {
				t.Fatalf("dial %s: %v", tt.url, err)
			}
			defer conn.Close()
			conn.SetTimeout(5 * time.Second)
			if tt.startTLS {
				if err := conn.StartTLS(tlsCfg); err != nil {
					t.Fatalf("StartTLS: %v", err)
				}
			}
			if _, ok := conn.TLSConnectionState(); ok != (tt.startTLS || tt.name == "ldaps") {
				t.Errorf("TLS state = %v, want %v", ok, tt.startTLS || tt.name == "ldaps")
			}
			res, err := conn.Search(ldap.NewSearchRequest("ou=people,"+env.LDAP.Suffix, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
				"(&(objectClass=posixAccount)(uid=john.smith))", []string{"uidNumber"}, nil))
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uidNumber") != "10003" {
				t.Errorf("search john.smith = %v, want uidNumber 10003", res.Entries)
			}
		})
	}
}

// TestLDAPWrongCA proves TLS is really verified.
func TestLDAPWrongCA(t *testing.T) {
	other, err := NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ldap.DialURL(env.LDAP.LDAPSURL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: other.Pool(), MinVersion: tls.VersionTLS12}))
	if err == nil {
		t.Fatal("ldaps with the wrong CA succeeded, want a certificate error")
	}
}

// TestLDAPSizeLimitForcesPaging proves the server behaves like Active
// Directory: an unpaged search over the size limit fails, a paged one passes.
func TestLDAPSizeLimitForcesPaging(t *testing.T) {
	ctx := context.Background()
	s, err := StartSlapd(ctx, SlapdOptions{Suffix: "dc=scale,dc=org", LDIF: GenerateDirectory("dc=scale,dc=org", 1200, 20, 3), SizeLimit: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := ldap.NewSearchRequest("ou=people,dc=scale,dc=org", ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=posixAccount)", []string{"uid"}, nil)
	if _, err := conn.Search(req); !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Errorf("unpaged search of 1200 users: err = %v, want Size Limit Exceeded", err)
	}
	res, err := conn.SearchWithPaging(req, 200)
	if err != nil {
		t.Fatalf("paged search: %v", err)
	}
	if len(res.Entries) != 1200 {
		t.Errorf("paged search returned %d users, want 1200", len(res.Entries))
	}
}

// configMapWriter is a Role that may create ConfigMaps, bound to sa.
func configMapWriter(ns, sa string) (*rbacv1.Role, *rbacv1.RoleBinding) {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cm-writer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}},
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cm-writer-" + sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	return role, rb
}

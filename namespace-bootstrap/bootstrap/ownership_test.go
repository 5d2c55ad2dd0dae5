package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// addLDAPUser adds a posixAccount (cn=<rdn>) with the given uid and removes
// it when the test ends.
func addLDAPUser(t *testing.T, rdn, uid string, number int) {
	t.Helper()
	dn := fmt.Sprintf("cn=%s,ou=people,%s", rdn, env.LDAP.Suffix)
	ldif := fmt.Sprintf("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: %s\nsn: Test\n"+
		"uidNumber: %d\ngidNumber: %d\nhomeDirectory: /home/%s\n", dn, uid, rdn, number, number, uid)
	if err := env.LDAP.Modify(context.Background(), ldif); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.LDAP.Modify(context.Background(), "dn: "+dn+"\nchangetype: delete\n"); err != nil {
			t.Logf("remove LDAP user %s: %v", dn, err)
		}
	})
}

// TestNameCollisionRefusesEveryone is issue 11's holes 2 and 3 at login:
// when a second directory entry maps to an existing user's namespace
// (kim-lee beside kim.lee, or Ola beside ola), every one of them is refused,
// the owner is not displaced, nothing is written, and administrators get a
// metric and a Warning Event.
func TestNameCollisionRefusesEveryone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t), nil)
	rec := record.NewFakeRecorder(100)
	f.b.Recorder = rec
	f.b.Self = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "kubehpc", Name: "namespace-bootstrap-0"}
	ns := f.cfg.NamespacePrefix + "kim-lee"
	cleanupNamespace(t, ns)
	addLDAPUser(t, "kim.lee", "kim.lee", 10201)
	if _, err := f.b.Bootstrap(ctx, "kim.lee"); err != nil {
		t.Fatalf("Bootstrap(kim.lee) before the collision = %v", err)
	}

	addLDAPUser(t, "kim-lee", "kim-lee", 10202)
	addLDAPUser(t, "ola", "ola", 10203)
	addLDAPUser(t, "Ola Upper", "Ola", 10204)
	for _, u := range []string{"kim-lee", "kim.lee", "Kim.Lee", "kim@lee", "ola", "Ola"} {
		f.counter.Reset()
		_, err := f.b.Bootstrap(ctx, u)
		if !errors.Is(err, ErrIdentityCollision) || !IsRefusal(err) {
			t.Errorf("Bootstrap(%s) = %v, want a refusal for the name collision", u, err)
		}
		if w := f.counter.Writes(); w != 0 {
			t.Errorf("refused Bootstrap(%s) made %d writes (%s), want none", u, w, f.counter)
		}
	}
	a := namespaceAnnotations(t, ns)
	if a[identity.UserAnnotation] != "kim.lee" || a[identity.UIDAnnotation] != "10201" {
		t.Errorf("namespace %s annotations = %v, want owner kim.lee and uid 10201 kept", ns, a)
	}
	rb, err := env.Kube.Client.RbacV1().RoleBindings(ns).Get(ctx, "kim-lee-ood-user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "kim.lee" {
		t.Errorf("RoleBinding subjects = %+v, want only kim.lee", rb.Subjects)
	}
	if got := testutil.ToFloat64(f.b.metrics.collisions); got != 6 {
		t.Errorf("identity_collisions_total = %v, want 6", got)
	}
	var warnings []string
	for len(rec.Events) > 0 {
		if e := <-rec.Events; strings.HasPrefix(e, "Warning IdentityCollision ") {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 6 || !strings.Contains(warnings[0], "kim-lee, kim.lee all map to namespace "+ns) {
		t.Errorf("Warning IdentityCollision Events = %q, want 6 naming both entries", warnings)
	}
	if _, err := f.b.Bootstrap(ctx, "alice"); err != nil {
		t.Errorf("Bootstrap(alice), no collision = %v", err)
	}
}

// TestOwnerIsExact is issue 11's hole 3: a login spelled differently from
// the owner is another user, refused, and the RoleBinding keeps naming the
// owner.
func TestOwnerIsExact(t *testing.T) {
	ctx := context.Background()
	c := newConfig(t)
	c.LDAP.URL = "" // LDAP would find "alice" for "ALICE": the owner check alone is under test
	f := newFixture(t, c, nil)
	ns := c.NamespacePrefix + "alice"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"Alice", "ALICE"} {
		f.counter.Reset()
		if _, err := f.b.Bootstrap(ctx, u); !errors.Is(err, ErrForeignNamespace) {
			t.Errorf("Bootstrap(%s) after alice = %v, want ErrForeignNamespace", u, err)
		}
		if w := f.counter.Writes(); w != 0 {
			t.Errorf("refused Bootstrap(%s) made %d writes", u, w)
		}
	}
	rb, err := env.Kube.Client.RbacV1().RoleBindings(ns).Get(ctx, "alice-ood-user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "alice" {
		t.Errorf("RoleBinding subjects = %+v, want only alice", rb.Subjects)
	}
	if err := f.b.Reconcile(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if a := namespaceAnnotations(t, ns); a[identity.UserAnnotation] != "alice" {
		t.Errorf("owner after reconcile = %q, want alice", a[identity.UserAnnotation])
	}
}

// TestAdoptionNeedsTheUsersRoleBinding is issue 11's hole 4: a namespace
// Open OnDemand's hook made (its label, a RoleBinding for its user, no owner
// annotation) is adopted by the user its RoleBindings name, and refused to
// anyone else whose name maps to it.
func TestAdoptionNeedsTheUsersRoleBinding(t *testing.T) {
	ctx := context.Background()
	c := newConfig(t)
	c.LDAP.URL = ""
	f := newFixture(t, c, nil)
	hookNamespace := func(user string, subjects ...rbacv1.Subject) string {
		t.Helper()
		ns := c.NamespacePrefix + strings.NewReplacer(".", "-", "@", "-").Replace(strings.ToLower(user))
		cleanupNamespace(t, ns)
		_, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range subjects {
			_, err := env.Kube.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hook-%d", i)},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ood-user"},
				Subjects:   []rbacv1.Subject{s},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		return ns
	}
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: n}
	}
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "default", Namespace: "x"}

	ns := hookNamespace("pat.kim", user("pat.kim"), sa)
	for _, u := range []string{"pat-kim", "pat@kim", "Pat.Kim"} {
		f.counter.Reset()
		_, err := f.b.Bootstrap(ctx, u)
		if !errors.Is(err, ErrForeignNamespace) || !strings.Contains(err.Error(), "kubectl -n "+ns+" create rolebinding") {
			t.Errorf("Bootstrap(%s) into pat.kim's hook namespace = %v, want refused with how to adopt", u, err)
		}
		if w := f.counter.Writes(); w != 0 {
			t.Errorf("refused Bootstrap(%s) made %d writes", u, w)
		}
	}
	if _, err := f.b.Bootstrap(ctx, "pat.kim"); err != nil {
		t.Fatalf("Bootstrap(pat.kim) into the namespace the hook made for pat.kim = %v, want adopted", err)
	}
	if a := namespaceAnnotations(t, ns); a[identity.UserAnnotation] != "pat.kim" {
		t.Errorf("owner after adoption = %q, want pat.kim", a[identity.UserAnnotation])
	}
	if _, err := f.b.Bootstrap(ctx, "pat-kim"); !errors.Is(err, ErrForeignNamespace) {
		t.Errorf("Bootstrap(pat-kim) after adoption = %v, want ErrForeignNamespace", err)
	}

	// No RoleBinding, or one naming a second user too: nobody adopts it.
	for _, tc := range []struct {
		user     string
		subjects []rbacv1.Subject
	}{
		{user: "quinn"},
		{user: "rory", subjects: []rbacv1.Subject{user("rory"), user("mallory")}},
		{user: "sam", subjects: []rbacv1.Subject{user("sam"), {Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "staff"}}},
	} {
		hookNamespace(tc.user, tc.subjects...)
		if _, err := f.b.Bootstrap(ctx, tc.user); !errors.Is(err, ErrForeignNamespace) {
			t.Errorf("Bootstrap(%s) with RoleBindings %v = %v, want ErrForeignNamespace", tc.user, tc.subjects, err)
		}
	}
}

// TestInterruptedBootstrapIsRepaired is issue 17's item 8: a login cut off
// by an API failure after the namespace was made answers a temporary error
// that names the object, and the next login (or a reconcile pass) completes
// the namespace.
func TestInterruptedBootstrapIsRepaired(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Bool
	cfg := rest.CopyConfig(env.Kube.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if fail.Load() && strings.Contains(r.URL.Path, "/rolebindings/") && r.Method == http.MethodPatch {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/json"}},
					Body: http.NoBody, Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	})
	for _, repair := range []string{"login", "reconcile"} {
		t.Run(repair, func(t *testing.T) {
			f := newFixture(t, newConfig(t), cfg)
			ns := f.cfg.NamespacePrefix + "bob"
			cleanupNamespace(t, ns)
			fail.Store(true)
			_, err := f.b.Bootstrap(ctx, "bob")
			fail.Store(false)
			if !IsTemporary(err) || !strings.Contains(err.Error(), "RoleBinding bob-ood-user in namespace "+ns) {
				t.Fatalf("interrupted Bootstrap(bob) = %v, want a temporary error naming the RoleBinding", err)
			}
			if repair == "login" {
				if _, err := f.b.Bootstrap(ctx, "bob"); err != nil {
					t.Fatalf("second Bootstrap(bob) = %v", err)
				}
			} else if err := f.b.Reconcile(ctx, 1); err != nil {
				t.Fatalf("Reconcile() = %v", err)
			}
			for _, name := range []string{"bob-ood-user", "bob-ood-initializer"} {
				if _, err := env.Kube.Client.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
					t.Errorf("RoleBinding %s after the %s: %v", name, repair, err)
				}
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

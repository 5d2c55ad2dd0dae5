package mapsync

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// allAnnotations returns every annotation of a namespace.
func allAnnotations(t *testing.T, name string) map[string]string {
	t.Helper()
	ns, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Annotations
}

// TestCollisionRefusedForAll is the takeover of issue 11 holes 2 and 3 on
// the real API server and slapd: john.smith and john-smith map to one
// namespace, and so do alice and Alice. Across several passes neither user of
// a pair gets an identity in any ConfigMap, the namespaces' annotations
// (owner included) stay exactly as they were, each pass says why in a
// Warning Event, a log line and the collision gauge, and no
// IdentityRemoved is ever recorded. An owner annotation that an older
// ldap-configmap owned through server-side apply survives too.
func TestCollisionRefusedForAll(t *testing.T) {
	ctx := context.Background()
	s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{Reader: true, SizeLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	err = s.Modify(ctx, "dn: uid=john-smith,ou=people,"+s.Suffix+"\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"+
		"uid: john-smith\ncn: John Smith Two\nsn: Smith\nuidNumber: 10010\ngidNumber: 10010\nhomeDirectory: /home/john-smith\n\n"+
		"dn: cn=Alice Upper,ou=people,"+s.Suffix+"\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"+
		"uid: Alice\ncn: Alice Upper\nsn: Upper\nuidNumber: 10011\ngidNumber: 10011\nhomeDirectory: /home/Alice\n")
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, s)
	c.NamespaceAnnotations = true
	c.UserPrefix = "col-"
	c.PodNamespace, c.PodName = c.Namespace, "ldap-configmap-0"
	johnAnn := map[string]string{identity.UserAnnotation: "john.smith", identity.UIDAnnotation: "10003", identity.GIDAnnotation: "10003",
		identity.GIDsAnnotation: ",10003,", identity.GroupsAnnotation: ",john.smith,", identity.HomeAnnotation: "/home/john.smith", "site.org/note": "keep"}
	aliceAnn := map[string]string{identity.UserAnnotation: "alice", identity.UIDAnnotation: "10001"}
	createNamespace(t, "col-john-smith", johnAnn)
	createNamespace(t, "col-alice", aliceAnn)
	createNamespace(t, "col-bob", nil)
	// An older ldap-configmap wrote the owner annotation with server-side
	// apply, so its field manager owns the key.
	old := corev1ac.Namespace("col-bob").WithAnnotations(map[string]string{identity.UserAnnotation: "bob", identity.UIDAnnotation: "1"})
	if _, err := env.Kube.Client.CoreV1().Namespaces().Apply(ctx, old, metav1.ApplyOptions{FieldManager: Tool.Name, Force: true}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, c)
	for pass := 1; pass <= 3; pass++ {
		h.mustRun(t)
		if d := cmp.Diff(johnAnn, allAnnotations(t, "col-john-smith")); d != "" {
			t.Errorf("pass %d: col-john-smith annotations changed (-before +after):\n%s", pass, d)
		}
		if d := cmp.Diff(aliceAnn, allAnnotations(t, "col-alice")); d != "" {
			t.Errorf("pass %d: col-alice annotations changed (-before +after):\n%s", pass, d)
		}
		bob := allAnnotations(t, "col-bob")
		if bob[identity.UserAnnotation] != "bob" || bob[identity.UIDAnnotation] != "10002" {
			t.Errorf("pass %d: col-bob annotations = %v, want the owner bob kept and uid 10002", pass, bob)
		}
		for name, data := range readMaps(t, c.Namespace) {
			for _, k := range []string{"col-john-smith", "col-alice"} {
				if v, ok := data[k]; ok {
					t.Errorf("pass %d: %s[%s] = %q, want no entry for a colliding name", pass, name, k, v)
				}
			}
			if _, ok := data["col-bob"]; !ok && name != "user-home-map" {
				t.Errorf("pass %d: %s has no col-bob", pass, name)
			}
		}
		if got := testutil.ToFloat64(h.pass.m.collisions); got != 2 {
			t.Errorf("pass %d: collision_namespaces = %v, want 2", pass, got)
		}
		var collisions []string
		for len(h.rec.Events) > 0 {
			e := <-h.rec.Events
			if strings.Contains(e, "IdentityRemoved") {
				t.Errorf("pass %d: event %q, want no IdentityRemoved", pass, e)
			}
			if strings.Contains(e, "IdentityCollision") {
				collisions = append(collisions, e)
			}
		}
		want := []string{
			`Warning IdentityCollision LDAP entries "Alice", "alice" all map to namespace col-alice`,
			`Warning IdentityCollision LDAP entries "john-smith", "john.smith" all map to namespace col-john-smith`,
		}
		if len(collisions) != len(want) {
			t.Fatalf("pass %d: IdentityCollision events = %q, want %d", pass, collisions, len(want))
		}
		for i, w := range want {
			if !strings.HasPrefix(collisions[i], w) {
				t.Errorf("pass %d: event %q, want prefix %q", pass, collisions[i], w)
			}
		}
	}
}

// TestIncrementalMatchesFullSync changes a user, a group's membership,
// deletes a user and renames one between incremental passes of one
// long-running pass object, and after each compares every ConfigMap and
// the namespace annotations with those of a fresh full sync. A pass with
// nothing changed reads only the change marker and writes nothing.
func TestIncrementalMatchesFullSync(t *testing.T) {
	ctx := context.Background()
	s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{Reader: true, SizeLimit: 3, SyncProv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := testConfig(t, s)
	c.NamespaceAnnotations = true
	c.UserPrefix = "inc-"
	c.AllowLargeDrop = true
	userNamespaces(t, "inc-alice", "inc-bob", "inc-carol", "inc-caroline", "inc-dave")
	h := newHarness(t, c)
	h.mustRun(t)
	h.mustRun(t)
	if got := h.pass.LastLDAPRequests.Load(); got != 2 || h.counter.Writes() != 0 {
		t.Errorf("pass with nothing changed: %d LDAP requests, writes %s; want 2 (the change marker) and none", got, h.counter)
	}
	steps := []struct{ name, ldif string }{
		{"user changed", "dn: uid=alice,ou=people," + s.Suffix + "\nchangetype: modify\nreplace: homeDirectory\nhomeDirectory: /home2/alice\n"},
		{"group membership changed", "dn: cn=pzs0001,ou=groups," + s.Suffix + "\nchangetype: modify\nadd: memberUid\nmemberUid: dave\n"},
		{"user deleted", "dn: uid=bob,ou=people," + s.Suffix + "\nchangetype: delete\n"},
		{"user renamed", "dn: uid=carol,ou=people," + s.Suffix + "\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n"},
	}
	for _, step := range steps {
		if err := s.Modify(ctx, step.ldif); err != nil {
			t.Fatal(err)
		}
		h.mustRun(t)
		if got := testutil.ToFloat64(h.pass.m.reads.WithLabelValues("full")); got != 1 {
			t.Errorf("%s: full reads = %v, want 1 (only the first)", step.name, got)
		}
		full := *c
		full.Namespace = env.Namespace(t, "incfull-", nil)
		full.NamespaceAnnotations = false
		newHarness(t, &full).mustRun(t)
		if d := cmp.Diff(readMaps(t, full.Namespace), readMaps(t, c.Namespace)); d != "" {
			t.Errorf("%s: incremental maps differ from a full sync (-full +incremental):\n%s", step.name, d)
		}
		uids := readMaps(t, full.Namespace)["user-uid-map"]
		for _, ns := range []string{"inc-alice", "inc-bob", "inc-carol", "inc-caroline", "inc-dave"} {
			if got, want := nsAnnotations(t, ns)[identity.UIDAnnotation], uids[ns]; got != want {
				t.Errorf("%s: %s uid annotation = %q, want %q (as the full sync's map)", step.name, ns, got, want)
			}
		}
	}
	if got := readMaps(t, c.Namespace)["user-home-map"]["inc-alice"]; got != "/home2/alice" {
		t.Errorf("user-home-map[inc-alice] = %q, want the change", got)
	}
	if got := readMaps(t, c.Namespace)["user-groups-map"]["inc-dave"]; !strings.Contains(got, "pzs0001") {
		t.Errorf("user-groups-map[inc-dave] = %s, want pzs0001 added", got)
	}
}

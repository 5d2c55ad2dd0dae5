package mapsync

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var readFile = os.ReadFile

func userNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		createNamespace(t, n, nil)
	}
}

func createNamespace(t *testing.T, name string, annotations map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if _, err := env.Kube.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func nsAnnotations(t *testing.T, name string) map[string]string {
	t.Helper()
	ns, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range identity.IdentityAnnotations() {
		if v, ok := ns.Annotations[k]; ok {
			out[k] = v
		}
	}
	return out
}

// TestNamespaceAnnotations proves the per-namespace output: exact values on
// existing user namespaces (CEL-testable delimited lists), no namespace
// created, a namespace whose user is not in LDAP stripped, others untouched.
func TestNamespaceAnnotations(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.Mappers = nil
	c.NamespaceAnnotations = true
	c.UserPrefix = "na-"
	userNamespaces(t, "na-carol", "na-john-smith")
	stale := map[string]string{identity.UIDAnnotation: "999", identity.UserAnnotation: "zed", identity.GIDsAnnotation: ",999,", "other.org/keep": "yes"}
	createNamespace(t, "na-zed", stale)
	createNamespace(t, "other-alice", nil)
	h := newHarness(t, c)
	h.mustRun(t)

	want := map[string]string{
		identity.UIDAnnotation:    "10004",
		identity.GIDAnnotation:    "10004",
		identity.GIDsAnnotation:   ",10004,20001,20002,20003,20004,20005,20006,20007,20008,20100,",
		identity.GroupsAnnotation: ",carol,hpcusers,pzs0001,pzs0002,pzs0003,pzs0004,pzs0005,pzs0006,pzs0007,pzs0008,",
		identity.HomeAnnotation:   "/home/carol",
	}
	if d := cmp.Diff(want, nsAnnotations(t, "na-carol")); d != "" {
		t.Errorf("na-carol annotations (-want +got):\n%s", d)
	}
	if got, ok := nsAnnotations(t, "na-john-smith")[identity.UserAnnotation]; ok {
		t.Errorf("na-john-smith user annotation = %q, want none (the owner is namespace-bootstrap's to write)", got)
	}
	if d := cmp.Diff(map[string]string{identity.UserAnnotation: "zed"}, nsAnnotations(t, "na-zed")); d != "" {
		t.Errorf("na-zed (not in LDAP) identity annotations (-want +got):\n%s\nwant only the owner, untouched", d)
	}
	zed, _ := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), "na-zed", metav1.GetOptions{})
	if zed.Annotations["other.org/keep"] != "yes" {
		t.Errorf("na-zed lost an annotation not ours: %v", zed.Annotations)
	}
	if got := nsAnnotations(t, "other-alice"); len(got) != 0 {
		t.Errorf("other-alice (not under the prefix) got %v", got)
	}
	for _, n := range []string{"na-alice", "na-bob", "na-dave"} {
		if _, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: err = %v, want NotFound (never created)", n, err)
		}
	}
	select {
	case e := <-h.rec.Events:
		if !strings.Contains(e, "IdentityRemoved") || !strings.Contains(e, "zed") {
			t.Errorf("event = %q, want IdentityRemoved for zed", e)
		}
	default:
		t.Error("no Event recorded for the removal")
	}
	if got := testutil.ToFloat64(h.pass.m.annotated); got != 2 {
		t.Errorf("annotated_namespaces = %v, want 2", got)
	}
}

// TestAnnotationsBeforeAnyNamespace proves that a fresh cluster, where no
// user has logged in yet (no user namespace to annotate), is not taken for an
// empty LDAP answer: the maps are written.
func TestAnnotationsBeforeAnyNamespace(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.Mappers = []string{"user-uid"}
	c.NamespaceAnnotations = true
	c.UserPrefix = "fresh-"
	h := newHarness(t, c)
	h.mustRun(t)
	cm, err := env.Kube.Client.CoreV1().ConfigMaps(c.Namespace).Get(context.Background(), "user-uid-map", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("user-uid-map not written: %v", err)
	}
	if got := cm.Data["fresh-alice"]; got != "10001" {
		t.Errorf("user-uid-map[fresh-alice] = %q, want 10001", got)
	}
}

// TestUserRemovedAndChanged proves, on a directory changed with ldapmodify,
// that a changed user is rewritten (and only that) and that a user removed
// from LDAP disappears from every map and loses its namespace annotations.
func TestUserRemovedAndChanged(t *testing.T) {
	ctx := context.Background()
	s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{Reader: true, SizeLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := testConfig(t, s)
	c.NamespaceAnnotations = true
	c.UserPrefix = "rm-"
	c.MaxDropFraction = 0.5
	userNamespaces(t, "rm-dave", "rm-alice")
	h := newHarness(t, c)
	h.mustRun(t)
	if got := readMaps(t, c.Namespace)["user-uid-map"]["rm-dave"]; got != "10005" {
		t.Fatalf("before: user-uid-map[rm-dave] = %q, want 10005", got)
	}

	// One user changed: new home directory.
	if err := s.Modify(ctx, "dn: uid=alice,ou=people,"+s.Suffix+"\nchangetype: modify\nreplace: homeDirectory\nhomeDirectory: /home2/alice\n"); err != nil {
		t.Fatal(err)
	}
	h.mustRun(t)
	if got := h.counter.Writes(); got != 2 {
		t.Errorf("writes after one home changed = %d (%s), want 2 (user-home-map, rm-alice)", got, h.counter)
	}
	if got := readMaps(t, c.Namespace)["user-home-map"]["rm-alice"]; got != "/home2/alice" {
		t.Errorf("user-home-map[rm-alice] = %q, want /home2/alice", got)
	}
	if got := nsAnnotations(t, "rm-alice")[identity.HomeAnnotation]; got != "/home2/alice" {
		t.Errorf("rm-alice home annotation = %q, want /home2/alice", got)
	}

	// One user removed from LDAP (and from its groups).
	err = s.Modify(ctx, "dn: uid=dave,ou=people,"+s.Suffix+"\nchangetype: delete\n\n"+
		"dn: cn=hpcusers,ou=groups,"+s.Suffix+"\nchangetype: modify\ndelete: memberUid\nmemberUid: dave\n")
	if err != nil {
		t.Fatal(err)
	}
	h.mustRun(t)
	for name, data := range readMaps(t, c.Namespace) {
		if _, ok := data["rm-dave"]; ok {
			t.Errorf("%s still has rm-dave after dave left LDAP", name)
		}
		if len(data) != 4 {
			t.Errorf("%s has %d keys, want 4", name, len(data))
		}
	}
	if got := nsAnnotations(t, "rm-dave"); len(got) != 0 {
		t.Errorf("rm-dave annotations after dave left LDAP = %v, want none", got)
	}
	if got := nsAnnotations(t, "rm-alice")[identity.UIDAnnotation]; got != "10001" {
		t.Errorf("rm-alice uid annotation = %q, want 10001 (untouched)", got)
	}
}

// TestBadEntriesSkipped proves bad entries (non-numeric or missing UID, a
// username that gives no valid namespace, two users with one key) are
// skipped, logged and counted by reason while the rest sync.
func TestBadEntriesSkipped(t *testing.T) {
	ldif, err := os.ReadFile("testdata/bad-entries.ldif")
	if err != nil {
		t.Fatal(err)
	}
	const sfx = "dc=bad,dc=org"
	s, err := testenv.StartSlapd(context.Background(), testenv.SlapdOptions{Suffix: sfx, LDIF: ldif, Reader: true, SizeLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := testConfig(t, s)
	c.Mappers = []string{MapperUID, MapperGIDs}
	c.UserFilter = "(objectClass=inetOrgPerson)"
	c.UserAttrMap = "uid=employeeNumber"
	h := newHarness(t, c)
	h.mustRun(t)
	maps := readMaps(t, c.Namespace)
	if d := cmp.Diff(map[string]string{"user-good": "5001", "user-also-good": "5002"}, maps["user-uid-map"]); d != "" {
		t.Errorf("user-uid-map (-want +got):\n%s", d)
	}
	if got := maps["user-gids-map"]["user-good"]; got != jsonOf("5001", "6001") {
		t.Errorf("user-gids-map[user-good] = %s, want [5001 6001]", got)
	}
	for reason, want := range map[string]float64{
		ldapdir.SkipInvalidUID: 1, ldapdir.SkipMissingUID: 1, ldapdir.SkipInvalidUsername: 1, ldapdir.SkipDuplicateKey: 2,
	} {
		if got := testutil.ToFloat64(h.pass.m.skipped.WithLabelValues(reason)); got != want {
			t.Errorf("skipped_entries_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestNamespaceWatch proves the daemon's namespace watch (Start): once it
// has synced, a pass reads the namespaces from it instead of listing them,
// and still sees a namespace created since and an annotation a thief
// removed; when the watch stops, passes list again.
func TestNamespaceWatch(t *testing.T) {
	c := testConfig(t, env.LDAP)
	c.Mappers = nil
	c.NamespaceAnnotations = true
	c.UserPrefix = "nsw-"
	userNamespaces(t, "nsw-alice")
	h := newHarness(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.pass.Start(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Start() = %v", err)
			}
		}
	}
	t.Cleanup(stop)
	testenv.Eventually(t, "the namespace watch to sync", func() (bool, error) {
		_, ok := h.pass.watchedNamespaces()
		return ok, nil
	})
	listed := func() bool { return strings.Contains(h.counter.String(), "GET namespaces") }

	h.mustRun(t)
	if got := nsAnnotations(t, "nsw-alice")[identity.UIDAnnotation]; got != "10001" {
		t.Errorf("nsw-alice uid annotation = %q, want 10001", got)
	}
	if listed() {
		t.Errorf("pass with a synced watch listed namespaces (%s), want it read from the watch", h.counter)
	}

	userNamespaces(t, "nsw-bob")
	_, err := env.Kube.Client.CoreV1().Namespaces().Patch(context.Background(), "nsw-alice", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+identity.UIDAnnotation+`":null}}}`), metav1.PatchOptions{FieldManager: "thief"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "a pass to annotate nsw-bob and restore nsw-alice's uid", func() (bool, error) {
		if err := h.run(t); err != nil {
			return false, err
		}
		return nsAnnotations(t, "nsw-bob")[identity.UIDAnnotation] == "10002" && nsAnnotations(t, "nsw-alice")[identity.UIDAnnotation] == "10001", nil
	})

	stop()
	if _, ok := h.pass.watchedNamespaces(); ok {
		t.Fatal("the watch is still used after Start returned")
	}
	h.mustRun(t)
	if !listed() {
		t.Errorf("pass after the watch stopped: requests %s, want a namespace list", h.counter)
	}
}

package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/naming"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// allOptions turns on every optional object of the default template.
func allOptions(t *testing.T) []string {
	pull := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(pull, []byte(`{"auths":{"registry.example.org":{"auth":"cHVsbDpwdWxs"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"--job-pod-reaper", "--egress-deny", "--egress-allow-cidrs=10.0.0.0/8", "--egress-allow-ports=53/UDP,53",
		"--network-policy-allow-cidrs=192.0.2.10/32,192.0.2.11/32", "--pod-security-enforce=restricted",
		"--resource-quota=requests.cpu=8,requests.memory=32Gi", "--limit-range-default=cpu=1,memory=2Gi",
		"--limit-range-default-request=cpu=500m", "--image-pull-secret=registry", "--image-pull-secret-file=" + pull,
	}
}

// TestFirstLoginCreatesEverything proves a first login creates the namespace
// and every object of the template, with the user's LDAP identity and the
// login annotation on the namespace.
func TestFirstLoginCreatesEverything(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, allOptions(t)...), nil)
	ns := f.cfg.NamespacePrefix + "alice"
	cleanupNamespace(t, ns)

	res, err := f.b.Bootstrap(ctx, "alice")
	if err != nil {
		t.Fatalf("Bootstrap(alice) = %v", err)
	}
	if !res.Created || res.Namespace != ns {
		t.Errorf("Bootstrap(alice) = %+v, want created namespace %s", res, ns)
	}
	c := env.Kube.Client
	got, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	wantLabels := map[string]string{
		"app.kubernetes.io/name": "open-ondemand", "app.kubernetes.io/managed-by": "namespace-bootstrap",
		"pod-security.kubernetes.io/enforce": "restricted", "kubernetes.io/metadata.name": ns,
	}
	if diff := cmp.Diff(wantLabels, got.Labels); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{
		identity.LastHookExecutionAnnotation: "1800000000",
		identity.UserAnnotation:              "alice",
		identity.UIDAnnotation:               "10001",
		identity.GIDAnnotation:               "10001",
		identity.GIDsAnnotation:              ",10001,20001,20100,",
		identity.GroupsAnnotation:            ",alice,hpcusers,pzs0001,",
		identity.HomeAnnotation:              "/home/alice",
	}
	for k, v := range wantAnn {
		if got.Annotations[k] != v {
			t.Errorf("namespace annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}

	rbs, err := c.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type binding struct {
		Role     string
		Subjects []rbacv1.Subject
	}
	gotRB := map[string]binding{}
	for _, rb := range rbs.Items {
		gotRB[rb.Name] = binding{rb.RoleRef.Name, rb.Subjects}
	}
	wantRB := map[string]binding{
		"alice-ood-user":        {"ood-user", []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice"}}},
		"alice-ood-initializer": {"ood-initializer", []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}}},
		"alice-job-pod-reaper-rolebinding": {"job-pod-reaper",
			[]rbacv1.Subject{{Kind: "ServiceAccount", Name: "job-pod-reaper", Namespace: "job-pod-reaper"}}},
	}
	if diff := cmp.Diff(wantRB, gotRB); diff != "" {
		t.Errorf("RoleBindings (-want +got):\n%s", diff)
	}

	np, err := c.NetworkingV1().NetworkPolicies(ns).Get(ctx, "deny-from-other-namespaces", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if from := np.Spec.Ingress[0].From; len(from) != 3 || from[0].PodSelector == nil || from[1].IPBlock.CIDR != "192.0.2.10/32" || from[2].IPBlock.CIDR != "192.0.2.11/32" {
		t.Errorf("ingress from = %+v, want the namespace and the two portal CIDRs", from)
	}
	eg, err := c.NetworkingV1().NetworkPolicies(ns).Get(ctx, "default-deny-egress", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := eg.Spec.Egress; len(r) != 3 || r[1].To[0].IPBlock.CIDR != "10.0.0.0/8" || len(r[2].Ports) != 2 || *r[2].Ports[0].Protocol != corev1.ProtocolUDP || r[2].Ports[1].Port.IntValue() != 53 {
		t.Errorf("egress = %+v, want own namespace, 10.0.0.0/8, and port 53 UDP+TCP", r)
	}

	q, err := c.CoreV1().ResourceQuotas(ns).Get(ctx, "user-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cpu := q.Spec.Hard[corev1.ResourceRequestsCPU]; cpu.String() != "8" {
		t.Errorf("quota requests.cpu = %s, want 8", cpu.String())
	}
	lr, err := c.CoreV1().LimitRanges(ns).Get(ctx, "user-limits", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := lr.Spec.Limits[0].DefaultRequest[corev1.ResourceCPU]; d.String() != "500m" {
		t.Errorf("limit range default request cpu = %s, want 500m", d.String())
	}
	sec, err := c.CoreV1().Secrets(ns).Get(ctx, "registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson || !strings.Contains(string(sec.Data[".dockerconfigjson"]), "registry.example.org") {
		t.Errorf("pull secret = %s %q", sec.Type, sec.Data)
	}
	sa, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sa.ImagePullSecrets) != 1 || sa.ImagePullSecrets[0].Name != "registry" {
		t.Errorf("default service account imagePullSecrets = %v, want [registry]", sa.ImagePullSecrets)
	}
	if rb, _ := c.RbacV1().RoleBindings(ns).Get(ctx, "alice-ood-user", metav1.GetOptions{}); rb.ManagedFields[0].Manager != Tool.Name {
		t.Errorf("RoleBinding field manager = %q, want %q", rb.ManagedFields[0].Manager, Tool.Name)
	}
	if got := testutil.ToFloat64(f.b.metrics.bootstraps.WithLabelValues("created")); got != 1 {
		t.Errorf("bootstraps_total{created} = %v, want 1", got)
	}
}

// TestSecondLoginWritesOnlyTheAnnotation proves a re-run for an up-to-date
// user changes nothing but the login annotation: one write, the namespace.
func TestSecondLoginWritesOnlyTheAnnotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, allOptions(t)...), nil)
	ns := f.cfg.NamespacePrefix + "bob"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "bob"); err != nil {
		t.Fatalf("first Bootstrap(bob) = %v", err)
	}
	before := resourceVersions(t, ns)
	f.counter.Reset()
	f.clock.Step(time.Hour)

	res, err := f.b.Bootstrap(ctx, "bob")
	if err != nil {
		t.Fatalf("second Bootstrap(bob) = %v", err)
	}
	if res.Created || len(res.Applied) != 0 {
		t.Errorf("second Bootstrap(bob) = %+v, want nothing created or applied", res)
	}
	if w := f.counter.Writes(); w != 1 || !strings.Contains(f.counter.String(), "PATCH namespaces=1") {
		t.Errorf("second login made %d writes (%s), want 1: PATCH namespaces", w, f.counter)
	}
	got, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(1_800_000_000+3600, 10); got.Annotations[identity.LastHookExecutionAnnotation] != want {
		t.Errorf("last-hook-execution = %q, want %q", got.Annotations[identity.LastHookExecutionAnnotation], want)
	}
	if got.Annotations[identity.UIDAnnotation] != "10002" {
		t.Errorf("uid annotation lost on re-run: %v", got.Annotations)
	}
	after := resourceVersions(t, ns)
	delete(before, "Namespace")
	delete(after, "Namespace")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("objects changed by a re-run (-before +after):\n%s", diff)
	}
	if got := testutil.ToFloat64(f.b.metrics.bootstraps.WithLabelValues("unchanged")); got != 1 {
		t.Errorf("bootstraps_total{unchanged} = %v, want 1", got)
	}
}

// resourceVersions returns kind/name → resourceVersion of everything the
// bootstrap writes in ns.
func resourceVersions(t *testing.T, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	c := env.Kube.Client
	out := map[string]string{}
	n, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["Namespace"] = n.ResourceVersion
	rbs, _ := c.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	for _, o := range rbs.Items {
		out["RoleBinding/"+o.Name] = o.ResourceVersion
	}
	nps, _ := c.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	for _, o := range nps.Items {
		out["NetworkPolicy/"+o.Name] = o.ResourceVersion
	}
	qs, _ := c.CoreV1().ResourceQuotas(ns).List(ctx, metav1.ListOptions{})
	for _, o := range qs.Items {
		out["ResourceQuota/"+o.Name] = o.ResourceVersion
	}
	lrs, _ := c.CoreV1().LimitRanges(ns).List(ctx, metav1.ListOptions{})
	for _, o := range lrs.Items {
		out["LimitRange/"+o.Name] = o.ResourceVersion
	}
	ss, _ := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "registry").String()})
	for _, o := range ss.Items {
		out["Secret/"+o.Name] = o.ResourceVersion
	}
	return out
}

// TestUsernames proves usernames map to namespaces as the portal's adapter
// maps them, and that invalid or unknown ones are refused with nothing
// created.
func TestUsernames(t *testing.T) {
	ctx := context.Background()
	noLDAP := newConfig(t)
	noLDAP.LDAP.URL = ""
	plain := newFixture(t, noLDAP, nil)
	withLDAP := newFixture(t, newConfig(t), nil)
	tests := []struct {
		name, user string
		f          *fixture
		wantNS     string // suffix after the prefix
		wantErr    error
	}{
		{name: "dots (LDAP)", user: "john.smith", f: withLDAP, wantNS: "john-smith"},
		{name: "upper case", user: "Carol", f: plain, wantNS: "carol"},
		{name: "at sign and dots", user: "First.Last@Example.org", f: plain, wantNS: "first-last-example-org"},
		{name: "underscore", user: "bad_name", f: plain, wantErr: naming.ErrInvalidUsername},
		{name: "slash", user: "a/b", f: plain, wantErr: naming.ErrInvalidUsername},
		{name: "empty", user: "", f: plain, wantErr: naming.ErrInvalidUsername},
		{name: "too long", user: strings.Repeat("x", 70), f: plain, wantErr: naming.ErrInvalidUsername},
		{name: "not in LDAP", user: "mallory", f: withLDAP, wantErr: ErrUnknownUser},
		{name: "LDAP filter characters", user: "*", f: withLDAP, wantErr: naming.ErrInvalidUsername},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.counter.Reset()
			res, err := tt.f.b.Bootstrap(ctx, tt.user)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !IsRefusal(err) {
					t.Fatalf("Bootstrap(%q) = %v, want %v", tt.user, err, tt.wantErr)
				}
				if w := tt.f.counter.Writes(); w != 0 {
					t.Errorf("refused Bootstrap(%q) made %d writes (%s), want none", tt.user, w, tt.f.counter)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bootstrap(%q) = %v", tt.user, err)
			}
			want := tt.f.cfg.NamespacePrefix + tt.wantNS
			cleanupNamespace(t, want)
			if res.Namespace != want {
				t.Errorf("Bootstrap(%q) namespace = %q, want %q", tt.user, res.Namespace, want)
			}
			if _, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, want, metav1.GetOptions{}); err != nil {
				t.Errorf("namespace %s: %v", want, err)
			}
		})
	}
	if got := testutil.ToFloat64(withLDAP.b.metrics.bootstraps.WithLabelValues("refused")); got != 2 {
		t.Errorf("bootstraps_total{refused} = %v, want 2", got)
	}
}

// TestForeignNamespaceRefused proves two usernames that map to one namespace
// (john.smith and john@smith) cannot share it, and that a namespace this
// tool or OnDemand's hook did not make is never taken over.
func TestForeignNamespaceRefused(t *testing.T) {
	ctx := context.Background()
	c := newConfig(t)
	c.LDAP.URL = ""
	f := newFixture(t, c, nil)
	ns := c.NamespacePrefix + "john-smith"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "john.smith"); err != nil {
		t.Fatal(err)
	}
	f.counter.Reset()
	if _, err := f.b.Bootstrap(ctx, "john@smith"); !errors.Is(err, ErrForeignNamespace) {
		t.Fatalf("Bootstrap(john@smith) = %v, want ErrForeignNamespace", err)
	}
	if w := f.counter.Writes(); w != 0 {
		t.Errorf("refused bootstrap made %d writes, want none", w)
	}

	// A namespace someone else made (no managed-by or OnDemand label) is
	// not taken over; one Open OnDemand's shell hook made is adopted only by
	// the user its RoleBindings name (TestAdoptionNeedsTheUsersRoleBinding):
	// carol's has none, so it is refused too.
	ctx2 := context.Background()
	for _, tc := range []struct {
		user   string
		labels map[string]string
		adopt  bool
	}{
		{user: "dave", labels: map[string]string{"team": "infra"}},
		{user: "carol", labels: map[string]string{"app.kubernetes.io/name": "open-ondemand"}},
	} {
		ns := c.NamespacePrefix + tc.user
		cleanupNamespace(t, ns)
		if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx2, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: tc.labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.counter.Reset()
		_, err := f.b.Bootstrap(ctx2, tc.user)
		switch {
		case tc.adopt && err != nil:
			t.Errorf("Bootstrap(%s) into the OnDemand hook's namespace = %v, want adopted", tc.user, err)
		case !tc.adopt && !errors.Is(err, ErrForeignNamespace):
			t.Errorf("Bootstrap(%s) into a namespace someone else made = %v, want ErrForeignNamespace", tc.user, err)
		case !tc.adopt && f.counter.Writes() != 0:
			t.Errorf("refused bootstrap made %d writes, want none", f.counter.Writes())
		}
	}
}

// TestUserRBACWorks proves, by impersonating the users with an OIDC prefix,
// that a user may create pods in their own namespace and nothing in
// another's, and may not touch their Namespace or its RoleBindings.
func TestUserRBACWorks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, "--username-prefix=oidc:"), nil)
	for _, u := range []string{"alice", "bob"} {
		cleanupNamespace(t, f.cfg.NamespacePrefix+u)
		if _, err := f.b.Bootstrap(ctx, u); err != nil {
			t.Fatalf("Bootstrap(%s) = %v", u, err)
		}
	}
	alice, err := testenv.ClientFor(env.Kube.ConfigAs("oidc:alice"))
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "job1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	own, other := f.cfg.NamespacePrefix+"alice", f.cfg.NamespacePrefix+"bob"
	if _, err := alice.CoreV1().Pods(own).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("alice creates a pod in her namespace: %v", err)
	}
	if _, err := alice.CoreV1().Pods(other).Create(ctx, pod, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice creates a pod in bob's namespace: err = %v, want Forbidden", err)
	}
	if _, err := alice.CoreV1().ConfigMaps(other).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists bob's ConfigMaps: err = %v, want Forbidden", err)
	}
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`)
	if _, err := alice.CoreV1().Namespaces().Patch(ctx, own, "application/merge-patch+json", patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice patches her own Namespace: err = %v, want Forbidden", err)
	}
	if err := alice.RbacV1().RoleBindings(own).Delete(ctx, "alice-ood-user", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice deletes her RoleBinding: err = %v, want Forbidden", err)
	}
	// Without the prefix the API server's user is someone else.
	bare, _ := testenv.ClientFor(env.Kube.ConfigAs("alice"))
	if _, err := bare.CoreV1().Pods(own).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("unprefixed alice lists pods: err = %v, want Forbidden", err)
	}
}

// TestDryRunFirstLogin proves a dry run reports what a first login would
// create and creates nothing.
func TestDryRunFirstLogin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t, "--dry-run"), nil)
	ns := f.cfg.NamespacePrefix + "alice"
	cleanupNamespace(t, ns)
	res, err := f.b.Bootstrap(ctx, "alice")
	if err != nil {
		t.Fatalf("dry-run Bootstrap(alice) = %v", err)
	}
	if !res.DryRun || !res.Created || len(res.Applied) != 4 {
		t.Errorf("dry-run Bootstrap(alice) = %+v, want the namespace and 3 objects reported", res)
	}
	if namespaceExists(t, ns) {
		t.Errorf("dry run created namespace %s", ns)
	}
}

// TestMixedCaseLoginIsStable proves a login as "John.Smith" (LDAP has
// john.smith) and the reconcile agree: neither undoes the other.
func TestMixedCaseLoginIsStable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newConfig(t), nil)
	ns := f.cfg.NamespacePrefix + "john-smith"
	cleanupNamespace(t, ns)
	if _, err := f.b.Bootstrap(ctx, "John.Smith"); err != nil {
		t.Fatal(err)
	}
	if a := namespaceAnnotations(t, ns); a[identity.UserAnnotation] != "John.Smith" || a[identity.UIDAnnotation] != "10003" {
		t.Errorf("annotations = %v, want user John.Smith and uid 10003", a)
	}
	f.counter.Reset()
	if err := f.b.Reconcile(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if w := f.counter.Writes(); w != 0 {
		t.Errorf("reconcile after a mixed-case login made %d writes (%s), want 0", w, f.counter)
	}
	f.counter.Reset()
	if res, err := f.b.Bootstrap(ctx, "John.Smith"); err != nil || len(res.Applied) != 0 || f.counter.Writes() != 1 {
		t.Errorf("second login = %+v, %v with %d writes; want only the login annotation", res, err, f.counter.Writes())
	}
}

package tests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The red team's second round: attacks on what changed after the first
// (leader election in every tool, the shared global settings, the watching
// and caching daemons), each a test that failed before its fix.

// leaseRole is the chart's leader-election Role of a tool (kubehpc.common):
// create any Lease in the release namespace, get and update its own.
func leaseRole(tool string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{tool}, Verbs: []string{"get", "update"}},
	}
}

// grantUntilEnd grants a tool's ServiceAccount rules in namespace for the
// test, and when the test ends waits until the authorizer no longer lets it
// make the probe call, so that the next test sees the chart's RBAC alone.
func grantUntilEnd(t *testing.T, sa, namespace string, rules []rbacv1.PolicyRule, probe authv1.ResourceAttributes) {
	t.Helper()
	user := fmt.Sprintf("system:serviceaccount:%s:%s", releaseNamespace, sa)
	// Registered first, so it runs after the grant's own clean-up.
	t.Cleanup(func() {
		review := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: user,
			Groups: testenv.ServiceAccountGroups(releaseNamespace), ResourceAttributes: &probe}}
		testenv.EventuallyWithin(t, 30*time.Second, "the authorizer to drop the test's grant to "+user, func() (bool, error) {
			res, err := env.Kube.Client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
			if err != nil {
				return false, fmt.Errorf("SubjectAccessReview: %w", err)
			}
			return !res.Status.Allowed, nil
		})
	})
	env.ServiceAccount(t, releaseNamespace, sa, testenv.Grant{Namespaces: []string{namespace}, Rules: rules})
}

// podBoundClient acts as a tool's ServiceAccount with a token bound to a
// pod: the authenticator puts the pod's name in the user's extra
// authentication.kubernetes.io/pod-name, as for the token a replica mounts.
func podBoundClient(t testing.TB, tool, pod string) kubernetes.Interface {
	t.Helper()
	cfg := env.Kube.ServiceAccountConfig(releaseNamespace, tool)
	cfg.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/pod-name": {pod}}
	c, err := testenv.ClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRedTeamLeases: each tool's leader-election Lease, written with its
// own stolen token. Taken with a huge leaseDurationSeconds, the Lease keeps
// every real replica from ever leading: identities never synced (ldap-
// configmap), namespaces never reaped (namespace-reaper), never reconciled
// (namespace-bootstrap), walltimes never enforced (job-pod-reaper). Created
// under another tool's name before that tool first runs, it squats the
// other tool's Lease. Each tool's guard bounds the duration (at most 60 s,
// set) and confines it to its own Lease in the release namespace; the
// leader election's own writes (15 s, 60 s, the release) pass. Renewing
// the Lease every few seconds, a thief still kept it for as long as it
// liked: the holder must be the pod the token is bound to, so a token
// stolen from a replica can only make that live replica the leader. RBAC
// is the chart's with leaderElection.enabled.
func TestRedTeamLeases(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	admin := env.Kube.Client.CoordinationV1().Leases(releaseNamespace)
	for _, tc := range []struct {
		tool string
		// granted: the umbrella install already enables its leader election.
		granted bool
	}{{"ldap-configmap", false}, {"namespace-reaper", false}, {"namespace-bootstrap", false}, {"job-pod-reaper", true}} {
		t.Run(tc.tool, func(t *testing.T) {
			if !tc.granted {
				grantUntilEnd(t, tc.tool, releaseNamespace, leaseRole(tc.tool), authv1.ResourceAttributes{
					Namespace: releaseNamespace, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"})
			}
			// Its own Lease, as a replica left it (no kubelet runs the
			// replicas here).
			own := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: tc.tool},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr(tc.tool + "-replica"), LeaseDurationSeconds: ptr(int32(15))}}
			if _, err := admin.Create(ctx, own, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			// The token as a replica's pod holds it (bound to the pod), and
			// one bound to no pod.
			pod := tc.tool + "-7d9f8-x2x4q"
			leases := podBoundClient(t, tc.tool, pod).CoordinationV1().Leases(releaseNamespace)
			unbound := saClient(t, tc.tool).CoordinationV1().Leases(releaseNamespace)
			guard := tc.tool + " guard: "
			tooLong := guard + "a lease's leaseDurationSeconds must be set and at most 60"
			notItsPod := guard + "may hold its Lease only as the pod its token is bound to"
			updateAs := func(c coordinationv1client.LeaseInterface, holder string, secs *int32) func() error {
				return func() error {
					l, err := c.Get(ctx, tc.tool, metav1.GetOptions{})
					if err != nil {
						return err
					}
					l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr(holder), secs
					_, err = c.Update(ctx, l, metav1.UpdateOptions{DryRun: dryRun})
					return err
				}
			}
			update := func(secs *int32) func() error { return updateAs(leases, pod, secs) }
			create := func(name string, secs int32) func() error {
				return func() error {
					_, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
						Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr(pod), LeaseDurationSeconds: ptr(secs)}}, metav1.CreateOptions{DryRun: dryRun})
					return err
				}
			}
			// The first attempt waits for the grant and the policy.
			if err := pollDenied(ctx, update(ptr(int32(2147483647))), tooLong); err != nil {
				t.Errorf("%s: its own Lease taken for 2147483647 s: %v", tc.tool, err)
			}
			other := "namespace-reaper"
			if tc.tool == other {
				other = "ldap-configmap"
			}
			runAttempts(t, tc.tool, []attempt{
				{name: "its own Lease taken for 61 s", do: update(ptr(int32(61))), want: tooLong},
				{name: "its own Lease without a duration", do: update(nil), want: tooLong},
				{name: "its own Lease created for 2147483647 s (before the first replica)", do: create(tc.tool, 2147483647), want: tooLong},
				{name: "another tool's Lease squatted before that tool first runs", do: create(other, 15), want: "guard: may write only its own Lease"},
				{name: "its own Lease held (15 s) for a holder that is not the token's pod", do: updateAs(leases, "thief", ptr(int32(15))), want: notItsPod},
				{name: "its own Lease held (15 s) with a token bound to no pod", do: updateAs(unbound, pod, ptr(int32(15))), want: notItsPod},
				{name: "a leader election renewal (15 s)", do: update(ptr(int32(15))), allowed: true},
				{name: "a leader election at the bound (60 s)", do: update(ptr(int32(60))), allowed: true},
				{name: "a replica releases the Lease (no holder, 1 s)", do: updateAs(leases, "", ptr(int32(1))), allowed: true},
			})
		})
	}
}

// TestRedTeamPrefixDisagreement: one chart's own prefix over
// global.namespacePrefix (or over the default) makes a tool and the
// policies act on different namespaces. namespace-bootstrap on hpc- while
// the policies match user-* hands users namespaces where any pod is
// admitted (privileged, any UID, no walltime); job-pod-reaper on another
// prefix never reaps them. The umbrella refuses to render any such mix,
// and still renders one prefix set once or everywhere alike, and the
// empty (label-scoped) prefixes the OSC layout uses.
func TestRedTeamPrefixDisagreement(t *testing.T) {
	const refused = "the user namespace prefix differs between the charts"
	for _, tc := range []struct {
		name string
		set  []string
		ok   bool
	}{
		{"namespace-bootstrap alone on another prefix", []string{"namespace-bootstrap.namespacePrefix=hpc-"}, false},
		{"the policies alone on another prefix than the global", []string{"global.namespacePrefix=hpc-", "policies.namespacePrefix=user-"}, false},
		{"job-pod-reaper alone on another prefix", []string{"job-pod-reaper.userNamespacePrefix=hpc-"}, false},
		{"ldap-configmap alone on another prefix", []string{"global.namespacePrefix=hpc-", "ldap-configmap.userPrefix=user-"}, false},
		{"the tools on the global, namespace-reaper's regexp derived from it, the rest on their own", []string{"global.namespacePrefix=hpc-",
			"namespace-bootstrap.namespacePrefix=u-", "ldap-configmap.userPrefix=u-", "job-pod-reaper.userNamespacePrefix=u-", "policies.namespacePrefix=u-"}, false},
		{"every chart on its own, alike", []string{"namespace-bootstrap.namespacePrefix=u-", "ldap-configmap.userPrefix=u-", "job-pod-reaper.userNamespacePrefix=u-",
			"policies.namespacePrefix=u-", "namespace-reaper.namespaceRegexp=u-.+"}, true},
		{"the global once", []string{"global.namespacePrefix=hpc-"}, true},
		{"label-scoped policies and reaper (OSC)", []string{"global.namespacePrefix=hpc-", "policies.namespacePrefix=", "job-pod-reaper.userNamespacePrefix=",
			"job-pod-reaper.guard.enabled=false"}, true},
		{"the policies off", []string{"policies.engine=none", "policies.namespacePrefix=x-"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderUmbrellaRaw(t, tc.set...)
			switch {
			case tc.ok && err != nil:
				t.Errorf("render with %v: %v, want rendered", tc.set, err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), refused)):
				t.Errorf("render with %v: err = %v, want refused (%s)", tc.set, err, refused)
			}
		})
	}
}

// TestRedTeamKyvernoStatusPath: under the Kyverno engine the pod-immutable
// ClusterPolicy matches Pod/status (its strategy keeps the spec but not the
// metadata, so a token that may write pods/status could otherwise extend a
// walltime). Kyverno merges every policy into one webhook with failurePolicy
// Fail, so every kubelet status update of every pod in the cluster went
// through Kyverno: with Kyverno down or slow, no pod's status (Ready,
// phase) could change. The policy's webhook match conditions now send a
// pods/status write to Kyverno only when it changes a pod's labels or
// annotations; a kubelet-style status write stays out of the webhook path,
// and a walltime extended through pods/status is still denied.
func TestRedTeamKyvernoStatusPath(t *testing.T) {
	eng := startKyvernoEngine(t)
	ctx := context.Background()
	u := eng.newUser(t, "rtstatus", "10021", "10021", []string{"10021"}, []string{"rtstatus"})
	pod, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, goodPod(u), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a well-formed pod as %s: %v", u.Name, err)
	}
	coversStatus := func(r admissionregistrationv1.RuleWithOperations) bool {
		if !slices.Contains(r.Operations, admissionregistrationv1.Update) && !slices.Contains(r.Operations, admissionregistrationv1.OperationAll) {
			return false
		}
		return slices.ContainsFunc(r.Resources, func(res string) bool { return res == "pods/status" || res == "pods/*" || res == "*/*" })
	}
	var last, conditioned string
	var covered int
	var unconditioned []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := env.Kube.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: "webhook.kyverno.io/managed-by=kyverno"})
		if err != nil {
			return false, err
		}
		covered, unconditioned, conditioned = 0, []string{}, ""
		for _, c := range list.Items {
			for _, w := range c.Webhooks {
				if !slices.ContainsFunc(w.Rules, coversStatus) {
					continue
				}
				covered++
				if !slices.ContainsFunc(w.MatchConditions, func(m admissionregistrationv1.MatchCondition) bool { return m.Name == "status-changes-metadata" }) {
					unconditioned = append(unconditioned, fmt.Sprintf("%s (failurePolicy %v)", w.Name, ptrValue(w.FailurePolicy)))
				} else {
					conditioned = w.Name
				}
			}
		}
		last = fmt.Sprintf("%d webhooks take pods/status, without the match condition: %v", covered, unconditioned)
		return covered > 0 && len(unconditioned) == 0, nil
	})
	if err != nil {
		t.Fatalf("Kyverno's webhooks for pods/status: %s: %v", last, err)
	}
	status := func(body string) error {
		_, err := env.Kube.Client.CoreV1().Pods(u.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(body),
			metav1.PatchOptions{DryRun: dryRun}, "status")
		return err
	}
	// The API server counts the requests a webhook's match conditions kept
	// from it.
	before := matchConditionExclusions(t, conditioned)
	if err := status(`{"status":{"conditions":[{"type":"example.org/ready","status":"True"}]}}`); err != nil {
		t.Errorf("a kubelet-style status write: %v", err)
	}
	if after := matchConditionExclusions(t, conditioned); after <= before {
		t.Errorf("a kubelet-style status write went to Kyverno's webhook %s (match condition exclusions %v before, %v after)", conditioned, before, after)
	}
	if err := status(`{"metadata":{"annotations":{"pod.kubernetes.io/lifetime":"999h"}}}`); !kyvernoDenied(err, "pod.kubernetes.io/lifetime of a pod cannot change after creation") {
		t.Errorf("the walltime extended through pods/status: err = %v, want Kyverno's denial", err)
	}
	if err := status(`{"metadata":{"labels":{"account":null}}}`); !kyvernoDenied(err, "the label account of a pod cannot change after creation") {
		t.Errorf("the account removed through pods/status: err = %v, want Kyverno's denial", err)
	}
}

// matchConditionExclusions reads from the API server's metrics how many
// requests the match conditions of webhook kept from it.
func matchConditionExclusions(t *testing.T, webhook string) float64 {
	t.Helper()
	b, err := env.Kube.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read the API server's metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "apiserver_admission_match_condition_exclusions_total{") || !strings.Contains(line, `name="`+webhook+`"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRedTeamObjectCounts: a portal user may create ConfigMaps, Secrets and
// Services, each ConfigMap or Secret up to 1 MiB. With no count in the
// default ResourceQuota she could create them without end: etcd fills up
// (every tenant's outage), and job-pod-reaper, which caches every
// Service and ConfigMap of the user namespaces, runs out of memory and
// restarts for ever (no walltime enforced for anyone). The default quota
// of every user namespace (namespace-bootstrap's values, as its template
// renders them) now caps their counts: the user's next ConfigMap past the
// cap is refused.
func TestRedTeamObjectCounts(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	u := newUser(t, "rtcount", "20501", "20501", []string{"20501"}, []string{"rtcount"})
	quota, _ := bootstrapQuota(t)
	for _, r := range []corev1.ResourceName{corev1.ResourceConfigMaps, corev1.ResourceSecrets, corev1.ResourceServices} {
		if _, ok := quota.Spec.Hard[r]; !ok {
			t.Errorf("the default ResourceQuota of user namespaces does not cap %s: %v", r, quota.Spec.Hard)
		}
	}
	if _, err := env.Kube.Client.CoreV1().ResourceQuotas(u.Namespace).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The quota controller fills in what is used (kube-root-ca.crt); until
	// then quota admission refuses every counted object.
	testenv.Eventually(t, "the quota's usage to be counted", func() (bool, error) {
		q, err := env.Kube.Client.CoreV1().ResourceQuotas(u.Namespace).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, ok := q.Status.Used[corev1.ResourceConfigMaps]
		return ok || quota.Spec.Hard[corev1.ResourceConfigMaps] == (resource.Quantity{}), nil
	})
	const most = 1000
	cms := u.Client.CoreV1().ConfigMaps(u.Namespace)
	for i := 0; ; i++ {
		if i == most {
			t.Fatalf("the user created %d ConfigMaps in %s, want refused by the quota before", most, u.Namespace)
		}
		err := retryQuotaConflict(func() error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flood-%d", i)}}, metav1.CreateOptions{})
			return err
		})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota") {
			t.Logf("quota refused ConfigMap %d: %v", i+1, err)
			break
		}
		if err != nil {
			t.Fatalf("create ConfigMap %d: %v", i, err)
		}
	}
}

// TestRedTeamForgedEvents: ldap-configmap, namespace-reaper and
// namespace-bootstrap may record Events (in their own namespaces,
// "default" for Events on Namespaces, user namespaces for
// namespace-bootstrap). A stolen token wrote Events there as any
// component: a kubelet's Killing, a controller's warning, in the
// namespace the user reads. Each tool's guard now admits only the core
// Events its recorder writes (source.component, reportingComponent: the
// tool), as job-pod-reaper's already did.
func TestRedTeamForgedEvents(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	for _, tc := range []struct{ tool, ns string }{
		{"ldap-configmap", "default"}, {"ldap-configmap", releaseNamespace},
		{"namespace-reaper", "default"}, {"namespace-bootstrap", releaseNamespace},
	} {
		t.Run(tc.tool+" in "+tc.ns, func(t *testing.T) {
			c := saClient(t, tc.tool)
			core := func(component, reporting string) func() error {
				return func() error {
					_, err := c.CoreV1().Events(tc.ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "rt-"},
						InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: tc.ns, Name: "etcd"}, Reason: "Killing", Message: "forged",
						Source: corev1.EventSource{Component: component}, ReportingController: reporting, Type: corev1.EventTypeNormal},
						metav1.CreateOptions{DryRun: dryRun})
					return err
				}
			}
			want := tc.tool + " guard: may write only core Events whose source.component and reportingComponent are " + tc.tool
			if err := pollDenied(ctx, core("kubelet", ""), want); err != nil {
				t.Errorf("%s: a core Event from the kubelet: %v", tc.tool, err)
			}
			runAttempts(t, tc.tool, []attempt{
				{name: "its own source, another reporting controller", do: core(tc.tool, "kube-controller-manager"), want: want},
				{name: "an events.k8s.io Event from the kubelet", do: func() error {
					_, err := c.EventsV1().Events(tc.ns).Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "rt-"}, EventTime: metav1.NowMicro(),
						ReportingController: "kubelet", ReportingInstance: "node-1", Action: "Killing", Reason: "Killing", Type: corev1.EventTypeNormal,
						Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: tc.ns, Name: "etcd"}, Note: "forged"}, metav1.CreateOptions{DryRun: dryRun})
					return err
				}, want: "forbidden"}, // RBAC, or namespace-bootstrap's guard
				{name: "its own Event, as its recorder writes it", do: core(tc.tool, tc.tool), allowed: true},
				{name: "its own Event, from the broadcaster (no reporting controller)", do: core(tc.tool, ""), allowed: true},
			})
		})
	}
}

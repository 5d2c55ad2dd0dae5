package reaper

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true}, &env))
}

// testLabel carries the test's unique value on its namespaces.
const testLabel = "kubehpc-test"

// scope returns labels with a value unique to the test and the
// --user-namespace-prefix that makes exactly the namespaces testNamespace
// creates with them user namespaces (tests share one API server, and
// namespaces never finish deleting without a controller manager).
func scope(t *testing.T) (map[string]string, string) {
	t.Helper()
	v := env.UniqueName("t")
	lbl := map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue, testLabel: v}
	return lbl, "--user-namespace-prefix=" + v + "-"
}

// labelScope are the flags of the OSC reaper's scope (no prefix): the
// namespaces carrying lbl, and pods by --object-labels.
func labelScope(lbl map[string]string) []string {
	return []string{"--user-namespace-prefix=", "--namespace-labels=" + identity.OnDemandNameLabel + "=" + identity.OnDemandNameValue + "," + testLabel + "=" + lbl[testLabel]}
}

// testNamespace creates a namespace named as a user namespace of the test's
// scope (see scope), with lbl.
func testNamespace(t *testing.T, prefix string, lbl map[string]string) string {
	t.Helper()
	return env.Namespace(t, lbl[testLabel]+"-"+prefix, lbl)
}

// harness is one reaper under test.
type harness struct {
	r       *Reaper
	reg     *prometheus.Registry
	logs    *observer.ObservedLogs
	clock   *testingclock.FakeClock
	counter *kubeclient.RequestCounter
	ctx     context.Context
	client  kubernetes.Interface
	log     *zap.Logger
}

// newHarness builds a reaper from argv acting with cfg; once selects the
// LIST mode, otherwise Start runs (watch mode) until the test ends. A zero
// now means the real clock.
func newHarness(t testing.TB, cfg *rest.Config, args []string, once bool, now time.Time) *harness {
	t.Helper()
	h := buildHarness(t, cfg, args, once, now)
	if once {
		return h
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- h.r.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	select {
	case <-h.r.ready:
	case <-h.r.failed:
		t.Fatalf("Start failed: %v", h.r.startErr)
	case <-time.After(30 * time.Second):
		t.Fatal("watch caches did not sync within 30s")
	}
	return h
}

// buildHarness builds the reaper without starting it.
func buildHarness(t testing.TB, cfg *rest.Config, args []string, once bool, now time.Time) *harness {
	t.Helper()
	c, _, err := parse(t, args, nil)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	level := zap.DebugLevel
	if _, bench := t.(*testing.B); bench {
		level = zap.InfoLevel
	}
	core, logs := observer.New(level)
	a := env.App(t, testenv.AppOptions{Tool: Tool, Config: cfg, Now: now, Log: zap.New(core), Daemon: daemon.Options{Once: once}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{reg: a.Registry, logs: logs, counter: a.Counter, ctx: ctx, client: a.Client, log: a.Log, clock: a.FakeClock}
	h.r, err = c.build(ctx, a.Env)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) runOnce(t testing.TB) {
	t.Helper()
	if err := h.r.RunOnce(h.ctx); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

// setClock moves the reaper's clock to at.
func (h *harness) setClock(at time.Time) { h.clock.SetTime(at) }

type podOpts struct {
	lifetime  *string
	job       string
	unmanaged bool
	labels    map[string]string
	requests  []corev1.ResourceList
}

func createPod(t *testing.T, ns, name string, o podOpts) *corev1.Pod {
	t.Helper()
	lbl := map[string]string{}
	if !o.unmanaged {
		lbl[identity.ManagedByLabel] = identity.OnDemandManagedBy
	}
	if o.job != "" {
		lbl[identity.JobLabel] = o.job
	}
	for k, v := range o.labels {
		lbl[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/app"}}},
	}
	if o.lifetime != nil {
		pod.Annotations = map[string]string{identity.LifetimeAnnotation: *o.lifetime}
	}
	if len(o.requests) > 0 {
		pod.Spec.Containers = nil
		for i, rl := range o.requests {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
				Name: fmt.Sprintf("c%d", i), Image: "example.org/app", Resources: corev1.ResourceRequirements{Requests: rl}})
		}
	}
	got, err := env.Kube.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return got
}

func requests(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

// createObject creates a Service, ConfigMap or Secret with the job label.
func createObject(t *testing.T, kind, ns, name, job string, managed bool) {
	t.Helper()
	lbl := map[string]string{}
	if job != "" {
		lbl[identity.JobLabel] = job
	}
	if managed {
		lbl[identity.ManagedByLabel] = identity.OnDemandManagedBy
	}
	om := metav1.ObjectMeta{Name: name, Labels: lbl}
	ctx := context.Background()
	core := env.Kube.Client.CoreV1()
	var err error
	switch kind {
	case KindService:
		_, err = core.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: om, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	case KindConfigMap:
		_, err = core.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: om}, metav1.CreateOptions{})
	case KindSecret:
		_, err = core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: om}, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("create %s %s/%s: %v", kind, ns, name, err)
	}
}

// exists says whether the object is still in the API server.
func exists(t *testing.T, kind, ns, name string) bool {
	t.Helper()
	ctx := context.Background()
	core := env.Kube.Client.CoreV1()
	var err error
	switch kind {
	case KindPod:
		_, err = core.Pods(ns).Get(ctx, name, metav1.GetOptions{})
	case KindService:
		_, err = core.Services(ns).Get(ctx, name, metav1.GetOptions{})
	case KindConfigMap:
		_, err = core.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	case KindSecret:
		_, err = core.Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return true
}

func wantExists(t *testing.T, kind, ns, name string, want bool) {
	t.Helper()
	if got := exists(t, kind, ns, name); got != want {
		t.Errorf("%s %s/%s exists = %v, want %v", kind, ns, name, got, want)
	}
}

// podEvent returns the Events recorded on pod with reason.
func podEvents(t *testing.T, ns, pod, reason string) []corev1.Event {
	t.Helper()
	l, err := env.Kube.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod + ",reason=" + reason})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return l.Items
}

// waitEvent waits for an Event with reason on pod and returns its message.
func waitEvent(t *testing.T, ns, pod, reason string) string {
	t.Helper()
	var msg string
	testenv.Eventually(t, fmt.Sprintf("Event %s on pod %s/%s", reason, ns, pod), func() (bool, error) {
		evs := podEvents(t, ns, pod, reason)
		if len(evs) == 0 {
			return false, nil
		}
		msg = evs[0].Message
		return true, nil
	})
	return msg
}

// The RBAC job-pod-reaper needs (what the final report lists).
var (
	reapRules = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services", "configmaps"}, Verbs: []string{"list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"deletecollection"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "list"}},
	}
	namespaceRules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}}}
	leaseRules     = []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}
)

// serviceAccount returns a REST config acting as a fresh service account
// that holds exactly the reaper's RBAC: the reaping ClusterRole bound
// cluster-wide (reapIn nil) or by a RoleBinding in each of reapIn, and
// namespaces list/watch cluster-wide.
func serviceAccount(t *testing.T, reapIn []string, leaseNS ...string) *rest.Config {
	t.Helper()
	grants := []testenv.Grant{{Rules: reapRules, Namespaces: reapIn}, {Rules: namespaceRules}}
	if len(leaseNS) > 0 {
		grants = append(grants, testenv.Grant{Rules: leaseRules, Namespaces: leaseNS})
	}
	return env.ServiceAccount(t, "default", env.UniqueName("jpr-"), grants...).Config
}

// logsWith returns the observed entries with message msg.
func logsWith(h *harness, msg string) []observer.LoggedEntry {
	return h.logs.FilterMessage(msg).All()
}

func joinNS(ns ...string) string { return strings.Join(ns, ",") }

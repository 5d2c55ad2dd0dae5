package reaper

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true}, &env))
}

// week is the default --reap-after.
const week = 168 * time.Hour

// harness is one reaper built through Config.Build against the real API
// server, with a request counter and a fake clock.
type harness struct {
	r       *Reaper
	clock   *clocktesting.FakeClock
	counter *kubeclient.RequestCounter
	reg     *prometheus.Registry
	// selector is the label set the test's namespaces carry and the
	// reaper selects.
	labels map[string]string
}

type harnessOpts struct {
	// offset of the fake clock from the real time (default: 8 days, past
	// the default --reap-after).
	offset time.Duration
	watch  bool
	// wrap intercepts the reaper's requests (before they are sent).
	wrap func(*http.Request)
	// restConfig replaces the admin config (RBAC tests).
	restConfig *rest.Config
	// noTestLabel: do not add the test's own selector (the catch-all test).
	noTestLabel bool
}

// newHarness builds a reaper whose selection is the Open OnDemand profile
// narrowed to this test's namespaces by a label of its own.
func newHarness(t testing.TB, o harnessOpts, mutate func(*Config)) *harness {
	t.Helper()
	id := env.UniqueName("t")
	h := &harness{labels: map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue, "kubehpc-test": id}}
	c := NewConfig()
	if !o.noTestLabel {
		c.NamespaceLabels = []string{identity.OnDemandNameLabel + "=" + identity.OnDemandNameValue + ",kubehpc-test=" + id}
	}
	c.Prometheus.RetryInterval = 10 * time.Millisecond
	if mutate != nil {
		mutate(c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if o.offset == 0 {
		o.offset = week + 24*time.Hour
	}
	cfg := o.restConfig
	if cfg == nil {
		cfg = env.Kube.Config
	}
	if o.wrap != nil {
		cfg = rest.CopyConfig(cfg)
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(req *http.Request) (*http.Response, error) {
				o.wrap(req)
				return rt.RoundTrip(req)
			})
		}
	}
	a := env.App(t, testenv.AppOptions{Tool: Tool, Config: cfg, Now: time.Now().Add(o.offset), Daemon: daemon.Options{Once: !o.watch}})
	h.clock, h.counter, h.reg = a.FakeClock, a.Counter, a.Registry
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pass, err := c.Build(ctx, a.Env)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	h.r = pass.(*Reaper)
	if o.watch {
		done := make(chan error, 1)
		go func() { done <- h.r.Start(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Start() = %v", err)
			}
		})
		// Pods created from here on are events, not the initial list.
		select {
		case <-h.r.watch.ready:
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("Start() = %v before the caches filled", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the namespace and pod caches did not fill within 30s")
		}
	}
	return h
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// namespace creates a namespace the harness selects (name user-…), with
// annotations.
func (h *harness) namespace(t *testing.T, annotations map[string]string) string {
	t.Helper()
	return h.namespaceWith(t, "user-", h.labels, annotations)
}

func (h *harness) namespaceWith(t *testing.T, prefix string, labels, annotations map[string]string) string {
	t.Helper()
	name := env.Namespace(t, prefix, labels)
	if len(annotations) > 0 {
		ctx := context.Background()
		ns, err := env.Kube.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Annotations = annotations
		if _, err := env.Kube.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("annotate namespace %s: %v", name, err)
		}
	}
	return name
}

// loginAt is the last-hook-execution annotation for a login at t.
func loginAt(t time.Time) map[string]string {
	return map[string]string{identity.LastHookExecutionAnnotation: strconv.FormatInt(t.Unix(), 10)}
}

// createPod creates a pod and, if phase is not Pending, sets its status.
func createPod(t *testing.T, ns string, phase corev1.PodPhase, finished time.Time) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "job-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	p, err := env.Kube.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod in %s: %v", ns, err)
	}
	if phase == corev1.PodPending {
		return p
	}
	p.Status.Phase = phase
	start := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	p.Status.StartTime = &start
	cs := corev1.ContainerStatus{Name: "c", Image: "busybox", ImageID: "busybox@sha256:0"}
	if finished.IsZero() {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: start}
	} else {
		cs.State.Terminated = &corev1.ContainerStateTerminated{StartedAt: start, FinishedAt: metav1.NewTime(finished)}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	p, err = env.Kube.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set pod %s/%s to %s: %v", ns, p.Name, phase, err)
	}
	return p
}

func createPVC(t *testing.T, ns string) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "home"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := env.Kube.Client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PVC in %s: %v", ns, err)
	}
}

// deletionRequested reports whether the namespace is Terminating (without
// kube-controller-manager it never finishes).
func deletionRequested(t *testing.T, name string) bool {
	t.Helper()
	ns, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace %s: %v", name, err)
	}
	return ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating
}

func (h *harness) kept(reason Reason) float64 {
	return testutil.ToFloat64(h.r.metrics.kept.WithLabelValues(string(reason)))
}

func (h *harness) reaped() float64 { return testutil.ToFloat64(h.r.metrics.reaped) }

// count returns the requests of one kind, e.g. "GET pods" (LIST and GET
// alike) or "DELETE namespaces".
func (h *harness) count(key string) int {
	f := strings.Fields(h.counter.String()) // "GET pods=1 PATCH namespaces=2"
	for i := 0; i+1 < len(f); i += 2 {
		res, v, _ := strings.Cut(f[i+1], "=")
		if f[i]+" "+res == key {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

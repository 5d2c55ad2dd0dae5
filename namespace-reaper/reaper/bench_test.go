package reaper

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The scale: 5,000 user namespaces and 20,000 pods (5 in each of
// 4,000 namespaces; the other 1,000 are idle).
const (
	benchNamespaces = 5000
	benchBusy       = 4000
	benchPodsEach   = 5
)

var (
	benchOnce  sync.Once
	benchErr   error
	benchSetup time.Duration
)

const benchLabel = "kubehpc-bench"

// benchFixture creates the namespaces and pods once per test binary.
func benchFixture(b *testing.B) {
	b.Helper()
	benchOnce.Do(func() {
		start := time.Now()
		cfg := rest.CopyConfig(env.Kube.Config)
		cfg.QPS, cfg.Burst = 5000, 5000
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			benchErr = err
			return
		}
		benchErr = testenv.Parallel(benchNamespaces, 16, func(i int) error {
			ctx := context.Background()
			name := fmt.Sprintf("user-bench-%05d", i)
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				identity.OnDemandNameLabel: identity.OnDemandNameValue, benchLabel: "yes"}}}
			if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create namespace %s: %w", name, err)
			}
			if i >= benchBusy {
				return nil
			}
			for j := range benchPodsEach {
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("job-%d", j), Labels: map[string]string{"job": fmt.Sprint(j)},
						Annotations: map[string]string{identity.LifetimeAnnotation: "01h00m00s"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "jupyter", Image: "jupyter/minimal-notebook:latest",
						Command: []string{"start-notebook.sh"}, Env: []corev1.EnvVar{{Name: "HOME", Value: "/home/" + name}}}}},
				}
				if _, err := client.CoreV1().Pods(name).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					return fmt.Errorf("create pod in %s: %w", name, err)
				}
			}
			return nil
		})
		benchSetup = time.Since(start)
		fmt.Printf("bench fixture: %d namespaces, %d pods created in %v\n", benchNamespaces, benchBusy*benchPodsEach, benchSetup.Round(time.Second))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

// newBenchHarness is a dry-run reaper over the fixture's namespaces with the
// default cap of 10 (so each pass re-checks 10 idle namespaces live).
func newBenchHarness(b *testing.B, watch bool) *harness {
	return newHarness(b, harnessOpts{watch: watch, noTestLabel: true}, func(c *Config) {
		c.NamespaceLabels = []string{benchLabel + "=yes"}
		c.DryRun = true
	})
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkOncePass: one --once pass over 5,000 namespaces and 20,000 pods:
// its time, its API requests (two cluster-wide LISTs plus the PVC LIST and
// 3 requests per re-checked candidate, independent of the namespace count).
func BenchmarkOncePass(b *testing.B) {
	benchFixture(b)
	h := newBenchHarness(b, false)
	b.ReportAllocs()
	runPasses(b, h)
}

// BenchmarkWatch: watch mode over the same cluster: the time to fill the
// caches, the heap they hold, and a pass from the caches.
func BenchmarkWatch(b *testing.B) {
	benchFixture(b)
	before := heapInuse()
	start := time.Now()
	h := newBenchHarness(b, true)
	sync := time.Since(start)
	heap := heapInuse() - before
	runPasses(b, h)
	b.ReportMetric(sync.Seconds(), "cache_fill_s")
	b.ReportMetric(float64(heap)/(1<<20), "cache_heap_MB")
	b.ReportMetric(float64(len(h.r.watch.pods.ListKeys())), "cached_pods")
}

// runPasses times b.N passes of h's reaper and reports the last one.
func runPasses(b *testing.B, h *harness) {
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		h.counter.Reset()
		if err := h.r.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPass(b, h)
}

func reportPass(b *testing.B, h *harness) {
	b.ReportMetric(float64(h.counter.Total()), "api_requests/op")
	b.ReportMetric(float64(h.counter.Writes()), "writes/op")
	b.ReportMetric(float64(h.count("GET pods")), "pod_reads/op")
	b.ReportMetric(float64(h.count("GET namespaces")), "namespace_reads/op")
	b.ReportMetric(testutil.ToFloat64(h.r.metrics.candidates), "candidates")
	b.ReportMetric(testutil.ToFloat64(h.r.metrics.idle), "idle")
	b.Logf("requests in the last pass: %s", h.counter)
}

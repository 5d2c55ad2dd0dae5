package reaper

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	watchapi "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// The benchmark population (the scale): benchNamespaces namespaces
// with benchPodsPerNS pods each, every pod with a Service, a ConfigMap and a
// Secret of its job; one pod in twenty has expired.
const (
	benchNamespaces = 1000
	benchPodsPerNS  = 10
	benchExpiredPct = 5
)

// population is created once per test binary and shared by the benchmarks.
type population struct {
	once    sync.Once
	nsFlag  string
	prefix  string
	lbl     map[string]string
	ns      []string
	created time.Duration
	err     error
}

var benchPop population

// fastConfig is the admin config with client-side rate limits out of the way.
func fastConfig(qps float32, burst int) *rest.Config {
	cfg := rest.CopyConfig(env.Kube.Config)
	cfg.QPS, cfg.Burst = qps, burst
	return cfg
}

// populate creates the population (once).
func populate(b *testing.B) *population {
	b.Helper()
	p := &benchPop
	p.once.Do(func() {
		v := env.UniqueName("bench")
		p.lbl = map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue, "kubehpc-test": v}
		p.prefix = "bench-" + v + "-"
		p.nsFlag = "--user-namespace-prefix=" + p.prefix
		client, err := kubernetes.NewForConfig(fastConfig(5000, 10000))
		if err != nil {
			p.err = err
			return
		}
		start := time.Now()
		ctx := context.Background()
		for i := range benchNamespaces {
			p.ns = append(p.ns, fmt.Sprintf("bench-%s-%04d", v, i))
		}
		p.err = testenv.Parallel(len(p.ns), 24, func(i int) error {
			return createBenchNamespace(ctx, client, p.ns[i], p.lbl, i)
		})
		p.created = time.Since(start)
		fmt.Fprintf(os.Stderr, "bench: created %d namespaces, %d pods and %d companions in %v\n",
			benchNamespaces, benchNamespaces*benchPodsPerNS, 3*benchNamespaces*benchPodsPerNS, p.created.Round(time.Second))
	})
	if p.err != nil {
		b.Fatal(p.err)
	}
	return p
}

func createBenchNamespace(ctx context.Context, client kubernetes.Interface, ns string, lbl map[string]string, idx int) error {
	core := client.CoreV1()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: lbl}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	for j := range benchPodsPerNS {
		job := fmt.Sprintf("job-%d", j)
		lifetime := "24h"
		if (idx*benchPodsPerNS+j)%(100/benchExpiredPct) == 0 {
			lifetime = "1h"
		}
		labels := map[string]string{identity.ManagedByLabel: identity.OnDemandManagedBy, identity.JobLabel: job, identity.AccountLabel: "proj"}
		om := metav1.ObjectMeta{Name: job, Labels: labels, Annotations: map[string]string{identity.LifetimeAnnotation: lifetime}}
		pod := &corev1.Pod{ObjectMeta: om, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/app",
			Resources: corev1.ResourceRequirements{Requests: requests("1", "1Gi")}}}}}
		if _, err := core.Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create pod %s/%s: %w", ns, job, err)
		}
		cm := metav1.ObjectMeta{Name: job + "-configmap", Labels: labels}
		if _, err := core.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: cm, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create configmap: %w", err)
		}
		sm := metav1.ObjectMeta{Name: job + "-secret", Labels: labels}
		if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: sm, StringData: map[string]string{"password": "x"}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create secret: %w", err)
		}
		svc := metav1.ObjectMeta{Name: job + "-service", Labels: labels}
		if _, err := core.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: svc, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service: %w", err)
		}
	}
	return nil
}

// BenchmarkOncePass is one --once pass over the population: 1,000
// namespaces, 10,000 pods and 30,000 companions, 500 pods expired (deleted
// with their 1,500 companions). It reports the API requests of the pass.
func BenchmarkOncePass(b *testing.B) {
	p := populate(b)
	for b.Loop() {
		dry := newHarness(b, fastConfig(500, 1000), []string{p.nsFlag, "--warn-before=0", "--dry-run"}, true, time.Now().Add(2*time.Hour))
		start := time.Now()
		if err := dry.r.RunOnce(dry.ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "dry_run_pass_s")
		fmt.Fprintf(os.Stderr, "bench: --once --dry-run pass %v: %s\n", time.Since(start).Round(time.Millisecond), dry.counter)

		h := newHarness(b, fastConfig(500, 1000), []string{p.nsFlag, "--warn-before=0"}, true, time.Now().Add(2*time.Hour))
		start = time.Now()
		if err := h.r.RunOnce(h.ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "pass_s")
		b.ReportMetric(float64(h.counter.Total("GET")), "list_requests/op")
		b.ReportMetric(float64(h.counter.Total()), "api_requests/op")
		b.ReportMetric(float64(h.counter.Total("DELETE")), "deletes/op")
		fmt.Fprintf(os.Stderr, "bench: --once pass %v: %s\n", elapsed.Round(time.Millisecond), h.counter)
	}
}

// benchLagPods is how many short-lived pods measure the expiry lag.
const benchLagPods = 200

// BenchmarkWatch starts the watch mode over the population and reports the
// time to sync the caches, the memory they take, the duration and the API
// requests of a full resync, and the lag between a pod's walltime end and
// its deletion (seen by an independent watch) for benchLagPods pods with
// a 4s walltime.
func BenchmarkWatch(b *testing.B) {
	p := populate(b)
	admin, err := kubernetes.NewForConfig(fastConfig(5000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		h := newHarness(b, fastConfig(500, 1000), []string{p.nsFlag, "--warn-before=0"}, false, time.Time{})
		synced := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heapMB := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)

		h.counter.Reset()
		start = time.Now()
		if err := h.r.RunOnce(h.ctx); err != nil {
			b.Fatal(err)
		}
		resync := time.Since(start)
		resyncGets := h.counter.Total("GET")

		lags, addLags := measureLag(b, admin, p)
		slices.Sort(lags)
		slices.Sort(addLags)
		var own []time.Duration
		for _, e := range logsWith(h, "Reaped pod") {
			if d, ok := e.ContextMap()["lag"].(time.Duration); ok {
				own = append(own, d)
			}
		}
		slices.Sort(own)
		if len(own) > 0 {
			b.ReportMetric(own[len(own)*99/100].Seconds()*1000, "reaper_lag_p99_ms")
			fmt.Fprintf(os.Stderr, "bench: reaper's own lag (deadline to delete response) p50 %v p99 %v over %d pods; create-to-watch-ADD p50 %v p99 %v\n",
				own[len(own)/2], own[len(own)*99/100], len(own), addLags[len(addLags)/2], addLags[len(addLags)*99/100])
		}
		pct := func(q float64) float64 { return lags[int(q*float64(len(lags)-1))].Seconds() * 1000 }
		b.ReportMetric(synced.Seconds(), "cache_sync_s")
		b.ReportMetric(heapMB, "cache_heap_MB")
		b.ReportMetric(resync.Seconds()*1000, "resync_ms")
		b.ReportMetric(float64(resyncGets), "resync_list_requests")
		b.ReportMetric(pct(0.5), "lag_p50_ms")
		b.ReportMetric(pct(0.99), "lag_p99_ms")
		b.ReportMetric(lags[len(lags)-1].Seconds()*1000, "lag_max_ms")
		testenv.ReportPeakRSS(b)
		fmt.Fprintf(os.Stderr, "bench: watch synced in %v, heap +%.0f MB, resync %v with %d GETs, lag p50 %.0fms p99 %.0fms max %.0fms\n",
			synced.Round(time.Millisecond), heapMB, resync.Round(time.Millisecond), resyncGets, pct(0.5), pct(0.99), lags[len(lags)-1].Seconds()*1000)
	}
}

// measureLag creates benchLagPods pods with a 4s walltime, spread over the
// population's namespaces, and returns for each the time from its walltime
// end (creationTimestamp + 4s, as the reaper computes it) to the DELETED
// event seen by an independent watch.
func measureLag(b *testing.B, admin kubernetes.Interface, p *population) (lags, addLags []time.Duration) {
	return measureLagSpread(b, admin, p, 0)
}

// measureLagSpread is measureLag with the pods' creations spread evenly
// over spread (new expiries arriving, rather than all at once).
func measureLagSpread(b *testing.B, admin kubernetes.Interface, p *population, spread time.Duration) (lags, addLags []time.Duration) {
	b.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sel := "bench-lag=" + strconv.Itoa(os.Getpid())
	w, err := admin.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	const lifetime = 4 * time.Second
	var mu sync.Mutex
	created := map[string]time.Time{}
	var wg sync.WaitGroup
	errs := make(chan error, benchLagPods)
	sem := make(chan struct{}, 8)
	for i := range benchLagPods {
		ns := p.ns[i*len(p.ns)/benchLagPods]
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "lag-" + strconv.Itoa(i), Labels: map[string]string{
				identity.ManagedByLabel: identity.OnDemandManagedBy, identity.JobLabel: "lag-" + strconv.Itoa(i), "bench-lag": strconv.Itoa(os.Getpid())},
				Annotations: map[string]string{identity.LifetimeAnnotation: lifetime.String()}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/app"}}},
		}
		if spread > 0 {
			at := begin.Add(spread * time.Duration(i) / benchLagPods)
			_ = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, spread+time.Second, true, func(context.Context) (bool, error) {
				return !time.Now().Before(at), nil
			})
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			mu.Lock()
			created[ns+"/"+pod.Name] = time.Now()
			mu.Unlock()
			if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	for len(lags) < benchLagPods {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("watch closed after %d deletions", len(lags))
			}
			if ev.Type == watchapi.Added {
				pod := ev.Object.(*corev1.Pod)
				mu.Lock()
				addLags = append(addLags, time.Since(created[pod.Namespace+"/"+pod.Name]))
				mu.Unlock()
			}
			if ev.Type != watchapi.Deleted {
				continue
			}
			pod := ev.Object.(*corev1.Pod)
			lags = append(lags, time.Since(pod.CreationTimestamp.Add(lifetime)))
		case <-ctx.Done():
			b.Fatalf("only %d of %d short-lived pods deleted within 2 minutes", len(lags), benchLagPods)
		}
	}
	return lags, addLags
}

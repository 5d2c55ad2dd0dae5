package reaper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	watchapi "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// benchBacklog is how many pods are overdue when the daemon starts.
const benchBacklog = 500

// benchGoMemLimit is GOMEMLIMIT of the benchmarked process: the chart's
// default goMemLimit, or $KUBEHPC_BENCH_GOMEMLIMIT.
func benchGoMemLimit() string {
	if v := os.Getenv("KUBEHPC_BENCH_GOMEMLIMIT"); v != "" {
		return v
	}
	return "100MiB"
}

// BenchmarkDaemon10k runs the job-pod-reaper binary as its own process (so
// its memory is its own) with the chart's settings over the population
// (10,000 pods in 1,000 user namespaces, 30,000 companions): 500 pods, each
// with a Service, ConfigMap and Secret, are already overdue when it starts,
// and 200 pods with a 4 s walltime are created as soon as it is ready. It
// reports the time to ready, the time to clear the backlog, the expiry lag
// of the new pods (walltime end to the DELETED event of an independent
// watch), and the process's peak and final RSS and heap.
func BenchmarkDaemon10k(b *testing.B) {
	p := populate(b)
	admin, err := kubernetes.NewForConfig(fastConfig(5000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	bin := testenv.BuildBinary(b, "..")
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		backlogSel := "bench-backlog=" + strconv.Itoa(os.Getpid())
		bw, err := admin.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: backlogSel})
		if err != nil {
			b.Fatal(err)
		}
		createBacklog(b, admin, p, strings.TrimPrefix(backlogSel, "bench-backlog="))

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		// The chart's defaults (values.yaml), out of the cluster.
		cmd := exec.CommandContext(ctx, bin, "--kubeconfig="+env.Kube.KubeconfigPath, p.nsFlag, "--admin-address="+addr,
			"--log-format=json", "--log-level=warn", "--kube-api-qps=200", "--kube-api-burst=400", "--pprof")
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+benchGoMemLimit())
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		}
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		}); err != nil {
			stop()
			b.Fatalf("the reaper was not ready within 5 minutes: %v", err)
		}
		ready := time.Since(start)
		readyMem, _ := testenv.ReadMemory(cmd.Process.Pid)
		readyHWM := readyMem.Peak

		var backlogDone time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < benchBacklog; {
				select {
				case ev := <-bw.ResultChan():
					if ev.Type == watchapi.Deleted {
						n++
					}
				case <-ctx.Done():
					return
				}
			}
			backlogDone = time.Since(start)
		}()
		lags, _ := measureLagSpread(b, admin, p, 20*time.Second)
		wg.Wait()
		bw.Stop()
		slices.Sort(lags)
		mem, _ := testenv.ReadMemory(cmd.Process.Pid)
		hwm, rss := mem.Peak, mem.Current
		metrics := scrape(b, addr)
		if path := os.Getenv("KUBEHPC_BENCH_HEAP_PROFILE"); path != "" {
			saveProfile(b, "http://"+addr+"/debug/pprof/heap?gc=1", path)
		}
		stop()
		cancel()
		pct := func(q float64) float64 { return lags[int(q*float64(len(lags)-1))].Seconds() * 1000 }
		b.ReportMetric(ready.Seconds(), "ready_s")
		b.ReportMetric(backlogDone.Seconds(), "backlog_cleared_s")
		b.ReportMetric(pct(0.5), "new_lag_p50_ms")
		b.ReportMetric(pct(0.99), "new_lag_p99_ms")
		b.ReportMetric(float64(hwm)/(1<<20), "peak_rss_MiB")
		b.ReportMetric(float64(readyHWM)/(1<<20), "peak_rss_at_ready_MiB")
		b.ReportMetric(float64(rss)/(1<<20), "rss_MiB")
		b.ReportMetric(metrics["go_memstats_heap_alloc_bytes"]/(1<<20), "heap_MiB")
		fmt.Fprintf(os.Stderr, "bench: daemon ready in %v, %d overdue pods cleared %v after start, new pods' lag p50 %.0fms p99 %.0fms max %.0fms; "+
			"peak RSS %.0f MiB (%.0f MiB when ready), RSS %.0f MiB, heap %.0f MiB (GOMEMLIMIT %s), anomaly_stopped %v, rate_limited %v, retries %v\n",
			ready.Round(time.Millisecond), benchBacklog, backlogDone.Round(time.Millisecond), pct(0.5), pct(0.99), lags[len(lags)-1].Seconds()*1000,
			float64(hwm)/(1<<20), float64(readyHWM)/(1<<20), float64(rss)/(1<<20), metrics["go_memstats_heap_alloc_bytes"]/(1<<20), benchGoMemLimit(),
			metrics["job_pod_reaper_anomaly_stopped"], metrics["job_pod_reaper_rate_limited_deletions_total"], metrics["job_pod_reaper_delete_retries_total"])
	}
}

// createBacklog creates benchBacklog pods with a 1 s walltime, each with a
// Service, ConfigMap and Secret of its job, over the population's
// namespaces, and waits until all are overdue.
func createBacklog(b *testing.B, admin kubernetes.Interface, p *population, tag string) {
	b.Helper()
	ctx := context.Background()
	err := testenv.Parallel(benchBacklog, 16, func(i int) error {
		ns := p.ns[i*len(p.ns)/benchBacklog]
		job := "backlog-" + strconv.Itoa(i)
		labels := map[string]string{identity.ManagedByLabel: identity.OnDemandManagedBy, identity.JobLabel: job, "bench-backlog": tag}
		core := admin.CoreV1()
		om := metav1.ObjectMeta{Name: job, Labels: labels, Annotations: map[string]string{identity.LifetimeAnnotation: "1s"}}
		if _, err := core.Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: om, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/app"}}}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		om = metav1.ObjectMeta{Name: job, Labels: labels}
		if _, err := core.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: om}, metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: om}, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := core.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: om, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	// creationTimestamp has one-second precision: 2 s later all are overdue.
	deadline := time.Now().Add(2 * time.Second)
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return time.Now().After(deadline), nil
	})
}

// saveProfile writes what url serves to path.
func saveProfile(b *testing.B, url, path string) {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
}

// scrape reads the unlabelled samples of the admin server's /metrics.
func scrape(b *testing.B, addr string) map[string]float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = f
		}
	}
	return out
}

package reaper

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// BenchmarkDaemonChurn runs the job-pod-reaper binary under churn: pods
// with a 2 s walltime (each with a ConfigMap and a Secret of its job) are
// created at 10 per second in 20 user namespaces for
// $KUBEHPC_BENCH_CHURN (default 3m; the issue asks for an hour), and the
// process's live heap (go_memstats_heap_inuse_bytes after the runtime's
// own GC cycles), goroutines and RSS are sampled every 15 s, to show
// whether the heap levels off.
func BenchmarkDaemonChurn(b *testing.B) {
	dur := 3 * time.Minute
	if v := os.Getenv("KUBEHPC_BENCH_CHURN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	admin, err := kubernetes.NewForConfig(fastConfig(5000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	bin := testenv.BuildBinary(b, "..")
	prefix := env.UniqueName("churn") + "-"
	var nss []string
	for i := range 20 {
		nss = append(nss, env.Namespace(b, prefix+strconv.Itoa(i)+"-", nil))
	}
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.CommandContext(ctx, bin, "--kubeconfig="+env.Kube.KubeconfigPath, "--user-namespace-prefix="+prefix, "--admin-address="+addr,
			"--log-format=json", "--log-level=warn", "--kube-api-qps=200", "--kube-api-burst=400", "--interval=1m", "--pprof")
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+benchGoMemLimit())
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
		var created atomic.Int64
		churnCtx, stopChurn := context.WithTimeout(ctx, dur)
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-churnCtx.Done():
					return
				case <-tick.C:
				}
				ns := nss[i%len(nss)]
				job := "c" + strconv.Itoa(i)
				lbl := map[string]string{identity.ManagedByLabel: identity.OnDemandManagedBy, identity.JobLabel: job}
				core := admin.CoreV1()
				om := metav1.ObjectMeta{Name: job, Labels: lbl, Annotations: map[string]string{identity.LifetimeAnnotation: "2s"}}
				if _, err := core.Pods(ns).Create(churnCtx, &corev1.Pod{ObjectMeta: om, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.org/app"}}}}, metav1.CreateOptions{}); err != nil {
					continue
				}
				om = metav1.ObjectMeta{Name: job, Labels: lbl}
				_, _ = core.ConfigMaps(ns).Create(churnCtx, &corev1.ConfigMap{ObjectMeta: om}, metav1.CreateOptions{})
				_, _ = core.Secrets(ns).Create(churnCtx, &corev1.Secret{ObjectMeta: om}, metav1.CreateOptions{})
				created.Add(1)
			}
		}()
		start := time.Now()
		var first, last float64
		for {
			m := scrape(b, addr)
			mem, _ := testenv.ReadMemory(cmd.Process.Pid) // zero once the process is gone
			heap := m["go_memstats_heap_inuse_bytes"] / (1 << 20)
			if first == 0 {
				first = heap
			}
			last = heap
			fmt.Fprintf(os.Stderr, "bench: churn t=%3.0fs pods created %5d heap_inuse %5.1f MiB goroutines %3.0f rss %5.1f MiB\n",
				time.Since(start).Seconds(), created.Load(), heap, m["go_goroutines"], float64(mem.Current)/(1<<20))
			if churnCtx.Err() != nil {
				break
			}
			select {
			case <-churnCtx.Done():
			case <-time.After(15 * time.Second):
			}
		}
		stopChurn()
		b.ReportMetric(first, "heap_inuse_start_MiB")
		b.ReportMetric(last, "heap_inuse_end_MiB")
		b.ReportMetric(float64(created.Load()), "pods_created")
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		cancel()
	}
}

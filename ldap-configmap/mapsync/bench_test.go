package mapsync

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// liveHeapMB is the Go heap live after a collection, in MB: what the tool
// keeps between passes (plus the test's own clients), whatever GOMEMLIMIT.
func liveHeapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// rssFileMB is the part of this process's resident set that is file-backed
// pages (the test binary's own), in MB: outside the Go heap and GOMEMLIMIT.
func rssFileMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "RssFile:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

type benchEnv struct {
	slapd   *testenv.Slapd
	cfg     *Config
	pass    *Pass
	counter *kubeclient.RequestCounter
}

func setupBench(b *testing.B, users, groups, perUser int, mappers []string, namespaces int) *benchEnv {
	b.Helper()
	ctx := context.Background()
	sfx := "dc=bench,dc=org"
	// A non-root reader, held to slapd's size limit (500) so every search
	// pages, and syncprov's contextCSN, as on a production OpenLDAP.
	s, err := testenv.StartSlapd(ctx, testenv.SlapdOptions{Suffix: sfx, LDIF: testenv.GenerateDirectory(sfx, users, groups, perUser), Reader: true, SyncProv: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	c := NewConfig()
	c.URL, c.BindDN, c.BindPassword = s.URL, s.ReaderDN, s.ReaderPassword
	c.UserBaseDN, c.GroupBaseDN = "ou=people,"+sfx, "ou=groups,"+sfx
	c.Scheme = ldapdir.SchemeMemberUID
	c.Mappers = mappers
	c.Workers = 32 // the chart's default
	c.Namespace = env.Namespace(b, "lcm-bench-", nil)
	if namespaces > 0 {
		c.NamespaceAnnotations = true
		c.UserPrefix = env.UniqueName("b") + "-"
		createNamespaces(b, c.UserPrefix, namespaces)
	}
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	restCfg := rest.CopyConfig(env.Kube.Config)
	restCfg.QPS, restCfg.Burst = 500, 1000 // the chart's defaults
	a := env.App(b, testenv.AppOptions{Config: restCfg, Log: zap.NewNop()})
	p, err := New(c, Deps{Client: a.Client, Log: a.Log, Registry: a.Registry, Recorder: record.NewFakeRecorder(100000)})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{slapd: s, cfg: c, pass: p, counter: a.Counter}
}

// createNamespaces makes n user namespaces (user00000 …) concurrently.
func createNamespaces(b *testing.B, prefix string, n int) {
	b.Helper()
	ctx := context.Background()
	err := testenv.Parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("%suser%05d", prefix, i*(50000/max(n, 1)))
		_, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		list, _ := env.Kube.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		for _, ns := range list.Items {
			if strings.HasPrefix(ns.Name, prefix) {
				_ = env.Kube.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
			}
		}
	})
}

// step runs one pass and reports its duration, API requests, API writes
// and LDAP round trips under name.
func (e *benchEnv) step(b *testing.B, name string, wantErr bool) {
	b.Helper()
	e.counter.Reset()
	start := time.Now()
	var err error
	if dir := os.Getenv("LDAP_CONFIGMAP_BENCH_PROFILE_DIR"); dir != "" {
		f, perr := os.Create(filepath.Join(dir, b.Name()+"-"+name+".cpu.pprof"))
		if perr != nil {
			b.Fatal(perr)
		}
		defer f.Close()
		if perr := pprof.StartCPUProfile(f); perr != nil {
			b.Fatal(perr)
		}
		defer pprof.StopCPUProfile()
		// Allocation profiles before and after: compare with
		// go tool pprof -sample_index=alloc_space -base before after.
		writeHeap := func(when string) {
			runtime.GC()
			h, herr := os.Create(filepath.Join(dir, b.Name()+"-"+name+"."+when+".heap.pprof"))
			if herr != nil {
				b.Fatal(herr)
			}
			defer h.Close()
			if herr := pprof.Lookup("allocs").WriteTo(h, 0); herr != nil {
				b.Fatal(herr)
			}
		}
		writeHeap("before")
		defer writeHeap("after")
	}
	cpu := cpuSeconds()
	mb := allocMB(func() { err = e.pass.RunOnce(context.Background()) })
	b.ReportMetric(cpuSeconds()-cpu, name+"_cpu_s")
	if (err != nil) != wantErr {
		b.Fatalf("%s: RunOnce() = %v, want error %v", name, err, wantErr)
	}
	b.ReportMetric(time.Since(start).Seconds(), name+"_s")
	b.ReportMetric(mb, name+"_alloc_MB")
	b.ReportMetric(float64(e.counter.Total()), name+"_api_requests")
	b.ReportMetric(float64(e.counter.Writes()), name+"_api_writes")
	b.ReportMetric(float64(e.pass.LastLDAPRequests.Load()), name+"_ldap_requests")
	if d := time.Duration(e.pass.LastAnnotationWrites.Load()); d > 0 && e.counter.Total("PATCH") > 100 {
		b.ReportMetric(float64(e.counter.Total("PATCH"))/d.Seconds(), name+"_namespace_patches/s")
	}
}

// watchNamespaces starts the daemon's namespace watch (Pass.Start) and
// waits for it to sync: the daemon starts it beside its first pass, which
// lists the namespaces itself, as the cold step above did.
func (e *benchEnv) watchNamespaces(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.pass.Start(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	testenv.EventuallyWithin(b, time.Minute, "the namespace watch to sync", func() (bool, error) {
		_, ok := e.pass.watchedNamespaces()
		return ok, nil
	})
}

func (e *benchEnv) deleteOneUser(b *testing.B) {
	b.Helper()
	if err := e.slapd.Modify(context.Background(), "dn: uid=user00001,ou=people,"+e.slapd.Suffix+"\nchangetype: delete\n"); err != nil {
		b.Fatal(err)
	}
}

// cpuSeconds is this process's user+system CPU time: the tool's own time
// (slapd, etcd and the API server are other processes).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// allocMB runs f and returns the MB it allocated.
func allocMB(f func()) float64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
}

func (e *benchEnv) changeOneUser(b *testing.B) {
	b.Helper()
	err := e.slapd.Modify(context.Background(), "dn: uid=user00000,ou=people,"+e.slapd.Suffix+
		"\nchangetype: modify\nreplace: homeDirectory\nhomeDirectory: /home2/user00000\n")
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConfigMaps: every mapper at the largest round size whose maps all
// fit in 1 MiB (5,000 users, 500 groups, 10 groups each).
func BenchmarkConfigMaps(b *testing.B) {
	for range b.N {
		e := setupBench(b, 5000, 500, 10, append([]string(nil), Mappers...), 0)
		e.step(b, "cold", false)
		e.step(b, "unchanged", false)
		if w := e.counter.Writes(); w != 0 {
			b.Fatalf("unchanged pass made %d writes (%s), want 0", w, e.counter)
		}
		e.changeOneUser(b)
		e.step(b, "one_changed", false)
		e.deleteOneUser(b)
		e.step(b, "one_deleted", false)
		for _, m := range Mappers {
			size := testutil.ToFloat64(e.pass.m.size.WithLabelValues(ConfigMapName(m)))
			b.ReportMetric(size/5000, m+"_bytes/user")
		}
		testenv.ReportPeakRSS(b)
	}
}

// BenchmarkDirectory50k: the scale, 50,000 users and 5,000 groups
// (10 each). user-uid-map (1,000,000 bytes) fits and is written; the gids
// and groups maps are over 1 MiB and refused (the pass reports the size
// error), while the namespace annotations, which have no ceiling, are
// written for the 5,000 users that have a namespace.
func BenchmarkDirectory50k(b *testing.B) {
	for range b.N {
		e := setupBench(b, 50000, 5000, 10, []string{MapperUID, MapperGIDs, MapperGroups}, 5000)
		testenv.ReportPeakRSSAs(b, "setup_peak_rss_MB")
		if err := testenv.ResetPeakRSS(); err != nil {
			b.Fatal(err)
		}
		e.step(b, "cold", true)
		e.watchNamespaces(b)
		e.step(b, "unchanged", true)
		if w := e.counter.Writes(); w != 0 {
			b.Fatalf("unchanged pass made %d writes (%s), want 0", w, e.counter)
		}
		e.changeOneUser(b)
		e.step(b, "one_changed", true)
		e.deleteOneUser(b)
		e.step(b, "one_deleted", true)
		for _, m := range e.cfg.Mappers {
			size := testutil.ToFloat64(e.pass.m.size.WithLabelValues(ConfigMapName(m)))
			b.ReportMetric(size/50000, m+"_bytes/user")
		}
		b.ReportMetric(testutil.ToFloat64(e.pass.m.annotated), "annotated_namespaces")
		testenv.ReportPeakRSSAs(b, "passes_peak_rss_MB")
		b.ReportMetric(liveHeapMB(), "live_heap_MB")
		b.ReportMetric(rssFileMB(), "rss_file_MB")
		if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
			b.ReportMetric(float64(l)/(1<<20), "gomemlimit_MiB")
		}
	}
}

package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/admin"
)

// TestReadyFollowsAPIServer: /readyz and api_server_reachable follow whether
// the API server answers: ready while it does, not ready (with the reason)
// after two failed checks in a row, ready again when it answers; /healthz
// stays ok throughout (a pod is not restarted for an API outage).
func TestReadyFollowsAPIServer(t *testing.T) {
	var down atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "etcd is away", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	defer api.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pass := PassFunc(func(context.Context) error { return nil })
	r, err := New(Options{Interval: time.Hour, ReadyIntervals: 1, APIProbeInterval: 5 * time.Millisecond},
		Deps{MetricsNamespace: "tool", Version: "test", Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: reg, Client: client}, pass)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer((&admin.Server{Gatherer: reg, Ready: r.Ready, Log: zap.NewNop()}).Handler())
	defer srv.Close()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 20*time.Second, true,
			func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	reachable := func() float64 { return testutil.ToFloat64(r.metrics.apiReachable) }
	waitFor("ready", func() bool { return r.Ready() == nil })
	down.Store(true)
	waitFor("not ready while the API server fails", func() bool { return r.Ready() != nil })
	if err := r.Ready(); !strings.Contains(err.Error(), "cannot reach the API server") {
		t.Errorf("Ready() = %v, want it to say the API server is unreachable", err)
	}
	if got := reachable(); got != 0 {
		t.Errorf("api_server_reachable = %v, want 0", got)
	}
	if c := get(t, srv.URL+"/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d, want 503", c)
	}
	if c := get(t, srv.URL+"/healthz"); c != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", c)
	}
	down.Store(false)
	waitFor("ready again", func() bool { return r.Ready() == nil && reachable() == 1 })
}

// TestPprofOptIn: /debug/pprof is served only when asked for.
func TestPprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer((&admin.Server{Gatherer: prometheus.NewRegistry(), Log: zap.NewNop(), Pprof: on}).Handler())
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
			if c := get(t, srv.URL+p); c != want {
				t.Errorf("Pprof %v: GET %s = %d, want %d", on, p, c, want)
			}
		}
		srv.Close()
	}
}

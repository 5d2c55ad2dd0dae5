package daemon

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/admin"
)

type countingPass struct{ n atomic.Int64 }

func (p *countingPass) RunOnce(context.Context) error { p.n.Add(1); return nil }

// TestAdminEndpoints serves /metrics, /healthz and /readyz from Run.
func TestAdminEndpoints(t *testing.T) {
	p := &countingPass{}
	reg := prometheus.NewRegistry()
	r, err := New(Options{Interval: time.Hour, ShutdownTimeout: time.Second, ReadyIntervals: 1, AdminAddr: "127.0.0.1:0"},
		Deps{MetricsNamespace: "tool", Version: "v1", Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: reg}, p)
	if err != nil {
		t.Fatal(err)
	}
	// Bind the admin port ourselves to learn it: run the server directly.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, srv := listenAdmin(t, r)
	go func() { _ = srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if code := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any pass = %d, want 503", code)
	}
	if err := r.runPass(ctx); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		if code := get(t, base+path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}

func listenAdmin(t *testing.T, r *Runner) (net.Listener, *admin.Server) {
	t.Helper()
	srv := &admin.Server{Addr: "127.0.0.1:0", Gatherer: r.deps.Registry, Ready: r.Ready, Log: r.deps.Log}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	return ln, srv
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

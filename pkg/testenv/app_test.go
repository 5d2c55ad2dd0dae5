package testenv

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/daemon"
)

// TestApp proves Env.App builds what app.Run gives a tool: a client whose
// requests are counted, as the identity asked for, with a fake clock when
// asked.
func TestApp(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	a := env.App(t, AppOptions{Now: now, Daemon: daemon.Options{Once: true}})
	if a.FakeClock == nil || a.Env.Clock != a.FakeClock || !a.Env.Clock.Now().Equal(now) {
		t.Errorf("App(Now: %v) clock = %v (fake %v), want a fake clock at %v", now, a.Env.Clock, a.FakeClock, now)
	}
	if !a.Env.Daemon.Once || a.Env.Log == nil || a.Env.Registry == nil {
		t.Errorf("App() = %+v, want Daemon.Once, a logger and a registry", a.Env)
	}
	if _, err := a.Env.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace default as the admin: %v", err)
	}
	if got := a.Counter.Total(); got != 1 {
		t.Errorf("Counter.Total() after one GET = %d, want 1", got)
	}
	home := env.Namespace(t, "app-", nil)
	sa := env.App(t, AppOptions{Config: env.Kube.ServiceAccountConfig(home, "nobody")})
	if _, ok := sa.Env.Clock.(clock.RealClock); !ok || sa.FakeClock != nil {
		t.Errorf("App() without Now: clock %T, want the real clock", sa.Env.Clock)
	}
	if _, err := sa.Env.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Error("get namespace default as an unbound ServiceAccount succeeded, want Forbidden")
	}
}

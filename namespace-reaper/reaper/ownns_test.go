package reaper

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
)

// TestBuildProtectsTheNamespaceItRunsIn: in a cluster the tool's own
// namespace (the ServiceAccount volume's namespace file) is protected even
// when neither --own-namespace, $POD_NAMESPACE nor a Lease names it, as in a
// catch-all dry run started by hand inside the cluster.
func TestBuildProtectsTheNamespaceItRunsIn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "namespace")
	if err := os.WriteFile(file, []byte("reaper-home\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewConfig()
	if _, err := app.Parse(tool, []string{"--namespace-labels=", "--namespace-regexp=.*", "--dry-run", "--once"}, apptest.NoEnv, io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(c.Policy().Protected, "reaper-home") {
		t.Fatal("reaper-home protected before Build")
	}
	c.namespaceFile = file
	if _, err := c.Build(context.Background(), app.Env{Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: prometheus.NewRegistry(),
		RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	if !slices.Contains(c.Policy().Protected, "reaper-home") {
		t.Errorf("Protected = %v, want the namespace the tool runs in (reaper-home)", c.Policy().Protected)
	}

	// Outside a cluster there is no file, and nothing more is protected.
	c2 := NewConfig()
	c2.namespaceFile = filepath.Join(t.TempDir(), "missing")
	if _, err := app.Parse(tool, []string{"--namespace-labels=", "--namespace-regexp=.*", "--once"}, apptest.NoEnv, io.Discard, c2); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Build(context.Background(), app.Env{Log: zap.NewNop(), Clock: clock.RealClock{}, Registry: prometheus.NewRegistry(),
		RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}}); err != nil {
		t.Fatalf("Build without a namespace file: %v", err)
	}
	if len(c2.Policy().Protected) != 0 {
		t.Errorf("Protected = %v outside a cluster, want none", c2.Policy().Protected)
	}
}

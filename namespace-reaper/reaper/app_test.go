package reaper

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
)

// TestAppRunOnce runs the tool as main does (argv, env, kubeconfig) for one
// pass against the real API server.
func TestAppRunOnce(t *testing.T) {
	sel := newHarness(t, harnessOpts{}, nil)
	young := sel.namespace(t, nil)
	var out bytes.Buffer
	// The selector has a comma, so it is quoted (the flag is a CSV list of
	// selectors, OR-ed).
	args := []string{"--once", "--kubeconfig=" + env.Kube.KubeconfigPath, `--namespace-labels="` + labelSelector(sel.labels) + `"`, "--log-format=json"}
	if err := app.Run(context.Background(), tool, args, apptest.Lookup(map[string]string{"NAMESPACE_REAPER_DRY_RUN": "true"}), &out, NewConfig()); err != nil {
		t.Fatalf("Run(%q) = %v\n%s", args, err, out.String())
	}
	for _, want := range []string{`"msg":"Finished pass"`, `"candidates":1`, `"kept.too_young":1`, `"dryRun":true`, `"msg":"Pass succeeded"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Run(%q) output lacks %s:\n%s", args, want, out.String())
		}
	}
	if deletionRequested(t, young) {
		t.Errorf("namespace %s, just created, was deleted", young)
	}
}

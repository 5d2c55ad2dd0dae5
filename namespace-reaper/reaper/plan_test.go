package reaper

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// planCase is a testdata/plan/*.yaml file: a snapshot, the flags and the
// time of the pass.
type planCase struct {
	Now              time.Time            `json:"now"`
	Args             []string             `json:"args"`
	WithPVCs         []string             `json:"withPVCs"`
	PrometheusActive []string             `json:"prometheusActive"`
	Observed         map[string]time.Time `json:"observed"`
	Namespaces       []corev1.Namespace   `json:"namespaces"`
	Pods             []corev1.Pod         `json:"pods"`
}

// TestPlanGolden plans each testdata/plan/*.yaml snapshot without a cluster
// and compares the plan with the .golden file beside it; -update rewrites
// them. The integration tests prove reading the snapshot and applying.
func TestPlanGolden(t *testing.T) {
	testenv.Cases(t, filepath.Join("testdata", "plan"), func(t *testing.T, file string, in *planCase) {
		c := NewConfig()
		if _, err := app.Parse(tool, in.Args, apptest.NoEnv, io.Discard, c); err != nil {
			t.Fatalf("Parse(%q) = %v", in.Args, err)
		}
		s := snapshot{pods: map[string][]*corev1.Pod{}, observed: in.Observed, withPVCs: map[string]bool{}, promActive: map[string]time.Time{}}
		for i := range in.Namespaces {
			s.namespaces = append(s.namespaces, &in.Namespaces[i])
		}
		for i := range in.Pods {
			p := &in.Pods[i]
			s.pods[p.Namespace] = append(s.pods[p.Namespace], p)
		}
		for _, ns := range in.WithPVCs {
			s.withPVCs[ns] = true
		}
		for _, ns := range in.PrometheusActive {
			s.promActive[ns] = in.Now
		}
		policy := c.Policy()
		got := renderPlan(policy.Plan(s, in.Now))
		golden := strings.TrimSuffix(file, ".yaml") + ".golden"
		if diff := cmp.Diff(testenv.Golden(t, golden, got, *update), got); diff != "" {
			t.Errorf("Plan(%s) differs from %s (-want +got):\n%s", file, golden, diff)
		}
	})
}

// renderPlan writes a plan as the golden files hold it.
func renderPlan(p plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "selected: %d\n", p.selected)
	fmt.Fprintf(&b, "idle, in deletion order:\n")
	for _, c := range p.idle {
		fmt.Fprintf(&b, "  %s: last activity %s, last login %s\n", c.ns.Name, describeTime(c.decision.LastActivity), describeTime(c.decision.LastLogin))
	}
	fmt.Fprintf(&b, "kept:\n")
	for _, r := range keptReasons {
		if n := p.kept[r]; n > 0 {
			fmt.Fprintf(&b, "  %s: %d\n", r, n)
		}
	}
	fmt.Fprintf(&b, "unreadable annotations:\n")
	for _, c := range p.unreadable {
		fmt.Fprintf(&b, "  %s: %s: %s\n", c.ns.Name, c.decision.Reason, c.decision.Detail)
	}
	return b.String()
}

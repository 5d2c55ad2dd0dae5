package bootstrap

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// reconcileCase is a testdata/reconcile/*.yaml file: the managed namespaces
// as a pass reads them (each live Namespace with the template rendered for
// its user) and the live objects. The rendered objects get the template
// hash annotation as render stamps it; a live object whose hash annotation
// is "rendered" carries the hash of the rendered object of the same name.
type reconcileCase struct {
	Namespaces []struct {
		Live      map[string]any   `json:"live"`
		Namespace map[string]any   `json:"namespace"`
		Objects   []map[string]any `json:"objects"`
	} `json:"namespaces"`
	Existing []map[string]any `json:"existing"`
}

// TestReconcilePlanGolden plans each testdata/reconcile/*.yaml snapshot
// without a cluster and compares the plan with the .golden file beside it;
// -update rewrites them. The integration tests (TestReconcileCorrectsDrift,
// TestReconcileDryRun) prove reading the snapshot and applying the plan.
func TestReconcilePlanGolden(t *testing.T) {
	testenv.Cases(t, filepath.Join("testdata", "reconcile"), func(t *testing.T, file string, in *reconcileCase) {
		hashes := map[objectKey]string{}
		stamp := func(m map[string]any) *unstructured.Unstructured {
			o := &unstructured.Unstructured{Object: m}
			if o.GetAnnotations()[HashAnnotation] == "" {
				setAnnotations(o, map[string]string{HashAnnotation: templateHash(o)})
			}
			hashes[keyOf(o)] = o.GetAnnotations()[HashAnnotation]
			return o
		}
		var live []*unstructured.Unstructured
		managed := make([]managedNamespace, len(in.Namespaces))
		for i, n := range in.Namespaces {
			managed[i] = managedNamespace{Live: &unstructured.Unstructured{Object: n.Live}, Namespace: stamp(n.Namespace)}
			live = append(live, managed[i].Live)
			for _, o := range n.Objects {
				managed[i].Objects = append(managed[i].Objects, stamp(o))
			}
		}
		existing := map[objectKey]*unstructured.Unstructured{}
		for _, m := range in.Existing {
			o := &unstructured.Unstructured{Object: m}
			existing[keyOf(o)] = o
			live = append(live, o)
		}
		for _, o := range live {
			if o.GetAnnotations()[HashAnnotation] == "rendered" {
				setAnnotations(o, map[string]string{HashAnnotation: hashes[keyOf(o)]})
			}
		}
		got := renderReconcilePlan(planReconcile(managed, existing))
		golden := strings.TrimSuffix(file, ".yaml") + ".golden"
		if diff := cmp.Diff(testenv.Golden(t, golden, got, *update), got); diff != "" {
			t.Errorf("planReconcile(%s) differs from %s (-want +got):\n%s", file, golden, diff)
		}
	})
}

// renderReconcilePlan writes a plan as the golden files hold it: each
// namespace to correct with the objects to apply, in order, and why; for an
// applied Namespace, the login and identity annotations it keeps.
func renderReconcilePlan(p reconcilePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "corrections, in order:\n")
	for _, c := range p.Corrections {
		fmt.Fprintf(&b, "  %s:\n", c.Namespace)
		for i, o := range c.Objects {
			fmt.Fprintf(&b, "    %s (%s)\n", Describe(o), c.Why[i])
			if o.GetKind() != "Namespace" {
				continue
			}
			for _, k := range preservedAnnotations() {
				if v, ok := o.GetAnnotations()[k]; ok {
					fmt.Fprintf(&b, "      keeps %s=%s\n", k, v)
				}
			}
		}
	}
	fmt.Fprintf(&b, "unchanged: %d\n", p.Unchanged)
	return b.String()
}

package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// render is one chart with one values file to lint, render and validate.
type render struct {
	name, chart, values string
}

// renders lists every chart with its default values, and the umbrella with
// every example in ci/.
func renders(t *testing.T) []render {
	t.Helper()
	out := []render{{name: "kubehpc/default", chart: umbrella(t)}}
	for _, s := range subcharts {
		out = append(out, render{name: s + "/default", chart: subchart(t, s)})
	}
	ci, err := filepath.Glob(filepath.Join(umbrella(t), "ci", "*.yaml"))
	if err != nil || len(ci) == 0 {
		t.Fatalf("no example values in ci/: %v", err)
	}
	for _, f := range ci {
		out = append(out, render{name: "kubehpc/" + strings.TrimSuffix(filepath.Base(f), ".yaml"), chart: umbrella(t), values: f})
	}
	return out
}

func (r render) args() []string {
	if r.values == "" {
		return nil
	}
	return []string{"--values", r.values}
}

// TestLint runs helm lint --strict on every chart with its default values and
// on the umbrella with each example.
func TestLint(t *testing.T) {
	for _, r := range renders(t) {
		t.Run(r.name, func(t *testing.T) {
			if _, err := helm(t, append([]string{"lint", "--strict", r.chart}, r.args()...)...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTemplateServerDryRun renders every chart and example and has the real
// API server validate each object (kubectl apply --dry-run=server: strict
// field validation and admission), with the CRDs they use installed:
// Kyverno's ClusterPolicy and the Prometheus Operator's ServiceMonitor.
func TestTemplateServerDryRun(t *testing.T) {
	installCRDs(t)
	for i, r := range renders(t) {
		t.Run(r.name, func(t *testing.T) {
			ns := fmt.Sprintf("dryrun-%d", i)
			out, err := helm(t, append([]string{"template", "kubehpc", r.chart, "--namespace", ns}, r.args()...)...)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocs(t, out)
			if len(docs) < 3 {
				t.Fatalf("helm template rendered %d objects, want more", len(docs))
			}
			for _, d := range docs {
				if n := d.GetNamespace(); n != "" {
					ensureNamespace(t, n)
				}
				if d.GetNamespace() == "" && namespaced(d.GetKind()) {
					t.Errorf("%s %s has no namespace", d.GetKind(), d.GetName())
				}
			}
			ensureNamespace(t, ns)
			f := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "-f", f); err != nil {
				t.Errorf("server dry-run of %s: %v", r.name, err)
			}
		})
	}
}

// TestSchemaViolations proves each chart's values.schema.json (and the
// templates' own checks) reject bad values at helm template time, in the
// umbrella (where helm lint may miss subchart schema violations) and alone.
func TestSchemaViolations(t *testing.T) {
	cases := []struct {
		name, chart string
		set         []string
		want        string
	}{
		{"unknown top-level key", "kubehpc", []string{"bogus=1"}, "bogus"},
		{"unknown subchart key", "kubehpc", []string{"ldap-configmap.bogus=1"}, "bogus"},
		{"negative replicas", "kubehpc", []string{"job-pod-reaper.replicaCount=-1"}, "replicaCount"},
		{"unknown mode", "kubehpc", []string{"namespace-reaper.mode=daemonset"}, "mode"},
		{"unknown policy engine", "kubehpc", []string{"policies.engine=opa"}, "engine"},
		{"unknown identity source", "kubehpc", []string{"policies.identitySource=ldap"}, "identitySource"},
		{"bad walltime maximum", "kubehpc", []string{"policies.lifetime.max=1d"}, "max"},
		{"bad LDAP URL", "kubehpc", []string{"ldap-configmap.ldap.url=http://ldap"}, "url"},
		{"unknown mapper", "kubehpc", []string{"ldap-configmap.mappers={user-shell}"}, "mappers"},
		{"two replicas without leader election", "kubehpc", []string{"job-pod-reaper.replicaCount=2"}, "needs leaderElection.enabled=true"},
		{"enabled not a boolean", "kubehpc", []string{"namespace-reaper.enabled=maybe"}, "enabled"},
		{"subchart alone: unknown key", "policies", []string{"rules.bogus=true"}, "bogus"},
		{"subchart alone: Strict neither auto nor a boolean", "policies", []string{"rules.supplementalGroupsPolicyStrict=maybe"}, "supplementalGroupsPolicyStrict"},
		{"excluded namespace inside the user prefix", "kubehpc", []string{"policies.excludedNamespaces={monitoring,user-operator}"},
			`policies.excludedNamespaces: "user-operator" starts with namespacePrefix "user-"`},
		{"subchart alone: excluded namespace inside the prefix, Kyverno", "policies", []string{"engine=kyverno", "excludedNamespaces={user-operator}"}, "always gets the rules"},
		{"subchart alone: bad scope", "job-pod-reaper", []string{"rbac.scope=everywhere"}, "scope"},
		{"subchart alone: bad CIDR", "namespace-bootstrap", []string{"networkPolicy.allowCIDRs={10.0.0.1}"}, "allowCIDRs"},
		// global is validated by kubehpc-lib's schema wherever the library is
		// used: a prefix that could escape the guards' and policies' CEL
		// string literals never renders, in the umbrella or a chart alone.
		{"global prefix breaking out of CEL", "kubehpc", []string{"global.namespacePrefix=u') || true || ('"}, "namespacePrefix"},
		{"global prefix empty", "kubehpc", []string{"global.namespacePrefix="}, "namespacePrefix"},
		{"subchart alone: global prefix breaking out of CEL", "policies", []string{"global.namespacePrefix=u' || true || '"}, "namespacePrefix"},
		{"subchart alone: global prefix with capitals", "job-pod-reaper", []string{"global.namespacePrefix=User-"}, "namespacePrefix"},
		{"bad global LDAP URL", "kubehpc", []string{"global.ldap.url=http://ldap"}, "url"},
		{"subchart alone: unknown global LDAP key", "namespace-bootstrap", []string{"global.ldap.bogus=x"}, "bogus"},
		{"library values set", "kubehpc", []string{"kubehpc-lib.bogus=x"}, "bogus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := umbrella(t)
			if tc.chart != "kubehpc" {
				dir = subchart(t, tc.chart)
			}
			args := []string{"template", "kubehpc", dir}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %v: err = %v, want an error about %q", tc.set, err, tc.want)
			}
		})
	}
	// The defaults of each chart pass the same gate.
	for _, s := range append([]string{"kubehpc"}, subcharts...) {
		dir := umbrella(t)
		if s != "kubehpc" {
			dir = subchart(t, s)
		}
		if _, err := helm(t, "template", "kubehpc", dir); err != nil {
			t.Errorf("helm template %s with its defaults: %v", s, err)
		}
	}
}

// TestStrictGroupsByKubeVersion: rule 2's supplementalGroupsPolicy: Strict is
// required by default only where the field exists (Kubernetes 1.33+), so
// older clusters are not locked out; it can be forced either way.
func TestStrictGroupsByKubeVersion(t *testing.T) {
	const rule = "supplementalGroupsPolicy must be Strict"
	cases := []struct {
		version, set string
		want         bool
	}{
		{"1.37.2", "", true},
		{"1.33.0", "", true},
		{"1.32.5", "", false},
		{"1.32.5", "rules.supplementalGroupsPolicyStrict=true", true},
		{"1.37.2", "rules.supplementalGroupsPolicyStrict=false", false},
	}
	for _, tc := range cases {
		for _, engine := range []string{"vap", "kyverno"} {
			args := []string{"template", "kubehpc", subchart(t, "policies"), "--kube-version", tc.version, "--set", "engine=" + engine}
			if tc.set != "" {
				args = append(args, "--set", tc.set)
			}
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(out, rule); got != tc.want {
				t.Errorf("%s on Kubernetes %s with %q: Strict rule rendered = %v, want %v", engine, tc.version, tc.set, got, tc.want)
			}
		}
	}
}

// TestChartsDeclareGlobalAndEnabled checks every chart's schema declares
// global and enabled, and its values.yaml has no duplicate keys.
func TestChartsDeclareGlobalAndEnabled(t *testing.T) {
	for _, s := range append([]string{"kubehpc"}, subcharts...) {
		dir := umbrella(t)
		if s != "kubehpc" {
			dir = subchart(t, s)
		}
		var schema struct {
			Properties map[string]any `json:"properties"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &schema); err != nil {
			t.Fatalf("%s/values.schema.json: %v", s, err)
		}
		for _, k := range []string{"global", "enabled"} {
			if _, ok := schema.Properties[k]; !ok {
				t.Errorf("%s/values.schema.json does not declare %q", s, k)
			}
		}
		v, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var values map[string]any
		if err := yaml.UnmarshalStrict(v, &values); err != nil {
			t.Errorf("%s/values.yaml: %v", s, err)
		}
	}
}

// library is the library chart's directory.
func library(t testing.TB) string { return subchart(t, "kubehpc-lib") }

// TestToolChartsUseLibrary: the shared helpers are defined once, in the
// library chart kubehpc-lib, which every tool chart declares as a file://
// dependency and finds through a link in its charts/ (so it renders from a
// checkout); no chart defines a kubehpc.* template of its own (Helm's named
// templates are global across a release: a second definition would silently
// replace the library's).
func TestToolChartsUseLibrary(t *testing.T) {
	lib := library(t)
	var libMeta struct {
		Name, Version, Type string
	}
	b, err := os.ReadFile(filepath.Join(lib, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &libMeta); err != nil {
		t.Fatal(err)
	}
	if libMeta.Name != "kubehpc-lib" || libMeta.Type != "library" {
		t.Fatalf("kubehpc-lib/Chart.yaml: name %q type %q, want kubehpc-lib, library", libMeta.Name, libMeta.Type)
	}
	for _, s := range libraryUsers {
		t.Run(s, func(t *testing.T) {
			dir := subchart(t, s)
			var meta struct {
				Dependencies []struct{ Name, Version, Repository string }
			}
			b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, d := range meta.Dependencies {
				if d.Name == "kubehpc-lib" {
					found = true
					if d.Repository != "file://../kubehpc-lib" || d.Version != libMeta.Version {
						t.Errorf("%s depends on kubehpc-lib %s from %s, want %s from file://../kubehpc-lib", s, d.Version, d.Repository, libMeta.Version)
					}
				}
			}
			if !found {
				t.Errorf("%s/Chart.yaml does not depend on kubehpc-lib", s)
			}
			link := filepath.Join(dir, "charts", "kubehpc-lib")
			if target, err := os.Readlink(link); err != nil || target != "../../kubehpc-lib" {
				t.Errorf("%s: charts/kubehpc-lib = %q (%v), want a link to ../../kubehpc-lib", s, target, err)
			}
		})
	}
	// One definition of each shared helper: in the library only.
	err = filepath.WalkDir(umbrella(t), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 || (d.IsDir() && path == lib) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.Contains(path, string(filepath.Separator)+"templates"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `define "kubehpc.`) {
			t.Errorf("%s defines a kubehpc.* template: shared helpers belong in kubehpc-lib", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := helm(t, "lint", "--strict", lib); err != nil {
		t.Error(err)
	}
}

// splitDocs parses a multi-document YAML stream into objects.
func splitDocs(t *testing.T, s string) []*unstructuredObj {
	t.Helper()
	var out []*unstructuredObj
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096)
	for {
		var o unstructuredObj
		if err := d.Decode(&o.m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("parse rendered YAML: %v", err)
		}
		if len(o.m) > 0 {
			out = append(out, &o)
		}
	}
	return out
}

type unstructuredObj struct{ m map[string]any }

func (o *unstructuredObj) meta() map[string]any {
	m, _ := o.m["metadata"].(map[string]any)
	return m
}
func (o *unstructuredObj) GetKind() string      { s, _ := o.m["kind"].(string); return s }
func (o *unstructuredObj) GetName() string      { s, _ := o.meta()["name"].(string); return s }
func (o *unstructuredObj) GetNamespace() string { s, _ := o.meta()["namespace"].(string); return s }

// namespaced reports whether a kind the charts render is namespaced.
func namespaced(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterPolicy", "Namespace":
		return false
	}
	return true
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.Kube.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

var (
	crdOnce sync.Once
	crdErr  error
)

// installCRDs installs Kyverno's ClusterPolicy CRD (from the Kyverno module
// the CLI is built from) and a ServiceMonitor CRD, and waits until they serve.
func installCRDs(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		dir, err := kyvernoModuleDir(t)
		if err != nil {
			crdErr = err
			return
		}
		for _, f := range []string{filepath.Join(dir, "config", "crds", "kyverno", "kyverno.io_clusterpolicies.yaml"), filepath.Join("testdata", "servicemonitor-crd.yaml")} {
			if _, err := kubectl(t, "apply", "--server-side", "-f", f); err != nil {
				crdErr = err
				return
			}
		}
		// Poll until the new resources are served (bounded).
		var last error
		err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
			_, last = kubectl(t, "get", "clusterpolicies.kyverno.io,servicemonitors.monitoring.coreos.com", "--all-namespaces")
			return last == nil, nil
		})
		if err != nil {
			crdErr = fmt.Errorf("CRDs not served within 60s: %w (last: %v)", err, last)
		}
	})
	if crdErr != nil {
		t.Fatalf("install CRDs: %v", crdErr)
	}
}

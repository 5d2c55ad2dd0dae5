package tests

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var update = flag.Bool("update", false, "regenerate the generated files of the Kyverno suites (policy.yaml, resources.yaml, kyverno-test.yaml) and the charts' README values tables")

// kyvernoBinary returns the Kyverno CLI: $KUBEHPC_KYVERNO, or the one
// hack/kyverno.sh builds and caches (about 9 minutes the first time).
func kyvernoBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KUBEHPC_KYVERNO"); p != "" {
		return p
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A cold build takes about 9 minutes on 2 cores (make test's deps step
	// normally did it already).
	out, err := runTimeout(t, 25*time.Minute, filepath.Join(root, "hack", "kyverno.sh"))
	return strings.TrimSpace(must(t, out, err))
}

// kyvernoModuleDir is the source of the Kyverno module the CLI is built from
// (for its CRDs).
func kyvernoModuleDir(t testing.TB) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out, err := run(t, "go", "-C", filepath.Join(root, "hack", "kyverno"), "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// kyvernoSuite is charts/kubehpc/charts/policies/tests/kyverno.
func kyvernoSuite(t *testing.T) string {
	return filepath.Join(subchart(t, "policies"), "tests", "kyverno")
}

// TestKyvernoCLI runs `kyverno test` on the suites under
// policies/tests/kyverno: the attack catalogue of TestVAPAttackCatalogue
// against the Kyverno ClusterPolicies the chart renders (identity from the
// ConfigMaps, given as test variables), and against the chart's own
// ValidatingAdmissionPolicies. The generated files are checked to match what
// the chart and the catalogue produce now (-update rewrites them).
func TestKyvernoCLI(t *testing.T) {
	suite := kyvernoSuite(t)
	generateSuite(t, filepath.Join(suite, "configmaps"), "kyverno", "configMaps")
	generateSuite(t, filepath.Join(suite, "annotations"), "kyverno", "annotations")
	generateSuite(t, filepath.Join(suite, "vap"), "vap", "configMaps")
	generateCatalogueSuite(t, filepath.Join(suite, "catalogue"))
	// The hand-written suites (rule 8 on UPDATE, rule 9 by user) test the
	// policies the chart renders now.
	for _, dir := range []string{"immutable", "namespace-identity"} {
		policy, err := helm(t, "template", "kubehpc", subchart(t, "policies"), "--namespace", "kubehpc",
			"--values", filepath.Join(suite, "test-values.yaml"), "--set", "engine=kyverno", "--show-only", "templates/kyverno.yaml")
		if err != nil {
			t.Fatal(err)
		}
		checkGenerated(t, filepath.Join(suite, dir, "policy.yaml"), generatedHeader+withoutWebhookConfiguration(policy))
	}
	want := countResults(t, suite)
	bin := kyvernoBinary(t)
	out, err := run(t, bin, "test", suite, "--output-format", "json")
	if err != nil {
		t.Fatalf("kyverno test: %v\n%s", err, out)
	}
	// Every expected result was checked and matched: the CLI counts a "skip"
	// (e.g. an invalid policy) as passed in its summary, so read the rows.
	type row struct {
		Policy   string `json:"POLICY"`
		Rule     string `json:"RULE"`
		Resource string `json:"RESOURCE"`
		Result   string `json:"RESULT"`
		Reason   string `json:"REASON"`
		Message  string `json:"MESSAGE"`
	}
	var rows []row
	for rest := out; ; {
		i := strings.Index(rest, "\n[")
		if i < 0 {
			break
		}
		dec := json.NewDecoder(strings.NewReader(rest[i+1:]))
		var part []row
		if err := dec.Decode(&part); err != nil {
			t.Fatalf("parse kyverno test output: %v\n%s", err, out)
		}
		rows = append(rows, part...)
		rest = rest[i+1+int(dec.InputOffset()):]
	}
	for _, r := range rows {
		if r.Result != "Pass" || r.Reason != "Ok" {
			t.Errorf("kyverno test: %s %s on %s: %s (%s) %s", r.Policy, r.Rule, r.Resource, r.Result, r.Reason, r.Message)
		}
	}
	if len(rows) != want {
		t.Errorf("kyverno test checked %d results, want %d", len(rows), want)
	}
	t.Logf("kyverno test: %d results checked, all as expected", len(rows))
}

// vapPolicy is the ValidatingAdmissionPolicy that holds a Kyverno rule of
// the catalogue.
// (identity from the ConfigMaps: one policy per map).
func vapPolicy(kyvernoRule string) string {
	switch kyvernoRule {
	case "pod-security/host-paths":
		return "kubehpc-pod-hostpath"
	case "pod-identity/user-has-identity", "pod-identity/run-as-user", "pod-identity/run-as-non-root":
		return "kubehpc-pod-uid"
	case "pod-identity/run-as-group", "pod-identity/fs-group":
		return "kubehpc-pod-gid"
	case "pod-identity/supplemental-groups":
		return "kubehpc-pod-gids"
	case "pod-identity/account-required", "pod-identity/account-is-users-group":
		return "kubehpc-pod-groups"
	}
	return "kubehpc-pod-security"
}

// generateSuite writes (with -update) or checks policy.yaml, resources.yaml
// and kyverno-test.yaml of a suite: engine "kyverno" (the ClusterPolicies,
// identity from the ConfigMaps given as variables, or from the namespace
// annotations given as the API call's response) or "vap" (the
// ValidatingAdmissionPolicies, identity from the ConfigMaps given as
// paramResources). It returns the number of expected results.
func generateSuite(t *testing.T, dir, engine, source string) {
	t.Helper()
	args := []string{"template", "kubehpc", subchart(t, "policies"), "--namespace", "kubehpc",
		"--values", filepath.Join(kyvernoSuite(t), "test-values.yaml"), "--set", "engine=" + engine}
	args = append(args, "--set", "identitySource="+source)
	if engine == "vap" {
		// The rules the Kyverno CLI cannot evaluate for a VAP (UPDATE and
		// namespaces) are proven on the API server instead.
		args = append(args, "--set", "rules.immutableMetadata=false", "--set", "rules.namespaceIdentity=false")
	}
	policy, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	alice := &user{Name: "alice", Namespace: "user-alice", UID: "10001", GID: "10001", GIDs: []string{"10001", "20001"}, Groups: []string{"alice", "pzs0001"}}
	var resources bytes.Buffer
	type result struct {
		Policy    string   `json:"policy"`
		Rule      string   `json:"rule,omitempty"`
		Resources []string `json:"resources"`
		Kind      string   `json:"kind"`
		Result    string   `json:"result"`
	}
	var results []result
	addPod := func(name string, p *corev1.Pod) {
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		p.Name, p.GenerateName, p.Namespace = name, "", alice.Namespace
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&resources, "---\n%s", b)
	}
	good := goodPod(alice)
	addPod("good", good)
	for _, rule := range []string{"pod-identity/user-has-identity", "pod-identity/run-as-user", "pod-identity/run-as-group", "pod-identity/fs-group",
		"pod-identity/run-as-non-root", "pod-identity/supplemental-groups", "pod-identity/account-required", "pod-identity/account-is-users-group",
		"pod-security/supplemental-groups-policy-strict", "pod-security/resources-required", "pod-security/resources-maximum",
		"pod-security/lifetime-required", "pod-security/lifetime-valid", "pod-security/lifetime-maximum", "pod-security/registries",
		"pod-security/host-namespaces", "pod-security/privileged", "pod-security/privilege-escalation", "pod-security/capabilities",
		"pod-security/host-ports", "pod-security/host-paths",
		"pod-restricted/seccomp", "pod-restricted/apparmor", "pod-restricted/selinux", "pod-restricted/proc-mount", "pod-restricted/sysctls",
		"pod-restricted/host-process", "pod-volumes/volume-types",
		"pod-scheduling/node-name", "pod-scheduling/priority-class", "pod-scheduling/runtime-class",
		"pod-scheduling/pod-totals"} {
		pol, r, _ := strings.Cut(rule, "/")
		if engine == "vap" {
			continue
		}
		results = append(results, result{Policy: "kubehpc-" + pol, Rule: r, Resources: []string{"good"}, Kind: "Pod", Result: "pass"})
	}
	if engine == "vap" {
		for _, p := range []string{"kubehpc-pod-uid", "kubehpc-pod-gid", "kubehpc-pod-gids", "kubehpc-pod-groups", "kubehpc-pod-security", "kubehpc-pod-hostpath",
			"kubehpc-pod-restricted", "kubehpc-pod-scheduling"} {
			results = append(results, result{Policy: p, Resources: []string{"good"}, Kind: "Pod", Result: "pass"})
		}
	}
	for _, a := range attacks {
		name := podName(a.name)
		p := goodPod(alice)
		a.mutate(p)
		addPod(name, p)
		pol, r, _ := strings.Cut(a.kyverno, "/")
		if engine == "vap" {
			pol, r = strings.TrimPrefix(vapPolicy(a.kyverno), "kubehpc-"), ""
		}
		results = append(results, result{Policy: "kubehpc-" + pol, Rule: r, Resources: []string{name}, Kind: "Pod", Result: "fail"})
	}
	// The walltime table shared with pkg/walltime: accepted exactly when the
	// reaper parses the value and it is at most the maximum (24h).
	if engine == "kyverno" && source == "configMaps" {
		for i, row := range lifetimeRows(t) {
			name := fmt.Sprintf("lifetime-%02d", i)
			p := goodPod(alice)
			p.Annotations["pod.kubernetes.io/lifetime"] = row.Value
			addPod(name, p)
			switch {
			case row.Value == "":
				results = append(results, result{Policy: "kubehpc-pod-security", Rule: "lifetime-required", Resources: []string{name}, Kind: "Pod", Result: "fail"})
			case !row.Accepted:
				results = append(results, result{Policy: "kubehpc-pod-security", Rule: "lifetime-valid", Resources: []string{name}, Kind: "Pod", Result: "fail"})
			case row.Duration > 24*time.Hour:
				results = append(results, result{Policy: "kubehpc-pod-security", Rule: "lifetime-valid", Resources: []string{name}, Kind: "Pod", Result: "pass"},
					result{Policy: "kubehpc-pod-security", Rule: "lifetime-maximum", Resources: []string{name}, Kind: "Pod", Result: "fail"})
			default:
				results = append(results, result{Policy: "kubehpc-pod-security", Rule: "lifetime-valid", Resources: []string{name}, Kind: "Pod", Result: "pass"},
					result{Policy: "kubehpc-pod-security", Rule: "lifetime-maximum", Resources: []string{name}, Kind: "Pod", Result: "pass"})
			}
		}
	}
	// A user missing from the maps.
	missing := goodPod(&user{Name: "dave", UID: "10009", GID: "10009", GIDs: []string{"10009"}, Groups: []string{"dave"}})
	missing.Spec.Volumes, missing.Spec.Containers[0].VolumeMounts = nil, nil
	missing.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	missing.Name, missing.GenerateName, missing.Namespace = "missing-user", "", "user-dave"
	b, err := yaml.Marshal(missing)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&resources, "---\n%s", b)
	missingPolicy, missingRule := "kubehpc-pod-identity", "user-has-identity"
	if engine == "vap" {
		missingPolicy, missingRule = "kubehpc-pod-uid", ""
	}
	results = append(results, result{Policy: missingPolicy, Rule: missingRule, Resources: []string{"missing-user"}, Kind: "Pod", Result: "fail"})
	sort.SliceStable(results, func(i, j int) bool { return results[i].Result > results[j].Result })
	test := map[string]any{
		"apiVersion": "cli.kyverno.io/v1alpha1",
		"kind":       "Test",
		"metadata":   map[string]any{"name": "kubehpc-" + engine + "-" + strings.ToLower(source)},
		"policies":   []string{"policy.yaml"},
		"resources":  []string{"resources.yaml"},
		"variables":  "values.yaml",
		"results":    results,
	}
	if engine == "vap" {
		test["paramResources"] = []string{"params.yaml"}
	}
	if source == "annotations" {
		// The namespaces as the API server would return them to Kyverno's
		// apiCall context: alice with the identity ldap-configmap writes,
		// dave without any.
		ns := func(name string, ann map[string]string) map[string]any {
			return map[string]any{"urlPath": "/api/v1/namespaces/" + name, "response": map[string]any{"body": map[string]any{
				"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "annotations": ann}}}}
		}
		test["apiCallResponses"] = []any{
			ns("user-alice", map[string]string{"kubehpc.io/user": "alice", "kubehpc.io/uid": "10001", "kubehpc.io/gid": "10001",
				"kubehpc.io/gids": ",10001,20001,", "kubehpc.io/groups": ",alice,pzs0001,", "kubehpc.io/home": "/users/alice"}),
			ns("user-dave", map[string]string{}),
		}
	}
	tb, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	checkGenerated(t, filepath.Join(dir, "policy.yaml"), generatedHeader+withoutWebhookConfiguration(policy))
	checkGenerated(t, filepath.Join(dir, "resources.yaml"), generatedHeader+resources.String())
	checkGenerated(t, filepath.Join(dir, "kyverno-test.yaml"), generatedHeader+string(tb))
}

// withoutWebhookConfiguration drops each ClusterPolicy's
// spec.webhookConfiguration (the match conditions the API server evaluates
// before calling Kyverno's webhook: nothing the CLI models), on which the
// Kyverno 1.19 CLI panics (policy validation asks a nil client for the
// server's version). TestRedTeamKyvernoStatusPath proves them on a running
// Kyverno.
func withoutWebhookConfiguration(policy string) string {
	var out []string
	skip := false
	for _, line := range strings.SplitAfter(policy, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.TrimRight(line, "\n") == "  webhookConfiguration:":
			skip = true
			continue
		case skip && (indent > 2 || strings.TrimSpace(line) == ""):
			continue
		}
		skip = false
		out = append(out, line)
	}
	return strings.Join(out, "")
}

const generatedHeader = "# Generated by charts/tests TestKyvernoCLI (go test -run TestKyvernoCLI -update); do not edit.\n"

// checkGenerated rewrites path with -update, else fails the test when it
// differs from content.
func checkGenerated(t *testing.T, path, content string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != content {
		t.Errorf("%s is out of date with the chart or the catalogue (err %v): run go test -run TestKyvernoCLI -update", path, err)
	}
}

// countResults counts the expected results of every kyverno-test.yaml under
// dir.
func countResults(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kyverno-test.yaml" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var test struct {
			Results []any `json:"results"`
		}
		if err := yaml.Unmarshal(b, &test); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		n += len(test.Results)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// podName turns an attack's name into a pod name.
func podName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// generateCatalogueSuite writes (with -update) or checks the suite made from
// the attack catalogue (testdata/attacks): the Kyverno ClusterPolicies the
// chart renders with the catalogue's values, every create case's objects as
// resources in user-alice, and for each case the result of the rule that
// decides it (fail for a denial, pass for an admission).
func generateCatalogueSuite(t *testing.T, dir string) {
	t.Helper()
	policy, err := helm(t, "template", "kubehpc", subchart(t, "policies"), "--namespace", "kubehpc",
		"--values", filepath.Join(catalogueDir, "values.yaml"), "--set", "engine=kyverno", "--set", "configMaps.namespace=kubehpc")
	if err != nil {
		t.Fatal(err)
	}
	u := &catalogueUser{Name: "alice", Namespace: "user-alice", Vars: map[string]string{"UID": "10001", "GID": "10001", "GID2": "20001",
		"USER": "alice", "HOME": "/users/alice", "ACCOUNT": "pzs0001", "NAMESPACE": "user-alice"}}
	base := catalogueBasePod(t, u)
	type result struct {
		Policy    string   `json:"policy"`
		Rule      string   `json:"rule"`
		Resources []string `json:"resources"`
		Kind      string   `json:"kind"`
		Result    string   `json:"result"`
	}
	var resources bytes.Buffer
	var results []result
	add := func(obj map[string]any) {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&resources, "---\n%s", b)
	}
	for _, c := range loadCatalogue(t, u.Vars) {
		if c.Kyverno == "" {
			continue
		}
		pol, rule, _ := strings.Cut(c.Kyverno, "/")
		kind := map[string]string{"service": "Service", "secret": "Secret"}[pol]
		if kind == "" {
			kind = "Pod"
		}
		want := map[string]string{"allow": "pass", "deny": "fail"}[c.Verdict]
		var objs []map[string]any
		if len(c.Objects) > 0 {
			objs = c.Objects
		} else {
			p := patchPod(t, c.Name, base.DeepCopy(), c.Patch)
			p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
			p.GenerateName, p.Name = "", c.Name
			objs = []map[string]any{toMap(t, p)}
		}
		for _, o := range objs {
			meta := o["metadata"].(map[string]any)
			meta["namespace"] = u.Namespace
			add(o)
			if o["kind"] == kind {
				results = append(results, result{Policy: "kubehpc-" + pol, Rule: rule, Resources: []string{meta["name"].(string)}, Kind: kind, Result: want})
			}
		}
	}
	test := map[string]any{
		"apiVersion": "cli.kyverno.io/v1alpha1",
		"kind":       "Test",
		"metadata":   map[string]any{"name": "kubehpc-catalogue"},
		"policies":   []string{"policy.yaml"},
		"resources":  []string{"resources.yaml"},
		"variables":  "values.yaml",
		"results":    results,
	}
	tb, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	checkGenerated(t, filepath.Join(dir, "policy.yaml"), generatedHeader+withoutWebhookConfiguration(policy))
	checkGenerated(t, filepath.Join(dir, "resources.yaml"), generatedHeader+resources.String())
	checkGenerated(t, filepath.Join(dir, "kyverno-test.yaml"), generatedHeader+string(tb))
}

package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// requiredAlerts are the alerts each tool's PrometheusRule must have (with
// its defaults): the list, for what each tool exports.
var requiredAlerts = map[string][]string{
	"ldap-configmap": {"LdapConfigmapPassesFailing", "LdapConfigmapNoSuccessfulPass", "LdapConfigmapLeaderMissing", "LdapConfigmapAPIServerUnreachable",
		"LdapConfigmapRefusedEmpty", "LdapConfigmapRefusedLargeDrop", "LdapConfigmapRefusedSize", "LdapConfigmapUsernameCollisions"},
	"job-pod-reaper": {"JobPodReaperPassesFailing", "JobPodReaperNoSuccessfulPass", "JobPodReaperLeaderMissing", "JobPodReaperAPIServerUnreachable",
		"JobPodReaperInvalidWalltimes", "JobPodReaperMassDeletionStopped", "JobPodReaperDeletionsRateLimited"},
	"namespace-reaper": {"NamespaceReaperPassesFailing", "NamespaceReaperNoSuccessfulPass", "NamespaceReaperLeaderMissing", "NamespaceReaperAPIServerUnreachable",
		"NamespaceReaperDeletionCapReached"},
	"namespace-bootstrap": {"NamespaceBootstrapPassesFailing", "NamespaceBootstrapNoSuccessfulPass", "NamespaceBootstrapLeaderMissing", "NamespaceBootstrapAPIServerUnreachable",
		"NamespaceBootstrapServiceErrors", "NamespaceBootstrapRateLimited", "NamespaceBootstrapIdentityCollisions"},
}

// toolMetric is a metric family a tool registers.
type toolMetric struct {
	histogram bool // or summary: _bucket, _sum and _count series exist
}

var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

// toolMetrics builds the tool exactly as its main.go does (app.Parse of the
// chart's container args, the Command's Build, pkg/daemon's runner) with a
// fresh Prometheus registry, and returns every metric family registered in
// it. Build only constructs clients; the API address is never contacted.
func toolMetrics(t *testing.T, tool string) map[string]toolMetric {
	t.Helper()
	args, envs := chartContainer(t, tool)
	lookup := func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
	mk := tools[tool]
	tl, cmd := mk()
	opts, err := app.Parse(tl, args, lookup, io.Discard, cmd)
	if err != nil {
		t.Fatalf("%s: parse the chart's args: %v", tool, err)
	}
	reg := prometheus.NewRegistry()
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := zap.NewNop()
	pass, err := cmd.Build(ctx, app.Env{Log: log, Clock: clock.RealClock{}, Registry: reg, RESTConfig: cfg, Client: client, Daemon: opts.Daemon})
	if err != nil {
		t.Fatalf("%s: build: %v", tool, err)
	}
	own := describe(reg)
	if len(own) == 0 {
		t.Fatalf("%s registered no metrics of its own", tool)
	}
	prefix := tl.MetricsNamespace + "_"
	for name := range own {
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("%s registers %s, without the prefix %s its main.go gives the common metrics", tool, name, prefix)
		}
	}
	if _, err := daemon.New(opts.Daemon, daemon.Deps{MetricsNamespace: tl.MetricsNamespace, Version: "test", Log: log,
		Clock: clock.RealClock{}, Registry: reg, Client: client}, pass); err != nil {
		t.Fatalf("%s: daemon: %v", tool, err)
	}
	names := describe(reg)
	out := map[string]toolMetric{}
	for name := range names {
		out[name] = toolMetric{}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			out[f.GetName()] = toolMetric{histogram: true}
		}
	}
	return out
}

// describe lists the names of every metric registered in reg.
func describe(reg *prometheus.Registry) map[string]bool {
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	names := map[string]bool{}
	for d := range ch {
		if m := fqNameRe.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// chartContainer renders a tool's chart alone with its defaults and returns
// its container's args and plain env.
func chartContainer(t *testing.T, tool string) ([]string, map[string]string) {
	t.Helper()
	out, err := helm(t, "template", "kubehpc", subchart(t, tool), "--namespace", "kubehpc")
	must(t, out, err)
	for _, doc := range strings.Split(out, "\n---\n") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		envs := map[string]string{"POD_NAMESPACE": "kubehpc", "POD_NAME": tool + "-0"}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				envs[e.Name] = e.Value
			}
		}
		return c.Args, envs
	}
	t.Fatalf("%s: no Deployment rendered", tool)
	return nil, nil
}

// promRule is the part of a PrometheusRule the test reads.
type promRule struct {
	Kind     string
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
}

// renderRules renders a tool chart's PrometheusRules.
func renderRules(t *testing.T, tool string, set ...string) []promRule {
	t.Helper()
	args := []string{"template", "kubehpc", subchart(t, tool), "--namespace", "kubehpc"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helm(t, args...)
	must(t, out, err)
	var rules []promRule
	for _, doc := range strings.Split(out, "\n---\n") {
		var r promRule
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if r.Kind == "PrometheusRule" {
			rules = append(rules, r)
		}
	}
	return rules
}

// exprProblems parses a rule expression with Prometheus's own parser and
// returns what is wrong with it: a metric the tool does not export, or a
// selector without the release's matcher.
func exprProblems(expr string, metrics map[string]toolMetric, release *labels.Matcher) []string {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("does not parse: %v", err)}
	}
	var problems []string
	selectors := 0
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		name := vs.Name
		if name == "" {
			problems = append(problems, fmt.Sprintf("selector %s names no metric", vs))
			return nil
		}
		if !exported(name, metrics) {
			problems = append(problems, fmt.Sprintf("metric %s is not one the tool exports", name))
		}
		if release != nil && !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool { return m.String() == release.String() }) {
			problems = append(problems, fmt.Sprintf("selector %s lacks the release's matcher %s", vs, release))
		}
		return nil
	})
	if selectors == 0 {
		problems = append(problems, "names no metric")
	}
	return problems
}

// exported reports whether a series name is one of the tool's metrics (a
// histogram's _bucket, _sum and _count included).
func exported(name string, metrics map[string]toolMetric) bool {
	if _, ok := metrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && metrics[base].histogram {
			return true
		}
	}
	return false
}

var (
	readmeRefRe = regexp.MustCompile(`((?:[a-z-]+/)?README\.md)((?:[^"]*"[^"]+")+)`)
	quotedRe    = regexp.MustCompile(`"([^"]+)"`)
)

// readmeSections returns the section headings of a README in the repository,
// without quotes (`What "idle" means` is referred to as "What idle means").
func readmeSections(t *testing.T, path string) map[string]bool {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("README %s: %v", path, err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			out[strings.ReplaceAll(strings.TrimSpace(strings.TrimLeft(h, "#")), `"`, "")] = true
		}
	}
	return out
}

// descriptionProblems checks a description names at least one README
// section (`<tool>/README.md "Section" and "Other"`), and that each exists.
func descriptionProblems(t *testing.T, desc string) []string {
	refs := readmeRefRe.FindAllStringSubmatch(desc, -1)
	if len(refs) == 0 {
		return []string{"names no README section (want e.g. ldap-configmap/README.md \"Safety\")"}
	}
	var problems []string
	for _, r := range refs {
		sections := readmeSections(t, r[1])
		for _, q := range quotedRe.FindAllStringSubmatch(r[2], -1) {
			if !sections[q[1]] {
				problems = append(problems, fmt.Sprintf("names section %q of %s, which has no such heading", q[1], r[1]))
			}
		}
	}
	return problems
}

// TestPrometheusRules renders each tool chart with prometheusRule.enabled and
// checks every alert: its expression parses with Prometheus's own parser,
// every metric it names is one the tool registers (read from the tool's own
// registry, built by its code), every selector is scoped to the release, it
// has a severity, a summary and a description naming a README section that
// exists; and the alerts the issue asks for are there.
func TestPrometheusRules(t *testing.T) {
	release := labels.MustNewMatcher(labels.MatchEqual, "namespace", "kubehpc")
	for _, tool := range subcharts[:4] {
		t.Run(tool, func(t *testing.T) {
			metrics := toolMetrics(t, tool)
			if off := renderRules(t, tool); len(off) != 0 {
				t.Errorf("a PrometheusRule is rendered by default; want none unless prometheusRule.enabled")
			}
			rules := renderRules(t, tool, "prometheusRule.enabled=true")
			if len(rules) != 1 {
				t.Fatalf("rendered %d PrometheusRules, want 1", len(rules))
			}
			var names []string
			for _, g := range rules[0].Spec.Groups {
				for _, r := range g.Rules {
					names = append(names, r.Alert)
					where := fmt.Sprintf("%s alert %q", tool, r.Alert)
					for _, p := range exprProblems(r.Expr, metrics, release) {
						t.Errorf("%s: expr %s: %s", where, r.Expr, p)
					}
					if r.For != "" {
						if _, err := model.ParseDuration(r.For); err != nil {
							t.Errorf("%s: for %q: %v", where, r.For, err)
						}
					}
					if s := r.Labels["severity"]; s != "critical" && s != "warning" {
						t.Errorf("%s: severity %q, want critical or warning", where, s)
					}
					if strings.TrimSpace(r.Annotations["summary"]) == "" {
						t.Errorf("%s: no summary", where)
					}
					for _, p := range descriptionProblems(t, r.Annotations["description"]) {
						t.Errorf("%s: description: %s", where, p)
					}
				}
			}
			for _, name := range names {
				if !operatingDocuments(t, name) {
					t.Errorf("alert %s is not in the README's \"Operating\" alerts table (as `%s` or `<Tool>…`)", name, name)
				}
			}
			for _, want := range requiredAlerts[tool] {
				if !slices.Contains(names, want) {
					t.Errorf("alert %s missing (have %v)", want, names)
				}
			}
			sorted := slices.Clone(names)
			sort.Strings(sorted)
			if len(slices.Compact(sorted)) != len(names) {
				t.Errorf("duplicate alert names: %v", names)
			}
		})
	}
}

// TestPrometheusRuleChecksCatchMistakes proves the checks above fail on the
// mistakes they are for: a metric the tool does not export (a typo, or one
// another helper has not landed), a missing release matcher, a README
// section that does not exist, and an expression that does not parse.
func TestPrometheusRuleChecksCatchMistakes(t *testing.T) {
	metrics := toolMetrics(t, "ldap-configmap")
	release := labels.MustNewMatcher(labels.MatchEqual, "namespace", "kubehpc")
	cases := []struct{ name, expr, want string }{
		{"unknown metric", `increase(k8_ldap_configmap_refusals_total{namespace="kubehpc"}[5m]) > 0`, "not one the tool exports"},
		{"another tool's metric", `job_pod_reaper_leader{namespace="kubehpc"} < 1`, "not one the tool exports"},
		{"not a histogram", `k8_ldap_configmap_users_bucket{namespace="kubehpc"} > 0`, "not one the tool exports"},
		{"no release matcher", `k8_ldap_configmap_error > 0`, "lacks the release's matcher"},
		{"syntax", `increase(k8_ldap_configmap_error{namespace="kubehpc"}[5m] > 0`, "does not parse"},
	}
	for _, c := range cases {
		got := strings.Join(exprProblems(c.expr, metrics, release), "; ")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: exprProblems(%s) = %q, want a problem containing %q", c.name, c.expr, got, c.want)
		}
	}
	if p := exprProblems(`histogram_quantile(0.9, rate(k8_ldap_configmap_run_duration_seconds_bucket{namespace="kubehpc"}[5m])) > 1`, metrics, release); len(p) != 0 {
		t.Errorf("a histogram's _bucket series: problems %v, want none", p)
	}
	if p := descriptionProblems(t, `See ldap-configmap/README.md "Safety" and "No such section".`); len(p) != 1 || !strings.Contains(p[0], "No such section") {
		t.Errorf("descriptionProblems with a missing section = %v, want one problem naming it", p)
	}
	if p := descriptionProblems(t, `Check the log.`); len(p) != 1 {
		t.Errorf("descriptionProblems without a README reference = %v, want one problem", p)
	}
}

// TestPrometheusRuleValues checks the rules follow their values: the pass
// period and missed passes set the windows, a custom selector replaces the
// namespace matcher, alert labels are added, and a CronJob (not scraped) is
// refused with a clear message.
func TestPrometheusRuleValues(t *testing.T) {
	rules := renderRules(t, "job-pod-reaper", "prometheusRule.enabled=true", "prometheusRule.passPeriod=1h30m",
		"prometheusRule.missedPasses=2", `prometheusRule.selector=job="reaper"`, "prometheusRule.alertLabels.team=hpc")
	var noSuccess string
	for _, r := range rules[0].Spec.Groups[0].Rules {
		if r.Labels["team"] != "hpc" {
			t.Errorf("alert %s labels %v, want team=hpc added", r.Alert, r.Labels)
		}
		if strings.Contains(r.Expr, `namespace="kubehpc"`) {
			t.Errorf("alert %s expr %s still has the default selector", r.Alert, r.Expr)
		}
		if r.Alert == "JobPodReaperNoSuccessfulPass" {
			noSuccess = r.Expr
		}
	}
	if want := `job_pod_reaper_last_success_timestamp_seconds{job="reaper"}) > 10800`; !strings.Contains(noSuccess, want) {
		t.Errorf("JobPodReaperNoSuccessfulPass expr %q, want it to contain %q (2 × 1h30m)", noSuccess, want)
	}
	_, err := helm(t, "template", "kubehpc", subchart(t, "namespace-reaper"), "--set", "prometheusRule.enabled=true", "--set", "mode=cronjob")
	if err == nil || !strings.Contains(err.Error(), "prometheusRule needs mode=deployment") {
		t.Errorf("prometheusRule with mode=cronjob: err = %v, want a refusal naming mode=deployment", err)
	}
}

// TestPrometheusRulesServerDryRun has the API server validate every rendered
// PrometheusRule strictly against the Prometheus Operator's schema (the part
// testdata/prometheusrule-crd.yaml carries).
func TestPrometheusRulesServerDryRun(t *testing.T) {
	out, err := kubectl(t, "apply", "--server-side", "-f", filepath.Join("testdata", "prometheusrule-crd.yaml"))
	must(t, out, err)
	if err := pollKubectl(t, "get", "prometheusrules.monitoring.coreos.com", "--all-namespaces"); err != nil {
		t.Fatal(err)
	}
	ensureNamespace(t, "alerts")
	for _, tool := range subcharts[:4] {
		out, err := helm(t, "template", "kubehpc", subchart(t, tool), "--namespace", "alerts", "--set", "prometheusRule.enabled=true",
			"--show-only", "templates/prometheusrule.yaml")
		must(t, out, err)
		f := filepath.Join(t.TempDir(), tool+".yaml")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "-f", f); err != nil {
			t.Errorf("%s: server dry-run of its PrometheusRule: %v", tool, err)
		}
	}
}

// pollKubectl runs kubectl until it succeeds, for at most 60 s (a new CRD is
// served a moment after it is created).
func pollKubectl(t *testing.T, args ...string) error {
	t.Helper()
	var last error
	err := testenv.Poll(context.Background(), testenv.PollInterval, 60*time.Second, func() (bool, error) {
		_, last = kubectl(t, args...)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("kubectl %v did not succeed within 60s (last: %v): %w", args, last, err)
	}
	return nil
}

// operatingDocuments reports whether the README's "Operating" section lists
// an alert: by its name, or by the common rules' `<Tool>Suffix` form.
func operatingDocuments(t *testing.T, alert string) bool {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n## Operating\n")
	if i < 0 {
		t.Fatal("README.md has no Operating section")
	}
	section := readme[i+1:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		section = section[:j+1]
	}
	if strings.Contains(section, "`"+alert+"`") {
		return true
	}
	for _, prefix := range []string{"LdapConfigmap", "JobPodReaper", "NamespaceReaper", "NamespaceBootstrap"} {
		if suffix, ok := strings.CutPrefix(alert, prefix); ok && strings.Contains(section, "`<Tool>"+suffix+"`") {
			return true
		}
	}
	return false
}

package tests

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The settings the tools must agree on live once under global.* (kubehpc-lib
// resolves them: a chart's own value, when set, wins). These tests prove
// that one global value moves every consumer, the admission guards and the
// policies included, and that a per-chart value still overrides it.

// renderUmbrella renders the umbrella chart with sets and returns its objects.
func renderUmbrella(t *testing.T, set ...string) []*unstructuredObj {
	t.Helper()
	out, err := renderUmbrellaRaw(t, set...)
	if err != nil {
		t.Fatal(err)
	}
	return splitDocs(t, out)
}

func renderUmbrellaRaw(t *testing.T, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", "kubehpc", umbrella(t), "--namespace", "kubehpc"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return helm(t, args...)
}

// field digs a path of map keys out of a decoded object.
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}

// namedExpressions returns the name → expression pairs of a policy's list
// (spec.variables or spec.matchConditions).
func namedExpressions(o *unstructuredObj, list string) map[string]string {
	out := map[string]string{}
	items, _ := field(o.m, "spec", list).([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		name, _ := m["name"].(string)
		expr, _ := m["expression"].(string)
		out[name] = expr
	}
	return out
}

// celString is the value of a CEL string literal ('x' or "x").
func celString(t *testing.T, expr string) string {
	t.Helper()
	if len(expr) < 2 || (expr[0] != '\'' && expr[0] != '"') || expr[len(expr)-1] != expr[0] {
		t.Errorf("%q is not a CEL string literal", expr)
		return expr
	}
	return expr[1 : len(expr)-1]
}

// toolFlags returns each tool's container flags (--name=value; a bare
// --name maps to ""), by tool.
func toolFlags(t *testing.T, objs []*unstructuredObj) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for tool, spec := range podSpecs(t, objs) {
		flags := map[string]string{}
		for _, a := range spec.Containers[0].Args {
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			flags[k] = v
		}
		out[tool] = flags
	}
	return out
}

// podSpecs returns each tool's pod spec (Deployment), by tool.
func podSpecs(t *testing.T, objs []*unstructuredObj) map[string]corev1.PodSpec {
	t.Helper()
	out := map[string]corev1.PodSpec{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var spec corev1.PodSpec
		fromMap(t, field(o.m, "spec", "template", "spec").(map[string]any), &spec)
		out[o.GetName()] = spec
	}
	return out
}

// prefixes reads, from one render, the user namespace prefix each consumer
// acts on: the tools' flags, their guards' variables and the policies'
// matches. Consumers that disagree within a group are an error.
func prefixes(t *testing.T, objs []*unstructuredObj) map[string]string {
	t.Helper()
	got := map[string]string{}
	record := func(consumer, prefix string) {
		t.Helper()
		if p, ok := got[consumer]; ok && p != prefix {
			t.Errorf("%s: prefix %q here, %q elsewhere", consumer, prefix, p)
		}
		got[consumer] = prefix
	}
	flags := toolFlags(t, objs)
	record("ldap-configmap", flags["ldap-configmap"]["user-prefix"])
	record("job-pod-reaper", flags["job-pod-reaper"]["user-namespace-prefix"])
	record("namespace-bootstrap", flags["namespace-bootstrap"]["namespace-prefix"])
	re := flags["namespace-reaper"]["namespace-regexp"]
	if !strings.HasSuffix(re, ".+") {
		t.Errorf("namespace-reaper --namespace-regexp=%q, want <prefix>.+", re)
	}
	record("namespace-reaper", strings.TrimSuffix(re, ".+"))
	userNamespaces := regexp.MustCompile(`^request\.namespace\.startsWith\('([^']*)'\)$`)
	for _, o := range objs {
		switch o.GetKind() {
		case "ValidatingAdmissionPolicy", "MutatingAdmissionPolicy":
			name := o.GetName()
			vars := namedExpressions(o, "variables")
			switch {
			case strings.HasSuffix(name, "-guard") || strings.HasSuffix(name, "-guard-writes"):
				tool := strings.TrimSuffix(strings.TrimSuffix(name, "-writes"), "-guard")
				if p, ok := vars["prefix"]; ok {
					record(tool+" guard", celString(t, p))
				}
				if p, ok := vars["pattern"]; ok {
					pattern := celString(t, p)
					if !strings.HasPrefix(pattern, "^(?:") || !strings.HasSuffix(pattern, ".+)$") {
						t.Errorf("%s: pattern %q, want ^(?:<prefix>.+)$", name, pattern)
					}
					record(tool+" guard", strings.TrimSuffix(strings.TrimPrefix(pattern, "^(?:"), ".+)$"))
				}
			default:
				if c, ok := namedExpressions(o, "matchConditions")["user-namespaces"]; ok {
					m := userNamespaces.FindStringSubmatch(c)
					if m == nil {
						t.Errorf("%s: user-namespaces condition %q", name, c)
						continue
					}
					record("policies", m[1])
				}
			}
		case "ClusterPolicy":
			rules, _ := field(o.m, "spec", "rules").([]any)
			for _, r := range rules {
				anys, _ := field(r.(map[string]any), "match", "any").([]any)
				for _, a := range anys {
					ns, ok := field(a.(map[string]any), "resources", "namespaces").([]any)
					if !ok {
						continue
					}
					if len(ns) != 1 || !strings.HasSuffix(fmt.Sprint(ns[0]), "*") {
						t.Errorf("%s: rule matches namespaces %v, want [<prefix>*]", o.GetName(), ns)
						continue
					}
					record("policies", strings.TrimSuffix(fmt.Sprint(ns[0]), "*"))
				}
			}
		}
	}
	return got
}

// TestGlobalNamespacePrefix: global.namespacePrefix alone sets the user
// namespace prefix of all five consumers (ldap-configmap, job-pod-reaper,
// namespace-bootstrap, namespace-reaper's regexp, the policies) and of every
// admission guard, with either policy engine and identity source. A
// mismatch is a hole: a guard or policy on another prefix than the tools'
// leaves the tools' namespaces unguarded. A chart's own value still wins.
func TestGlobalNamespacePrefix(t *testing.T) {
	consumers := []string{"ldap-configmap", "job-pod-reaper", "namespace-bootstrap", "namespace-reaper",
		"ldap-configmap guard", "job-pod-reaper guard", "namespace-bootstrap guard", "namespace-reaper guard", "policies"}
	cases := []struct {
		name     string
		set      []string
		tools    string // the tools' and guards' prefix
		policies string
	}{
		{"defaults", nil, "user-", "user-"},
		{"global", []string{"global.namespacePrefix=hpc-"}, "hpc-", "hpc-"},
		{"global, every chart's own prefix over it", []string{"global.namespacePrefix=hpc-", "policies.namespacePrefix=ky-", "ldap-configmap.userPrefix=ky-",
			"job-pod-reaper.userNamespacePrefix=ky-", "namespace-bootstrap.namespacePrefix=ky-", "namespace-reaper.namespaceRegexp=ky-.+"}, "ky-", "ky-"},
	}
	for _, tc := range cases {
		for _, engine := range []string{"vap", "kyverno"} {
			for _, source := range []string{"annotations", "configMaps"} {
				t.Run(fmt.Sprintf("%s/%s/%s", tc.name, engine, source), func(t *testing.T) {
					set := append([]string{"policies.engine=" + engine, "policies.identitySource=" + source}, tc.set...)
					out, err := renderUmbrellaRaw(t, set...)
					if err != nil {
						t.Fatal(err)
					}
					got := prefixes(t, splitDocs(t, out))
					want := map[string]string{}
					for _, c := range consumers {
						want[c] = tc.tools
					}
					want["policies"] = tc.policies
					if !maps.Equal(got, want) {
						t.Errorf("prefix by consumer = %v, want %v", got, want)
					}
					// With ConfigMaps the policies take the user's name from the
					// namespace name after the prefix.
					if source == "configMaps" {
						var inName string
						if engine == "vap" {
							inName = fmt.Sprintf("request.namespace.startsWith('%s') && request.namespace.substring(%d)", tc.policies, len(tc.policies))
						} else {
							inName = fmt.Sprintf("trim_prefix(request.namespace, '%s')", tc.policies)
						}
						if !strings.Contains(out, inName) {
							t.Errorf("the policies do not read the user's name as %s", inName)
						}
					}
					// No trace of another prefix anywhere but comments.
					if tc.tools != "user-" && tc.policies != "user-" {
						for _, line := range strings.Split(out, "\n") {
							if strings.HasPrefix(strings.TrimSpace(line), "#") {
								continue
							}
							for _, old := range []string{`'user-'`, `"user-"`, `\"user-\"`, `user-*`, `user-.+`, `=user-"`} {
								if strings.Contains(line, old) {
									t.Errorf("rendered %q still names the default prefix: %s", old, strings.TrimSpace(line))
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestGlobalEqualsPerChartValues: setting global.namespacePrefix renders
// exactly what setting each consumer's own value renders (but the values
// checksum), so the global is no second, weaker path.
func TestGlobalEqualsPerChartValues(t *testing.T) {
	checksum := regexp.MustCompile(`checksum/values: [0-9a-f]+`)
	for _, engine := range []string{"vap", "kyverno"} {
		global, err := renderUmbrellaRaw(t, "policies.engine="+engine, "global.namespacePrefix=hpc-")
		if err != nil {
			t.Fatal(err)
		}
		perChart, err := renderUmbrellaRaw(t, "policies.engine="+engine, "ldap-configmap.userPrefix=hpc-",
			"job-pod-reaper.userNamespacePrefix=hpc-", "namespace-bootstrap.namespacePrefix=hpc-",
			"namespace-reaper.namespaceRegexp=hpc-.+", "policies.namespacePrefix=hpc-")
		if err != nil {
			t.Fatal(err)
		}
		// The generated serving certificate differs at every render.
		cert := regexp.MustCompile(`(?m)^(\s*(tls\.crt|tls\.key|ca\.crt)): \S{100,}$`)
		norm := func(s string) string {
			return cert.ReplaceAllString(checksum.ReplaceAllString(s, "checksum/values: x"), "$1: x")
		}
		if a, b := strings.Split(norm(perChart), "\n"), strings.Split(norm(global), "\n"); !slices.Equal(a, b) {
			i := 0
			for i < len(a) && i < len(b) && a[i] == b[i] {
				i++
			}
			t.Errorf("%s: global.namespacePrefix renders other than the per-chart values: line %d is %q, per chart %q",
				engine, i+1, strings.Join(b[i:min(i+1, len(b))], ""), strings.Join(a[i:min(i+1, len(a))], ""))
		}
	}
}

// TestGlobalLDAP: global.ldap sets the directory of ldap-configmap and of
// namespace-bootstrap's login lookup at once; a tool's own ldap.<key> wins,
// and namespace-bootstrap's ldap.url "" keeps its lookup off.
func TestGlobalLDAP(t *testing.T) {
	global := []string{
		"global.ldap.url=ldaps://ad.example.edu:636",
		"global.ldap.preset=ad",
		"global.ldap.tlsServerName=ad.example.edu",
		"global.ldap.bindDN=CN=svc-kubehpc\\,DC=example\\,DC=edu",
		"global.ldap.bindPassword.secretName=ldap-bind",
		"global.ldap.caBundle.secretName=ldap-ca",
		"global.ldap.caBundle.key=bundle.pem",
		"global.ldap.userBaseDN=OU=People\\,DC=example\\,DC=edu",
		"global.ldap.groupBaseDN=OU=Groups\\,DC=example\\,DC=edu",
		"global.ldap.memberScheme=memberof",
	}
	want := map[string]string{
		"ldap-url":             "ldaps://ad.example.edu:636",
		"ldap-preset":          "ad",
		"ldap-tls":             "false",
		"ldap-tls-verify":      "true",
		"ldap-tls-server-name": "ad.example.edu",
		"ldap-bind-dn":         "CN=svc-kubehpc,DC=example,DC=edu",
		"ldap-user-base-dn":    "OU=People,DC=example,DC=edu",
		"ldap-group-base-dn":   "OU=Groups,DC=example,DC=edu",
		"ldap-member-scheme":   "memberof",
	}
	ldapFlags := func(flags map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range flags {
			if _, ok := want[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	secrets := func(spec corev1.PodSpec) []string {
		var out []string
		for _, v := range spec.Volumes {
			if v.Secret != nil && strings.HasPrefix(v.Name, "ldap-") {
				out = append(out, v.Secret.SecretName)
			}
		}
		slices.Sort(out)
		return out
	}

	objs := renderUmbrella(t, global...)
	flags, pods := toolFlags(t, objs), podSpecs(t, objs)
	for _, tool := range []string{"ldap-configmap", "namespace-bootstrap"} {
		if got := ldapFlags(flags[tool]); !maps.Equal(got, want) {
			t.Errorf("%s LDAP flags from global.ldap = %v, want %v", tool, got, want)
		}
		if got := secrets(pods[tool]); !slices.Equal(got, []string{"ldap-bind", "ldap-ca"}) {
			t.Errorf("%s mounts the Secrets %v, want ldap-bind, ldap-ca", tool, got)
		}
		if ca := flags[tool]["ldap-tls-ca-file"]; !strings.HasSuffix(ca, "/bundle.pem") {
			t.Errorf("%s --ldap-tls-ca-file=%q, want the global key bundle.pem", tool, ca)
		}
	}

	// A tool's own value wins; namespace-bootstrap's "" turns its lookup off.
	objs = renderUmbrella(t, append(global, "ldap-configmap.ldap.preset=rfc2307bis", "namespace-bootstrap.ldap.url=")...)
	flags, pods = toolFlags(t, objs), podSpecs(t, objs)
	if got := flags["ldap-configmap"]["ldap-preset"]; got != "rfc2307bis" {
		t.Errorf("ldap-configmap --ldap-preset=%q, want its own rfc2307bis over the global ad", got)
	}
	if got := flags["ldap-configmap"]["ldap-url"]; got != want["ldap-url"] {
		t.Errorf("ldap-configmap --ldap-url=%q, want the global %q", got, want["ldap-url"])
	}
	if got := ldapFlags(flags["namespace-bootstrap"]); len(got) != 0 {
		t.Errorf("namespace-bootstrap with ldap.url \"\" passes LDAP flags %v, want none", got)
	}
	if got := secrets(pods["namespace-bootstrap"]); len(got) != 0 {
		t.Errorf("namespace-bootstrap with ldap.url \"\" mounts %v, want no LDAP Secret", got)
	}

	// ldap-configmap cannot run without a server and base DNs.
	for _, key := range []string{"url", "userBaseDN", "groupBaseDN"} {
		if _, err := renderUmbrellaRaw(t, "global.ldap."+key+"="); err == nil || !strings.Contains(err.Error(), "ldap-configmap: ldap."+key+" is empty") {
			t.Errorf("global.ldap.%s empty: err = %v, want ldap-configmap's refusal", key, err)
		}
	}
}

// TestPerChartEmptyOverGlobal: "" is a value, not "unset": the OSC-style
// scopes stay reachable under a global prefix. job-pod-reaper with
// userNamespacePrefix "" (guard off) reaps by labels, the policies with
// namespacePrefix "" select user namespaces by label, namespace-reaper with
// namespaceRegexp "" matches by labels alone; the other consumers keep the
// global prefix.
func TestPerChartEmptyOverGlobal(t *testing.T) {
	objs := renderUmbrella(t, "global.namespacePrefix=hpc-",
		"job-pod-reaper.userNamespacePrefix=", "job-pod-reaper.guard.enabled=false",
		"policies.namespacePrefix=", "namespace-reaper.namespaceRegexp=")
	flags := toolFlags(t, objs)
	if v, ok := flags["job-pod-reaper"]["user-namespace-prefix"]; !ok || v != "" {
		t.Errorf("job-pod-reaper --user-namespace-prefix=%q (passed: %v), want \"\"", v, ok)
	}
	if v, ok := flags["namespace-reaper"]["namespace-regexp"]; ok {
		t.Errorf("namespace-reaper --namespace-regexp=%q, want no regexp", v)
	}
	if v := flags["ldap-configmap"]["user-prefix"]; v != "hpc-" {
		t.Errorf("ldap-configmap --user-prefix=%q, want the global hpc-", v)
	}
	if v := flags["namespace-bootstrap"]["namespace-prefix"]; v != "hpc-" {
		t.Errorf("namespace-bootstrap --namespace-prefix=%q, want the global hpc-", v)
	}
	bindings := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "ValidatingAdmissionPolicy":
			if c, ok := namedExpressions(o, "matchConditions")["user-namespaces"]; ok {
				t.Errorf("%s matches user namespaces by name (%s), want by label", o.GetName(), c)
			}
		case "ValidatingAdmissionPolicyBinding":
			if field(o.m, "spec", "matchResources", "namespaceSelector", "matchLabels") != nil {
				bindings++
			}
		}
	}
	if bindings == 0 {
		t.Error("no policy binding selects user namespaces by label")
	}
}

package story

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// chartNamespace is where the demo installs the chart.
const chartNamespace = "kubehpc"

// values are the demo's chart values (besides the LDAP URL set at run time).
func (s *Story) valuesFile() (string, error) {
	v := fmt.Sprintf(`ldap-configmap:
  ldap:
    url: %[1]s
    preset: rfc2307
    userBaseDN: ou=people,%[2]s
    groupBaseDN: ou=groups,%[2]s
  mappers: [user-uid, user-gid, user-gids, user-groups]
namespace-bootstrap:
  ldap:
    url: %[1]s
    preset: rfc2307
    userBaseDN: ou=people,%[2]s
    groupBaseDN: ou=groups,%[2]s
policies:
  engine: vap
  registries: [registry.example.org]
  hostPaths:
    allowed: [/fs/scratch, /apps]
    allowUserHome: true
`, s.env.LDAP.URL, s.env.LDAP.Suffix)
	path := filepath.Join(s.dir, "demo-values.yaml")
	return path, os.WriteFile(path, []byte(v), 0o600)
}

// Install installs the umbrella chart with Helm, and reads each tool's
// container args from the same rendering, to run the tools locally with the
// chart's settings.
func (s *Story) Install(ctx context.Context) error {
	helm, err := testenv.Helm()
	if err != nil {
		return err
	}
	values, err := s.valuesFile()
	if err != nil {
		return err
	}
	chart := filepath.Join(s.opts.Root, "charts", "kubehpc")
	common := []string{"kubehpc", chart, "--namespace", chartNamespace, "-f", values, "--kubeconfig", s.env.Kube.KubeconfigPath}
	out, err := exec.CommandContext(ctx, helm, append([]string{"install", "--create-namespace"}, common...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm install: %w: %s", err, out)
	}
	s.p.OK("helm install kubehpc charts/kubehpc -n %s (ValidatingAdmissionPolicies, ClusterRoles, one ServiceAccount per tool)", chartNamespace)
	rendered, err := exec.CommandContext(ctx, helm, append([]string{"template"}, common...)...).Output()
	if err != nil {
		return fmt.Errorf("helm template: %w", err)
	}
	for _, doc := range bytes.Split(rendered, []byte("\n---")) {
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err != nil || d.Kind != "Deployment" || len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		for _, t := range toolNames() {
			if d.Name == t {
				s.args[t] = d.Spec.Template.Spec.Containers[0].Args
			}
		}
	}
	for _, t := range toolNames() {
		if s.args[t] == nil {
			return fmt.Errorf("the rendered chart has no Deployment %s", t)
		}
	}
	s.p.Line("the tools run here as processes, each as its chart ServiceAccount, with the chart's args:")
	for _, t := range toolNames() {
		s.p.Line("%s:", t)
		s.p.Block(wrap(strings.Join(s.args[t], " "), 110))
	}
	return nil
}

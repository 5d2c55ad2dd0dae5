package tests

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubehpc/kubehpc/job-pod-reaper/reaper"
	"github.com/kubehpc/kubehpc/ldap-configmap/mapsync"
	"github.com/kubehpc/kubehpc/namespace-bootstrap/bootstrap"
	nsreaper "github.com/kubehpc/kubehpc/namespace-reaper/reaper"
	"github.com/kubehpc/kubehpc/pkg/app"
)

// tools are the four tools as their main.go runs them: each package's Tool
// value and NewConfig.
var tools = map[string]func() (app.Tool, app.Command){
	"ldap-configmap":      func() (app.Tool, app.Command) { return mapsync.Tool, mapsync.NewConfig() },
	"job-pod-reaper":      func() (app.Tool, app.Command) { return reaper.Tool, reaper.NewConfig() },
	"namespace-reaper":    func() (app.Tool, app.Command) { return nsreaper.Tool, nsreaper.NewConfig() },
	"namespace-bootstrap": func() (app.Tool, app.Command) { return bootstrap.Tool, bootstrap.NewConfig() },
}

// TestChartArgsParseInTools renders the umbrella with its defaults, every
// example and the test install, and runs each tool's container args and env
// through the tool's own flag parsing and validation (app.Parse, exactly as
// its main.go does): every flag the chart passes exists and is valid.
func TestChartArgsParseInTools(t *testing.T) {
	files := []string{""}
	ci, _ := filepath.Glob(filepath.Join(umbrella(t), "ci", "*.yaml"))
	files = append(files, ci...)
	files = append(files, filepath.Join("testdata", "install-values.yaml"))
	for _, f := range files {
		name := "default"
		args := []string{"template", "kubehpc", umbrella(t), "--namespace", "kubehpc"}
		if f != "" {
			name = strings.TrimSuffix(filepath.Base(f), ".yaml")
			args = append(args, "--values", f)
		}
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, doc := range strings.Split(out, "\n---\n") {
				var meta struct{ Kind string }
				if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
					t.Fatal(err)
				}
				var spec *corev1.PodSpec
				switch meta.Kind {
				case "Deployment":
					var d appsv1.Deployment
					if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
						t.Fatal(err)
					}
					spec = &d.Spec.Template.Spec
				case "CronJob":
					var c batchv1.CronJob
					if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
						t.Fatal(err)
					}
					spec = &c.Spec.JobTemplate.Spec.Template.Spec
				default:
					continue
				}
				c := spec.Containers[0]
				mk, ok := tools[c.Name]
				if !ok {
					t.Fatalf("container %s is not one of the tools", c.Name)
				}
				seen++
				envs := map[string]string{"POD_NAMESPACE": "kubehpc", "POD_NAME": c.Name + "-0"}
				for _, e := range c.Env {
					if e.ValueFrom == nil {
						envs[e.Name] = e.Value
					}
				}
				lookup := func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
				tool, cmd := mk()
				if _, err := app.Parse(tool, c.Args, lookup, io.Discard, cmd); err != nil {
					t.Errorf("%s %s: the chart's args do not parse in the tool: %v\nargs: %s", meta.Kind, c.Name, err, fmt.Sprint(c.Args))
				}
			}
			if seen == 0 {
				t.Errorf("no tool workload rendered")
			}
		})
	}
}

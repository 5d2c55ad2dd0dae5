package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// chartsDir is charts/ of the repository.
func chartsDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts")
}

// umbrella is the umbrella chart's directory.
func umbrella(t testing.TB) string { return filepath.Join(chartsDir(t), "kubehpc") }

// subchart is a subchart's directory.
func subchart(t testing.TB, name string) string {
	return filepath.Join(umbrella(t), "charts", name)
}

// subcharts are the umbrella's subcharts.
var subcharts = []string{"ldap-configmap", "job-pod-reaper", "namespace-reaper", "namespace-bootstrap", "policies"}

// libraryUsers are the subcharts that depend on the library chart kubehpc-lib:
// all of them.
var libraryUsers = subcharts

// run runs a command with a time limit and returns its stdout; stderr is in
// the error.
func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	return runTimeout(t, 2*time.Minute, name, args...)
}

// runTimeout is run with another time limit.
func runTimeout(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(os.TempDir(), "kubehpc-helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(os.TempDir(), "kubehpc-helm-config"),
		"HELM_DATA_HOME="+filepath.Join(os.TempDir(), "kubehpc-helm-data"))
	if env != nil && env.Kube != nil {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+env.Kube.KubeconfigPath)
	}
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// helm runs the project's Helm.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin, err := testenv.Helm()
	if err != nil {
		t.Fatal(err)
	}
	return run(t, bin, args...)
}

// kubectl runs the control plane's kubectl as the admin.
func kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return run(t, env.Kube.Kubectl(), append([]string{"--kubeconfig", env.Kube.KubeconfigPath}, args...)...)
}

// must fails the test on err and returns out.
func must(t testing.TB, out string, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

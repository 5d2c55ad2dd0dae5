package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

const hookScript = "../hooks/ondemand-pre-hook.sh"

// runHook runs the shipped pre-hook script as nginx_stage does, with env.
func runHook(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{hookScript}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "NAMESPACE_BOOTSTRAP_SYSLOG=false"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestPreHookScriptServiceMode proves the shipped pre-hook, given only the
// user's token and the service URL, bootstraps the user through the
// service, and fails visibly (non-zero, with the reason) otherwise.
func TestPreHookScriptServiceMode(t *testing.T) {
	c := newConfig(t)
	u, _, _ := startService(t, c)
	caFile := filepath.Join(filepath.Dir(c.TLSCertFile), "ca.crt")
	hookEnv := filepath.Join(t.TempDir(), "hook.env")
	if err := os.WriteFile(hookEnv, []byte(fmt.Sprintf("NAMESPACE_BOOTSTRAP_URL=%s\nNAMESPACE_BOOTSTRAP_CA_FILE=%s\n", u, caFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	cleanupNamespace(t, c.NamespacePrefix+"alice")
	base := []string{"NAMESPACE_BOOTSTRAP_HOOK_ENV=" + hookEnv}

	out, err := runHook(t, append(base, "OOD_OIDC_ACCESS_TOKEN=alice-token"), "--user", "alice")
	if err != nil || !strings.Contains(out, "bootstrapped user alice") {
		t.Fatalf("hook --user alice = %v, output:\n%s", err, out)
	}
	if !namespaceExists(t, c.NamespacePrefix+"alice") {
		t.Errorf("namespace %salice not created by the hook", c.NamespacePrefix)
	}
	tests := []struct {
		name   string
		env    []string
		args   []string
		want   string
		wantNS string
	}{
		{name: "another user's token", env: []string{"OOD_OIDC_ACCESS_TOKEN=alice-token"}, args: []string{"--user", "bob"}, want: "HTTP 403", wantNS: "bob"},
		{name: "invalid token", env: []string{"OOD_OIDC_ACCESS_TOKEN=forged"}, args: []string{"--user", "bob"}, want: "HTTP 401", wantNS: "bob"},
		{name: "no token exported", args: []string{"--user", "bob"}, want: "OOD_OIDC_ACCESS_TOKEN is empty", wantNS: "bob"},
		{name: "no user", env: []string{"OOD_OIDC_ACCESS_TOKEN=bob-token"}, want: "usage"},
	}
	// Users outside the gating group are skipped (exit 0, nothing created).
	out, err = runHook(t, append(base, "OOD_OIDC_ACCESS_TOKEN=bob-token", "NAMESPACE_BOOTSTRAP_GROUP=no-such-group-kubehpc"), "--user", "bob")
	if err != nil || !strings.Contains(out, "not in group") || namespaceExists(t, c.NamespacePrefix+"bob") {
		t.Errorf("hook for a user outside the group = %v, output %q; want a skip", err, out)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runHook(t, append(base, tt.env...), tt.args...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("hook = %v, output %q; want failure mentioning %q", err, out, tt.want)
			}
			if tt.wantNS != "" && namespaceExists(t, c.NamespacePrefix+tt.wantNS) {
				t.Errorf("namespace %s%s created", c.NamespacePrefix, tt.wantNS)
			}
		})
	}
}

// TestPreHookScriptHookMode proves the script runs the binary in hook mode
// (--user implies --once) with the hook.env names OnDemand sites already
// have (NAMESPACE_PREFIX), and reports a refused user.
func TestPreHookScriptHookMode(t *testing.T) {
	installRBAC(t)
	bin := testenv.BuildBinary(t, "..")
	prefix := uniquePrefix()
	cleanupNamespace(t, prefix+"bob")
	env := []string{
		"NAMESPACE_BOOTSTRAP_BIN=" + bin, "KUBECONFIG=" + envKubeconfig(), "NAMESPACE_PREFIX=" + prefix,
		"NAMESPACE_BOOTSTRAP_HOOK_ENV=/nonexistent",
	}
	if out, err := runHook(t, env, "--user", "bob"); err != nil || !strings.Contains(out, "bootstrapped user bob") {
		t.Fatalf("hook --user bob = %v, output:\n%s", err, out)
	}
	if !namespaceExists(t, prefix+"bob") {
		t.Errorf("namespace %sbob not created", prefix)
	}
	// The process wrote its Event before exiting.
	if n := bootstrappedEvents(t, prefix+"bob"); n != 1 {
		t.Errorf("Bootstrapped Events on %sbob after the hook exited = %d, want 1", prefix, n)
	}
	if out, err := runHook(t, env, "--user", "bad_name"); err == nil || !strings.Contains(out, "invalid username") {
		t.Errorf("hook --user bad_name = %v, output %q; want a failure naming the invalid username", err, out)
	}
}

func envKubeconfig() string { return env.Kube.KubeconfigPath }

// bootstrappedEvents counts the Bootstrapped Events namespace-bootstrap
// recorded on the namespace ns, read once: hook mode writes them before it
// returns, so there is nothing to wait for.
func bootstrappedEvents(t *testing.T, ns string) int {
	t.Helper()
	evs, err := env.Kube.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", ns).String()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs.Items {
		if e.Reason == "Bootstrapped" && e.InvolvedObject.Kind == "Namespace" && e.Source.Component == Tool.Name {
			n++
		}
	}
	return n
}

// TestHookModeRun runs the tool's main body in hook mode: --user alone runs
// one bootstrap and returns (no --once needed) with its Event written, and
// an invalid user fails before touching the cluster.
func TestHookModeRun(t *testing.T) {
	installRBAC(t)
	prefix := uniquePrefix()
	cleanupNamespace(t, prefix+"alice")
	tool := Tool.WithVersion("test")
	lookup := func(string) (string, bool) { return "", false }
	var out bytes.Buffer
	args := []string{"--user", "alice", "--kubeconfig", env.Kube.KubeconfigPath, "--namespace-prefix", prefix}
	if err := app.Run(context.Background(), tool, args, lookup, &out, NewConfig()); err != nil {
		t.Fatalf("Run(%v) = %v\n%s", args, err, out.String())
	}
	if !namespaceExists(t, prefix+"alice") {
		t.Errorf("namespace %salice not created", prefix)
	}
	if n := bootstrappedEvents(t, prefix+"alice"); n != 1 {
		t.Errorf("Bootstrapped Events on %salice when Run returned = %d, want 1 (hook mode records synchronously)", prefix, n)
	}
	err := app.Run(context.Background(), tool, []string{"--user", "Bad_Name", "--kubeconfig", env.Kube.KubeconfigPath}, lookup, &out, NewConfig())
	if err == nil || !strings.Contains(err.Error(), "invalid username") {
		t.Errorf("Run(--user Bad_Name) = %v, want an invalid username error", err)
	}
}

// Package testenv starts the real servers the integration tests and the demo
// run against: a Kubernetes control plane (etcd, kube-apiserver, optionally
// kube-controller-manager) built from the Go module proxy, and OpenLDAP's slapd
// from Debian packages, each on ephemeral loopback ports in a throwaway
// directory.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RepoRoot returns the directory holding go.work, searching up from the
// working directory (tests run in their package directory).
func RepoRoot() (string, error) {
	if root := os.Getenv("KUBEHPC_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "kubebins.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no hack/kubebins.sh above the working directory (set KUBEHPC_ROOT)")
		}
		dir = parent
	}
}

// KubeAssets returns a directory holding kube-apiserver, etcd, kubectl and
// kube-controller-manager: $KUBEBUILDER_ASSETS if set, else the project's
// cache, building the binaries first if needed (hack/kubebins.sh, ~12 minutes
// cold, serialised by a file lock).
func KubeAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return runScript(filepath.Join(root, "hack", "kubebins.sh"))
}

// Helm returns the path of the helm binary the project builds and caches.
func Helm() (string, error) {
	if p := os.Getenv("KUBEHPC_HELM"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return runScript(filepath.Join(root, "hack", "tool.sh"), "helm")
}

func runScript(path string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s %s: %w: %s", path, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// findBinary looks a program up in PATH and then in /usr/sbin (slapd).
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or /usr/sbin: run hack/install-deps.sh (make test does)", name)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Package tests proves the umbrella Helm chart and its admission policies on
// the real API server: every chart lints, renders and passes the server's
// strict validation; the umbrella installs; each tool's service account can
// make exactly the calls its code makes; and the ValidatingAdmissionPolicies
// (enforced by the API server) and the Kyverno ClusterPolicies (with the
// Kyverno CLI) reject the same catalogue of attacks.
package tests

import (
	"os"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{Kube: true, KubeOptions: testenv.KubeOptions{ControllerManager: true}}, &env))
}

package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zaptest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var env *testenv.Env

// Static tokens the API server accepts: the portal users' "OIDC" tokens.
var tokens = []testenv.Token{
	{Token: "alice-token", User: "alice"},
	{Token: "bob-token", User: "bob"},
	{Token: "mallory-token", User: "mallory"}, // not in LDAP
	{Token: "bad-name-token", User: "bad_name"},
	{Token: "oidc-dave-token", User: "oidc:dave"},
	{Token: "node-token", User: "system:node:n1", Groups: []string{"system:nodes"}},
}

// benchUsers have static tokens "bench-<user>" for the concurrent-login
// benchmark (users of testenv.GenerateDirectory).
const benchUsers = 200

func TestMain(m *testing.M) {
	all := append([]testenv.Token(nil), tokens...)
	for i := range benchUsers {
		u := fmt.Sprintf("user%05d", i)
		all = append(all, testenv.Token{Token: "bench-" + u, User: u})
	}
	os.Exit(testenv.Main(m, testenv.Options{
		Kube: true, LDAP: true,
		KubeOptions: testenv.KubeOptions{ControllerManager: true, Tokens: all},
	}, &env))
}

var (
	rbacOnce sync.Once
	rbacErr  error
)

// installRBAC applies testdata/rbac.yaml: the ClusterRoles the chart ships.
func installRBAC(t testing.TB) {
	t.Helper()
	rbacOnce.Do(func() { rbacErr = applyFile(context.Background(), env.Kube.Config, "testdata/rbac.yaml") })
	if rbacErr != nil {
		t.Fatalf("install RBAC: %v", rbacErr)
	}
}

func applyFile(ctx context.Context, cfg *rest.Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := NewMapper(nil)
	mapper.known[schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}] =
		Mapping{Resource: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}}
	mapper.known[schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}] =
		Mapping{Resource: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			break
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		mp, err := mapper.Map(u.GroupVersionKind())
		if err != nil {
			return err
		}
		if _, err := dyn.Resource(mp.Resource).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "test", Force: true}); err != nil {
			return fmt.Errorf("apply %s: %w", Describe(u), err)
		}
	}
	return nil
}

// uniquePrefix returns a namespace prefix no other test uses, so that each
// test's namespaces (and reconcile passes) are its own.
func uniquePrefix() string {
	return env.UniqueName("t") + "-"
}

// ldapFlags returns the --ldap-* settings for the test slapd.
func ldapConfig(t testing.TB, c *Config) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(env.LDAP.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.LDAP.URL = env.LDAP.URL
	c.LDAP.Preset = "rfc2307" // posixGroup with memberUid
	c.LDAP.BindDN = env.LDAP.BindDN
	c.LDAP.BindPasswordFile = pw
	c.LDAP.UserBaseDN = "ou=people," + env.LDAP.Suffix
	c.LDAP.GroupBaseDN = "ou=groups," + env.LDAP.Suffix
}

// newConfig returns a Config with the flag defaults, a unique prefix and
// LDAP, changed by the given args.
func newConfig(t testing.TB, args ...string) *Config {
	t.Helper()
	c := NewConfig()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.Bool("once", false, "")
	c.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if c.NamespacePrefix == "user-" {
		c.NamespacePrefix = uniquePrefix()
	}
	if c.LDAP.URL == "" {
		ldapConfig(t, c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	return c
}

// fixture is a bootstrapper talking to the test API server through a
// request counter, with a fake clock.
type fixture struct {
	b       *Bootstrapper
	counter *kubeclient.RequestCounter
	clock   *clocktesting.FakeClock
	reg     *prometheus.Registry
	cfg     *Config
}

func newFixture(t testing.TB, c *Config, restCfg *rest.Config) *fixture {
	t.Helper()
	installRBAC(t)
	a := env.App(t, testenv.AppOptions{Config: restCfg, Now: time.Unix(1_800_000_000, 0), Log: zaptest.NewLogger(t)})
	b, err := c.NewBootstrapper(a.Env)
	if err != nil {
		t.Fatalf("NewBootstrapper() = %v", err)
	}
	b.PollInterval = 50 * time.Millisecond
	a.Counter.Reset()
	return &fixture{b: b, counter: a.Counter, clock: a.FakeClock, reg: a.Registry, cfg: c}
}

// cleanupNamespace deletes ns when the test ends.
func cleanupNamespace(t testing.TB, ns string) {
	t.Cleanup(func() {
		err := env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete namespace %s: %v", ns, err)
		}
	})
}

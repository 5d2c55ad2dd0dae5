package bootstrap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// startService builds the service-mode pass from c, acting as the
// namespace-bootstrap service account (so the tests prove its RBAC is
// enough), serves it on an ephemeral port and returns its URL and a client
// trusting its CA.
func startService(t *testing.T, c *Config) (string, *http.Client, *Pass) {
	t.Helper()
	installRBAC(t)
	ca, err := testenv.NewCA("bootstrap-test")
	if err != nil {
		t.Fatal(err)
	}
	_, certFile, keyFile, err := ca.WriteFiles(t.TempDir(), "namespace-bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	c.ListenAddress, c.TLSCertFile, c.TLSKeyFile = "127.0.0.1:0", certFile, keyFile
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := env.App(t, testenv.AppOptions{Tool: Tool, Config: env.Kube.ServiceAccountConfig("namespace-bootstrap", "namespace-bootstrap"),
		Log: zaptest.NewLogger(t), Daemon: daemon.Options{Interval: time.Minute}})
	pass, err := c.Build(context.Background(), a.Env)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	p := pass.(*Pass)
	addr, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() = %v", err)
		}
	})
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	return "https://" + addr.String() + BootstrapPath, hc, p
}

func post(t *testing.T, hc *http.Client, u, token, user string) (int, Result, http.Header) {
	t.Helper()
	if user != "" {
		u += "?user=" + url.QueryEscape(user)
	}
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var res Result
	_ = json.NewDecoder(resp.Body).Decode(&res)
	return resp.StatusCode, res, resp.Header
}

func namespaceExists(t *testing.T, ns string) bool {
	t.Helper()
	_, err := env.Kube.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestServiceMode proves the service authenticates the caller's own token
// with a TokenReview and bootstraps that user only: a missing or invalid
// token gets 401; another user's name, a user outside LDAP, an invalid
// username or a system user get 403 with nothing created; a user over the
// rate limit gets 429. It runs as the service's own service account.
func TestServiceMode(t *testing.T) {
	c := newConfig(t, "--rate-burst=3", "--rate-limit=1")
	u, hc, p := startService(t, c)
	prefix := c.NamespacePrefix
	for _, user := range []string{"alice", "bob", "mallory"} {
		cleanupNamespace(t, prefix+user)
	}

	steps := []struct {
		name, token, user string
		wantCode          int
		wantNS            string // must exist afterwards
		wantNoNS          string // must not exist afterwards
	}{
		{name: "no token", wantCode: http.StatusUnauthorized, wantNoNS: prefix + "alice"},
		{name: "invalid token", token: "forged", wantCode: http.StatusUnauthorized, wantNoNS: prefix + "alice"},
		{name: "another user's namespace", token: "alice-token", user: "bob", wantCode: http.StatusForbidden, wantNoNS: prefix + "bob"},
		{name: "user outside LDAP", token: "mallory-token", wantCode: http.StatusForbidden, wantNoNS: prefix + "mallory"},
		{name: "invalid username", token: "bad-name-token", wantCode: http.StatusForbidden},
		{name: "system user", token: "node-token", wantCode: http.StatusForbidden},
		{name: "own token", token: "alice-token", wantCode: http.StatusOK, wantNS: prefix + "alice"},
		{name: "own token, own name", token: "alice-token", user: "alice", wantCode: http.StatusOK, wantNS: prefix + "alice"},
		{name: "another user", token: "bob-token", wantCode: http.StatusOK, wantNS: prefix + "bob"},
		{name: "third login within the burst", token: "alice-token", wantCode: http.StatusOK},
		{name: "over the rate limit", token: "alice-token", wantCode: http.StatusTooManyRequests},
	}
	for _, s := range steps {
		code, res, hdr := post(t, hc, u, s.token, s.user)
		if code != s.wantCode {
			t.Errorf("%s: POST = %d, want %d", s.name, code, s.wantCode)
		}
		if s.wantNS != "" && (!namespaceExists(t, s.wantNS) || res.Namespace != s.wantNS) {
			t.Errorf("%s: namespace %s missing (result %+v)", s.name, s.wantNS, res)
		}
		if s.wantNoNS != "" && namespaceExists(t, s.wantNoNS) {
			t.Errorf("%s: namespace %s was created", s.name, s.wantNoNS)
		}
		if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", s.name)
		}
		if code == http.StatusTooManyRequests && hdr.Get("Retry-After") != "60" {
			t.Errorf("%s: Retry-After = %q, want 60", s.name, hdr.Get("Retry-After"))
		}
	}
	testenv.EventuallyWithin(t, 30*time.Second, "a Bootstrapped Event in alice's namespace", func() (bool, error) {
		evs, err := env.Kube.Client.CoreV1().Events(prefix+"alice").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "Bootstrapped" && e.InvolvedObject.Kind == "Namespace" && e.Source.Component == Tool.Name {
				return true, nil
			}
		}
		return false, nil
	})
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %v, %v; want 405", u, resp, err)
	}
	if got := testutil.ToFloat64(p.b.metrics.requests.WithLabelValues("403")); got != 4 {
		t.Errorf("http_requests_total{code=403} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(p.b.metrics.rateLimited); got != 1 {
		t.Errorf("rate_limited_total = %v, want 1", got)
	}
}

// TestServiceModeUsernamePrefix proves the OIDC username prefix is required
// and stripped: oidc:dave bootstraps dave; a token without the prefix is
// refused.
func TestServiceModeUsernamePrefix(t *testing.T) {
	c := newConfig(t, "--username-prefix=oidc:")
	u, hc, _ := startService(t, c)
	cleanupNamespace(t, c.NamespacePrefix+"dave")
	if code, res, _ := post(t, hc, u, "oidc-dave-token", "dave"); code != http.StatusOK || res.Namespace != c.NamespacePrefix+"dave" {
		t.Errorf("POST as oidc:dave = %d %+v, want 200 and namespace %sdave", code, res, c.NamespacePrefix)
	}
	rb, err := env.Kube.Client.RbacV1().RoleBindings(c.NamespacePrefix+"dave").Get(context.Background(), "dave-ood-user", metav1.GetOptions{})
	if err != nil || rb.Subjects[0].Name != "oidc:dave" {
		t.Errorf("dave's RoleBinding = %v, %v; want subject oidc:dave", rb, err)
	}
	if code, _, _ := post(t, hc, u, "alice-token", ""); code != http.StatusForbidden {
		t.Errorf("POST as unprefixed alice = %d, want 403", code)
	}
}

// TestServiceAccountBindsOnlyListedRoles proves the service account's RBAC
// uses bind restricted by resourceNames: it can bind ood-user,
// ood-initializer and job-pod-reaper, but not cluster-admin or admin, and
// it cannot itself create pods.
func TestServiceAccountBindsOnlyListedRoles(t *testing.T) {
	installRBAC(t)
	ctx := context.Background()
	ns := env.Namespace(t, "bind-", nil)
	sa, err := testenv.ClientFor(env.Kube.ServiceAccountConfig("namespace-bootstrap", "namespace-bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	rb := func(role string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "to-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "someone"}},
		}
	}
	for _, role := range []string{"ood-user", "ood-initializer", "job-pod-reaper"} {
		if _, err := sa.RbacV1().RoleBindings(ns).Create(ctx, rb(role), metav1.CreateOptions{}); err != nil {
			t.Errorf("bind %s: %v, want allowed", role, err)
		}
	}
	for _, role := range []string{"cluster-admin", "admin", "edit"} {
		if _, err := sa.RbacV1().RoleBindings(ns).Create(ctx, rb(role), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("bind %s: err = %v, want Forbidden", role, err)
		}
	}
	if _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account lists pods: err = %v, want Forbidden (it holds none of what it grants)", err)
	}
}

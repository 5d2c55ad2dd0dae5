package bootstrap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

var (
	scaleOnce  sync.Once
	scaleLDAP  *testenv.Slapd
	scaleErr   error
	scaleUsers = 1000
)

// scaleDirectory starts a second slapd with testenv.GenerateDirectory users
// user00000…, each in 3 of 50 project groups.
func scaleDirectory(b *testing.B) *testenv.Slapd {
	scaleOnce.Do(func() {
		scaleLDAP, scaleErr = testenv.StartSlapd(context.Background(), testenv.SlapdOptions{
			Suffix: "dc=scale,dc=org", LDIF: testenv.GenerateDirectory("dc=scale,dc=org", scaleUsers, 50, 3)})
	})
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	return scaleLDAP
}

// benchConfig is a Config with the default template, LDAP from the scale
// directory (unless noLDAP), and the given extra flags.
func benchConfig(b *testing.B, noLDAP bool, args ...string) *Config {
	c := newConfig(b, args...)
	if noLDAP {
		c.LDAP.URL = ""
		return c
	}
	s := scaleDirectory(b)
	pw := filepath.Join(b.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(s.Password), 0o600); err != nil {
		b.Fatal(err)
	}
	c.LDAP.URL, c.LDAP.BindDN, c.LDAP.BindPasswordFile = s.URL, s.BindDN, pw
	c.LDAP.UserBaseDN, c.LDAP.GroupBaseDN = "ou=people,"+s.Suffix, "ou=groups,"+s.Suffix
	return c
}

func fastConfig(cfg *rest.Config, qps float32) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, int(2*qps)
	return cfg
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func reportLatency(b *testing.B, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, "p99_ms")
}

// reportLogins reports the latency of the logins lat and the API requests
// and writes counter counted, per login.
func reportLogins(b *testing.B, lat []time.Duration, counter *kubeclient.RequestCounter) {
	reportLatency(b, lat)
	b.ReportMetric(float64(counter.Total())/float64(len(lat)), "api_requests/op")
	b.ReportMetric(float64(counter.Writes())/float64(len(lat)), "api_writes/op")
	b.Logf("requests: %s", counter)
}

// BenchmarkBootstrapNewUser: first logins of 100 users (LDAP lookup, the
// default template: namespace, 2 RoleBindings, NetworkPolicy), one after
// another. The client is not throttled: in hook mode each login is a new
// process whose burst (40) exceeds the requests of one login.
func BenchmarkBootstrapNewUser(b *testing.B) {
	const n = 100
	c := benchConfig(b, false)
	f := newFixture(b, c, fastConfig(env.Kube.Config, 1000))
	ctx := context.Background()
	var lat []time.Duration
	for range b.N {
		for i := range n {
			start := time.Now()
			if _, err := f.b.Bootstrap(ctx, fmt.Sprintf("user%05d", i)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	reportLogins(b, lat, f.counter)
}

// BenchmarkBootstrapRerun: 200 logins of up-to-date users (the target is a
// p50 under 100 ms and no write but the login annotation), unthrottled as
// in hook mode.
func BenchmarkBootstrapRerun(b *testing.B) {
	const users, rounds = 20, 10
	c := benchConfig(b, false)
	f := newFixture(b, c, fastConfig(env.Kube.Config, 1000))
	ctx := context.Background()
	for i := range users {
		if _, err := f.b.Bootstrap(ctx, fmt.Sprintf("user%05d", 500+i)); err != nil {
			b.Fatal(err)
		}
	}
	f.counter.Reset()
	var lat []time.Duration
	for range b.N {
		for r := range rounds {
			for i := range users {
				f.clock.Step(time.Second)
				start := time.Now()
				res, err := f.b.Bootstrap(ctx, fmt.Sprintf("user%05d", 500+i))
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Applied) > 0 {
					b.Fatalf("round %d: re-run applied %v", r, res.Applied)
				}
				lat = append(lat, time.Since(start))
			}
		}
	}
	reportLogins(b, lat, f.counter)
}

// BenchmarkServiceConcurrentLogins: 200 users log in at once through the
// HTTPS service (TokenReview, LDAP lookup, first bootstrap), with the
// service's client at --kube-api-qps 20 (the default) and 200.
func BenchmarkServiceConcurrentLogins(b *testing.B) {
	for _, qps := range []float32{20, 200} {
		b.Run(fmt.Sprintf("qps=%v", qps), func(b *testing.B) { benchService(b, qps) })
	}
}

func benchService(b *testing.B, qps float32) {
	// Every login comes from 127.0.0.1: the per-client-address limit
	// (a defence against one client flooding TokenReviews) is lifted so the
	// benchmark measures the service, not that limiter.
	c := benchConfig(b, false, "--rate-burst=5", "--client-rate-limit=1000000", "--client-rate-burst=100000")
	ca, err := testenv.NewCA("bench")
	if err != nil {
		b.Fatal(err)
	}
	_, certFile, keyFile, err := ca.WriteFiles(b.TempDir(), "svc")
	if err != nil {
		b.Fatal(err)
	}
	c.ListenAddress, c.TLSCertFile, c.TLSKeyFile = "127.0.0.1:0", certFile, keyFile
	installRBAC(b)
	a := env.App(b, testenv.AppOptions{Tool: Tool, Config: fastConfig(env.Kube.Config, qps), Log: zap.NewNop(), Daemon: daemon.Options{Interval: time.Hour}})
	counter := a.Counter
	pass, err := c.Build(context.Background(), a.Env)
	if err != nil {
		b.Fatal(err)
	}
	p := pass.(*Pass)
	addr, err := p.Listen()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Start(ctx) }()
	u := "https://" + addr.String() + BootstrapPath
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: benchUsers,
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	lat := make([]time.Duration, benchUsers)
	var wall time.Duration
	for range b.N {
		counter.Reset()
		var wg sync.WaitGroup
		errs := make(chan error, benchUsers)
		start := time.Now()
		for i := range benchUsers {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, u, nil)
				req.Header.Set("Authorization", "Bearer bench-"+fmt.Sprintf("user%05d", i))
				t0 := time.Now()
				resp, err := hc.Do(req)
				lat[i] = time.Since(t0)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("user%05d: HTTP %d", i, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		wall = time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	reportLatency(b, lat)
	b.ReportMetric(wall.Seconds(), "wall_s")
	b.ReportMetric(float64(benchUsers)/wall.Seconds(), "logins/s")
	b.ReportMetric(float64(counter.Total())/benchUsers, "api_requests/login")
	b.Logf("requests: %s", counter)
}

// BenchmarkHookProcess: the pre-hook's cost as the portal sees it in hook
// mode: the whole namespace-bootstrap process (start, kubeconfig, LDAP
// lookup, bootstrap, exit) for one first login and 20 re-runs.
func BenchmarkHookProcess(b *testing.B) {
	installRBAC(b)
	bin := testenv.BuildBinary(b, "..")
	c := benchConfig(b, false)
	args := []string{"--user", "user00900", "--kubeconfig", env.Kube.KubeconfigPath, "--namespace-prefix", c.NamespacePrefix,
		"--ldap-url", c.LDAP.URL, "--ldap-preset", "rfc2307", "--ldap-bind-dn", c.LDAP.BindDN, "--ldap-bind-password-file", c.LDAP.BindPasswordFile,
		"--ldap-user-base-dn", c.LDAP.UserBaseDN, "--ldap-group-base-dn", c.LDAP.GroupBaseDN, "--log-level", "warn"}
	run := func() time.Duration {
		start := time.Now()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return time.Since(start)
	}
	for range b.N {
		first := run()
		var lat []time.Duration
		for range 20 {
			lat = append(lat, run())
		}
		b.ReportMetric(float64(first.Microseconds())/1000, "first_login_ms")
		reportLatency(b, lat)
	}
}

// BenchmarkReconcile5000: a reconcile pass over 5,000 managed namespaces
// when nothing drifted, then after a template change that touches every
// namespace's NetworkPolicy.
func BenchmarkReconcile5000(b *testing.B) {
	const n = 5000
	c := benchConfig(b, true, "--reconcile-workers=8")
	setup := newFixture(b, c, fastConfig(env.Kube.Config, 1000))
	ctx := context.Background()
	start := time.Now()
	err := testenv.Parallel(n, 16, func(i int) error {
		_, err := setup.b.Bootstrap(ctx, fmt.Sprintf("r%05d", i))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("set up %d namespaces in %v", n, time.Since(start).Round(time.Second))

	for range b.N {
		f := newFixture(b, c, fastConfig(env.Kube.Config, 200))
		t0 := time.Now()
		if err := f.b.Reconcile(ctx, c.ReconcileWorkers); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "unchanged_pass_s")
		b.ReportMetric(float64(f.counter.Total()), "unchanged_pass_requests")
		b.ReportMetric(float64(f.counter.Writes()), "unchanged_pass_writes")
		b.Logf("unchanged pass: %s", f.counter)

		changed := *c
		changed.NetworkPolicyAllowCIDRs = []string{"192.0.2.0/24"}
		f2 := newFixture(b, &changed, fastConfig(env.Kube.Config, 200))
		t0 = time.Now()
		if err := f2.b.Reconcile(ctx, c.ReconcileWorkers); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "changed_pass_s")
		b.ReportMetric(float64(f2.counter.Writes()), "changed_pass_writes")
		b.Logf("changed pass: %s", f2.counter)
	}
}

package bootstrap

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
)

var testTool = Tool.WithVersion("test")

var update = flag.Bool("update", false, "rewrite testdata/help.txt and testdata/reconcile/*.golden from the current code")

// TestParse parses argv and the environment through app.Parse, as main
// does, and asserts the resulting configuration: flags, NAMESPACE_BOOTSTRAP_*
// variables, and the hook.env names of Open OnDemand's own hook.
func TestParse(t *testing.T) {
	environ := map[string]string{
		"NAMESPACE_PREFIX":                       "ood-",
		"K8S_USERNAME_PREFIX":                    "oidc:",
		"NETWORK_POLICY_ALLOW_CIDR":              "10.1.0.5/32,10.1.0.6/32",
		"USE_JOB_POD_REAPER":                     "true",
		"NAMESPACE_BOOTSTRAP_RESOURCE_QUOTA":     "requests.cpu=4",
		"NAMESPACE_BOOTSTRAP_LDAP_URL":           "ldaps://ldap.example.org",
		"NAMESPACE_BOOTSTRAP_LDAP_USER_BASE_DN":  "ou=people,dc=example,dc=org",
		"NAMESPACE_BOOTSTRAP_LDAP_GROUP_BASE_DN": "ou=groups,dc=example,dc=org",
	}
	c := NewConfig()
	o, err := app.Parse(testTool, []string{"--user", "John.Smith", "--egress-deny", "--egress-allow-ports", "53/udp,443",
		"--pod-security-enforce", "restricted", "--terminating-timeout", "30s"}, apptest.Lookup(environ), io.Discard, c)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if !o.Daemon.Once {
		t.Errorf("--user did not imply --once")
	}
	want := &Config{
		User: "John.Smith", NamespacePrefix: "ood-", UsernamePrefix: "oidc:",
		NamespaceLabels: map[string]string{"app.kubernetes.io/name": "open-ondemand"},
		UserClusterRole: "ood-user", InitializerClusterRole: "ood-initializer",
		JobPodReaper: true, JobPodReaperServiceAccount: "job-pod-reaper", JobPodReaperNamespace: "job-pod-reaper", JobPodReaperClusterRole: "job-pod-reaper",
		NetworkPolicyAllowCIDRs: []string{"10.1.0.5/32", "10.1.0.6/32"},
		EgressDeny:              true, EgressAllowPorts: []string{"53/udp", "443"},
		PodSecurityEnforce: "restricted", ResourceQuota: map[string]string{"requests.cpu": "4"},
		TerminatingTimeout: 30 * time.Second, Reconcile: true, ReconcileWorkers: 4,
		RateLimit: 6, RateBurst: 3, RequestTimeout: 2 * time.Minute,
		ClientRateLimit: 120, ClientRateBurst: 30, TokenReviewQPS: 50, TokenReviewBurst: 100,
		egressPorts: []Port{{53, "UDP"}, {443, "TCP"}},
	}
	want.LDAP = c.LDAP // checked below
	opts := []cmp.Option{cmp.AllowUnexported(Config{}), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(want, c, opts...); diff != "" {
		t.Errorf("Parse() config (-want +got):\n%s", diff)
	}
	if c.LDAP.URL != "ldaps://ldap.example.org" || !c.LDAP.TLSVerify || !c.LDAP.Nested || c.LDAP.Timeout != 10*time.Second {
		t.Errorf("LDAP config = %+v", c.LDAP)
	}
}

// TestParseErrors names each bad configuration and its error.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "invalid user", args: []string{"--user", "a_b"}, want: "--user: invalid username"},
		{name: "empty user", args: []string{"--user", ""}, want: "needs a username"},
		{name: "blank user", args: []string{"--user= "}, want: "needs a username"},
		{name: "bad client rate", args: []string{"--listen-address", ":8443", "--tls-cert-file", "c", "--tls-key-file", "k", "--client-rate-limit", "-1"}, want: "--client-rate-limit must be positive"},
		{name: "hook and service", args: []string{"--user", "alice", "--listen-address", ":8443", "--tls-cert-file", "c", "--tls-key-file", "k"}, want: "exclude each other"},
		{name: "service without TLS", args: []string{"--listen-address", ":8443"}, want: "only speaks HTTPS"},
		{name: "bad CIDR", args: []string{"--network-policy-allow-cidrs", "10.0.0.1"}, want: `CIDR "10.0.0.1"`},
		{name: "bad port", args: []string{"--egress-allow-ports", "53/ICMP"}, want: "protocol must be TCP, UDP or SCTP"},
		{name: "bad PSA level", args: []string{"--pod-security-enforce", "strict"}, want: "want privileged, baseline or restricted"},
		{name: "pull secret without file", args: []string{"--image-pull-secret", "reg"}, want: "go together"},
		{name: "bad prefix", args: []string{"--namespace-prefix", "User_"}, want: "--namespace-prefix"},
		{name: "LDAP without bases", args: []string{"--ldap-url", "ldap://x"}, want: "the user base DN is required"},
		{name: "LDAP filter", args: []string{"--ldap-url", "ldap://x", "--ldap-user-base-dn", "a", "--ldap-group-base-dn", "b", "--ldap-user-filter", "(uid=*"}, want: "LDAP filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.Parse(testTool, tt.args, apptest.NoEnv, io.Discard, NewConfig())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%v) = %v, want error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestNewConfigIsTheFlagDefaults: the defaults live in NewConfig, and
// AddFlags only binds the flags to them, so parsing no flags changes nothing
// and a field set before parsing keeps its value (AddFlags once forced
// Reconcile back to true).
func TestNewConfigIsTheFlagDefaults(t *testing.T) {
	apptest.ParseKeepsDefaults(t, testTool, NewConfig, cmp.AllowUnexported(Config{}))
	c := NewConfig()
	c.Reconcile = false
	apptest.Parse(t, testTool, nil, nil, c)
	if c.Reconcile || c.ReconcileWorkers != 4 {
		t.Errorf("Parse(NewConfig() with Reconcile false) = reconcile %v, workers %d; want false, 4", c.Reconcile, c.ReconcileWorkers)
	}
}

// TestHelp compares --help, defaults included, with testdata/help.txt (the
// output before the defaults moved into NewConfig); -update rewrites it.
func TestHelp(t *testing.T) {
	apptest.Help(t, testTool, NewConfig(), *update)
}

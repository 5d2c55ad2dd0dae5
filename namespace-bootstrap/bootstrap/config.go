package bootstrap

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/namespace-bootstrap/ldapidentity"
	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

// Tool is namespace-bootstrap's name (binary, Event source, server-side
// apply field manager and managed-by value), environment prefix and metric
// prefix, and the Open OnDemand hook.env variables mapped to our flags, so a
// site's existing /etc/ood/config/hook.env keeps working when exported.
// main.go, the metrics and the chart tests read it.
var Tool = app.Tool{
	Name:             "namespace-bootstrap",
	EnvPrefix:        "NAMESPACE_BOOTSTRAP",
	MetricsNamespace: "namespace_bootstrap",
	EnvAliases: map[string]string{
		"NAMESPACE_PREFIX":          "namespace-prefix",
		"K8S_USERNAME_PREFIX":       "username-prefix",
		"NETWORK_POLICY_ALLOW_CIDR": "network-policy-allow-cidrs",
		"IMAGE_PULL_SECRET":         "image-pull-secret",
		"USE_JOB_POD_REAPER":        "job-pod-reaper",
	},
}

// Config is the tool's configuration.
type Config struct {
	// User, in hook mode, is the one user to bootstrap (implies --once).
	User string

	TemplateDir     string
	NamespacePrefix string
	UsernamePrefix  string
	NamespaceLabels map[string]string

	UserClusterRole        string
	InitializerClusterRole string

	JobPodReaper               bool
	JobPodReaperServiceAccount string
	JobPodReaperNamespace      string
	JobPodReaperClusterRole    string

	NetworkPolicyAllowCIDRs []string
	EgressDeny              bool
	EgressAllowCIDRs        []string
	EgressAllowPorts        []string

	PodSecurityEnforce       string
	ResourceQuota            map[string]string
	LimitRangeDefault        map[string]string
	LimitRangeDefaultRequest map[string]string
	ImagePullSecret          string
	ImagePullSecretFile      string
	TemplateValues           map[string]string

	TerminatingTimeout time.Duration
	DryRun             bool
	Reconcile          bool
	ReconcileWorkers   int

	ListenAddress  string
	TLSCertFile    string
	TLSKeyFile     string
	RateLimit      float64
	RateBurst      int
	TokenAudiences []string
	RequestTimeout time.Duration
	// AllowedGroups is the login gate (empty: every directory user).
	AllowedGroups    []string
	ClientRateLimit  float64
	ClientRateBurst  int
	TokenReviewQPS   float32
	TokenReviewBurst int

	LDAP ldapidentity.Config

	egressPorts []Port
}

// userFlag sets --user and, since a hook bootstraps one user and exits,
// also --once (unless --once was given explicitly).
type userFlag struct {
	c  *Config
	fs *pflag.FlagSet
}

func (u *userFlag) String() string { return u.c.User }
func (u *userFlag) Type() string   { return "string" }
func (u *userFlag) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("needs a username: an empty --user would start the daemon instead of bootstrapping one user")
	}
	u.c.User = v
	if f := u.fs.Lookup("once"); f != nil && !f.Changed && v != "" {
		return u.fs.Set("once", "true")
	}
	return nil
}

// NewConfig returns the configuration with its defaults, as the flags show
// them: Open OnDemand's names, and the daemon and service modes reconcile.
func NewConfig() *Config {
	return &Config{
		NamespacePrefix:            naming.DefaultPrefix,
		NamespaceLabels:            map[string]string{identity.OnDemandNameLabel: identity.OnDemandNameValue},
		UserClusterRole:            "ood-user",
		InitializerClusterRole:     "ood-initializer",
		JobPodReaperServiceAccount: "job-pod-reaper",
		JobPodReaperNamespace:      "job-pod-reaper",
		JobPodReaperClusterRole:    "job-pod-reaper",
		NetworkPolicyAllowCIDRs:    []string{"127.0.0.1/32"},
		TerminatingTimeout:         60 * time.Second,
		Reconcile:                  true,
		ReconcileWorkers:           4,
		RateLimit:                  6,
		RateBurst:                  3,
		RequestTimeout:             2 * time.Minute,
		ClientRateLimit:            120,
		ClientRateBurst:            30,
		TokenReviewQPS:             50,
		TokenReviewBurst:           100,
		LDAP:                       ldapidentity.NewConfig(),
	}
}

// AddFlags binds the flags to c's fields, whose current values (NewConfig's
// defaults) are the flags' defaults.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.Var(&userFlag{c: c, fs: fs}, "user", "Hook mode: bootstrap this one user and exit (implies --once); the portal's pre-hook passes it")
	fs.StringVar(&c.TemplateDir, "template-dir", c.TemplateDir, "Directory of *.yaml template manifests; empty uses the built-in default template")
	fs.StringVar(&c.NamespacePrefix, "namespace-prefix", c.NamespacePrefix, "Prefix of user namespaces (Open OnDemand's namespace_prefix)")
	fs.StringVar(&c.UsernamePrefix, "username-prefix", c.UsernamePrefix, "The API server's OIDC username prefix: prepended to the user in RoleBindings, required and stripped in service mode")
	fs.StringToStringVar(&c.NamespaceLabels, "namespace-labels", c.NamespaceLabels, "Labels the template puts on user namespaces (the reapers select on app.kubernetes.io/name=open-ondemand)")
	fs.StringVar(&c.UserClusterRole, "user-cluster-role", c.UserClusterRole, "ClusterRole bound to the user in their namespace")
	fs.StringVar(&c.InitializerClusterRole, "initializer-cluster-role", c.InitializerClusterRole, "ClusterRole bound to the namespace's default service account (job init containers)")
	fs.BoolVar(&c.JobPodReaper, "job-pod-reaper", c.JobPodReaper, "Bind job-pod-reaper's service account in each namespace (its per-namespace mode)")
	fs.StringVar(&c.JobPodReaperServiceAccount, "job-pod-reaper-service-account", c.JobPodReaperServiceAccount, "job-pod-reaper's service account")
	fs.StringVar(&c.JobPodReaperNamespace, "job-pod-reaper-namespace", c.JobPodReaperNamespace, "Namespace of job-pod-reaper's service account")
	fs.StringVar(&c.JobPodReaperClusterRole, "job-pod-reaper-cluster-role", c.JobPodReaperClusterRole, "ClusterRole bound to job-pod-reaper")
	fs.StringSliceVar(&c.NetworkPolicyAllowCIDRs, "network-policy-allow-cidrs", c.NetworkPolicyAllowCIDRs, "CIDRs (the portal's web nodes) allowed ingress besides the namespace itself")
	fs.BoolVar(&c.EgressDeny, "egress-deny", c.EgressDeny, "Add a default-deny egress NetworkPolicy")
	fs.StringSliceVar(&c.EgressAllowCIDRs, "egress-allow-cidrs", c.EgressAllowCIDRs, "With --egress-deny: CIDRs pods may reach on any port")
	fs.StringSliceVar(&c.EgressAllowPorts, "egress-allow-ports", c.EgressAllowPorts, "With --egress-deny: ports pods may reach anywhere, as PORT or PORT/PROTOCOL (e.g. 53/UDP,53/TCP)")
	fs.StringVar(&c.PodSecurityEnforce, "pod-security-enforce", c.PodSecurityEnforce, "Pod Security Admission level to enforce on user namespaces: privileged, baseline or restricted (empty: no label)")
	fs.StringToStringVar(&c.ResourceQuota, "resource-quota", c.ResourceQuota, "Hard limits of a per-user ResourceQuota, e.g. requests.cpu=64,requests.memory=256Gi (empty: none)")
	fs.StringToStringVar(&c.LimitRangeDefault, "limit-range-default", c.LimitRangeDefault, "Default container limits of a per-user LimitRange, e.g. cpu=1,memory=4Gi (empty: none)")
	fs.StringToStringVar(&c.LimitRangeDefaultRequest, "limit-range-default-request", c.LimitRangeDefaultRequest, "Default container requests of a per-user LimitRange")
	fs.StringVar(&c.ImagePullSecret, "image-pull-secret", c.ImagePullSecret, "Name of an image pull Secret to create in each namespace and attach to its default service account (empty: none)")
	fs.StringVar(&c.ImagePullSecretFile, "image-pull-secret-file", c.ImagePullSecretFile, "File holding the pull secret's .dockerconfigjson")
	fs.StringToStringVar(&c.TemplateValues, "template-value", c.TemplateValues, "Extra key=value pairs a site template reads as .Values.key")
	fs.DurationVar(&c.TerminatingTimeout, "terminating-timeout", c.TerminatingTimeout, "How long a login waits for the user's Terminating namespace to go before recreating it")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "Send every write as a server-side dry run and log what would change")
	fs.BoolVar(&c.Reconcile, "reconcile", c.Reconcile, "Daemon and service mode: each pass brings every managed namespace back to the template")
	fs.IntVar(&c.ReconcileWorkers, "reconcile-workers", c.ReconcileWorkers, "Namespaces corrected in parallel by a reconcile pass")
	fs.StringVar(&c.ListenAddress, "listen-address", c.ListenAddress, "Service mode: HTTPS address for POST /bootstrap (empty: no service)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "Service mode: PEM certificate")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "Service mode: PEM private key")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "Service mode: bootstraps a minute allowed per user")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "Service mode: bootstraps a user may make at once")
	fs.StringSliceVar(&c.TokenAudiences, "token-audiences", c.TokenAudiences, "Service mode: audiences the user's token must be for (empty: the API server's)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "Service mode: time limit of one request")
	fs.StringSliceVar(&c.AllowedGroups, "allowed-groups", c.AllowedGroups, "Only users in one of these groups may log in: a group of the token's TokenReview (as the API server names it, OIDC groups prefix included) or an LDAP group (empty: every directory user)")
	fs.Float64Var(&c.ClientRateLimit, "client-rate-limit", c.ClientRateLimit, "Service mode: requests a minute allowed per client address, checked before any TokenReview")
	fs.IntVar(&c.ClientRateBurst, "client-rate-burst", c.ClientRateBurst, "Service mode: requests a client address may make at once")
	fs.Float32Var(&c.TokenReviewQPS, "token-review-qps", c.TokenReviewQPS, "Service mode: queries per second of the separate API client that sends TokenReviews (so bad tokens cannot use up the client that writes namespaces)")
	fs.IntVar(&c.TokenReviewBurst, "token-review-burst", c.TokenReviewBurst, "Service mode: burst of the TokenReview client")
	c.LDAP.AddFlags(fs)
}

// Validate checks the flags.
func (c *Config) Validate() error {
	var errs []error
	if err := naming.ValidatePrefix(c.NamespacePrefix); err != nil {
		errs = append(errs, fmt.Errorf("--namespace-prefix: %w", err))
	}
	if c.User != "" {
		if _, err := naming.NamespaceForUser(c.NamespacePrefix, c.User); err != nil {
			errs = append(errs, fmt.Errorf("--user: %w", err))
		}
		if c.ListenAddress != "" {
			errs = append(errs, errors.New("--user (hook mode) and --listen-address (service mode) exclude each other"))
		}
	}
	for _, cidr := range append(slices.Clone(c.NetworkPolicyAllowCIDRs), c.EgressAllowCIDRs...) {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			errs = append(errs, fmt.Errorf("CIDR %q: %w", cidr, err))
		}
	}
	c.egressPorts = nil
	for _, p := range c.EgressAllowPorts {
		port, err := parsePort(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--egress-allow-ports: %w", err))
		}
		c.egressPorts = append(c.egressPorts, port)
	}
	switch c.PodSecurityEnforce {
	case "", "privileged", "baseline", "restricted":
	default:
		errs = append(errs, fmt.Errorf("--pod-security-enforce %q: want privileged, baseline or restricted", c.PodSecurityEnforce))
	}
	if (c.ImagePullSecret == "") != (c.ImagePullSecretFile == "") {
		errs = append(errs, errors.New("--image-pull-secret and --image-pull-secret-file go together"))
	}
	if c.TerminatingTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--terminating-timeout must be positive, got %v", c.TerminatingTimeout))
	}
	if c.ReconcileWorkers < 1 {
		errs = append(errs, fmt.Errorf("--reconcile-workers must be at least 1, got %d", c.ReconcileWorkers))
	}
	if c.ListenAddress != "" {
		if c.TLSCertFile == "" || c.TLSKeyFile == "" {
			errs = append(errs, errors.New("--listen-address needs --tls-cert-file and --tls-key-file: the service only speaks HTTPS"))
		}
		if c.RateLimit <= 0 || c.RateBurst < 1 {
			errs = append(errs, fmt.Errorf("--rate-limit must be positive and --rate-burst at least 1, got %v and %d", c.RateLimit, c.RateBurst))
		}
		if c.ClientRateLimit <= 0 || c.ClientRateBurst < 1 {
			errs = append(errs, fmt.Errorf("--client-rate-limit must be positive and --client-rate-burst at least 1, got %v and %d", c.ClientRateLimit, c.ClientRateBurst))
		}
		if c.TokenReviewQPS <= 0 || c.TokenReviewBurst < 1 {
			errs = append(errs, fmt.Errorf("--token-review-qps must be positive and --token-review-burst at least 1, got %v and %d", c.TokenReviewQPS, c.TokenReviewBurst))
		}
	}
	errs = append(errs, c.LDAP.Validate())
	return errors.Join(errs...)
}

func parsePort(s string) (Port, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "TCP"
	}
	proto = strings.ToUpper(proto)
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return Port{}, fmt.Errorf("port %q: want 1-65535", s)
	}
	if proto != "TCP" && proto != "UDP" && proto != "SCTP" {
		return Port{}, fmt.Errorf("port %q: protocol must be TCP, UDP or SCTP", s)
	}
	return Port{Port: n, Protocol: proto}, nil
}

// templateData returns the site part of the template data.
func (c *Config) templateData() (Data, error) {
	d := Data{
		NamespaceLabels: c.NamespaceLabels,
		Roles:           Roles{User: c.UserClusterRole, Initializer: c.InitializerClusterRole},
		JobPodReaper: JobPodReaper{Enabled: c.JobPodReaper, ServiceAccount: c.JobPodReaperServiceAccount,
			Namespace: c.JobPodReaperNamespace, ClusterRole: c.JobPodReaperClusterRole},
		NetworkPolicy: NetworkPolicy{AllowCIDRs: c.NetworkPolicyAllowCIDRs, EgressDeny: c.EgressDeny,
			EgressAllowCIDRs: c.EgressAllowCIDRs, EgressAllowPorts: c.egressPorts},
		PodSecurity:   PodSecurity{Enforce: c.PodSecurityEnforce},
		ResourceQuota: c.ResourceQuota,
		LimitRange:    LimitRange{Default: c.LimitRangeDefault, DefaultRequest: c.LimitRangeDefaultRequest},
		Values:        c.TemplateValues,
	}
	if d.Values == nil {
		d.Values = map[string]string{}
	}
	if c.ImagePullSecret != "" {
		b, err := os.ReadFile(c.ImagePullSecretFile)
		if err != nil {
			return d, fmt.Errorf("read --image-pull-secret-file: %w", err)
		}
		d.ImagePullSecret = ImagePullSecret{Name: c.ImagePullSecret, DockerConfigJSON: base64.StdEncoding.EncodeToString(b)}
	}
	return d, nil
}

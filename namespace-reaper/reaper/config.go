// Package reaper deletes user namespaces nobody has used for a long time, and
// never one that is in use or that is not a user namespace.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubehpc/kubehpc/namespace-reaper/promactivity"
	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// Tool is namespace-reaper's name (binary, Event source, field manager),
// environment prefix, metric prefix (OSC k8-namespace-reaper's, so its
// metric names stay), and OSC's environment variables mapped to our flags, so
// existing deployments keep their settings. main.go, the metrics and the
// chart tests read it.
var Tool = app.Tool{
	Name:             "namespace-reaper",
	EnvPrefix:        "NAMESPACE_REAPER",
	MetricsNamespace: "k8_namespace_reaper",
	EnvAliases: map[string]string{
		"NAMESPACE_LABELS":               "namespace-labels",
		"NAMESPACE_REGEXP":               "namespace-regexp",
		"NAMESPACE_LAST_USED_ANNOTATION": "namespace-last-used-annotation",
		"PROMETHEUS_ADDRESS":             "prometheus-address",
		"PROMETHEUS_TIMEOUT":             "prometheus-timeout",
		"PROMETHEUS_RETRY_TIMEOUT":       "prometheus-retry-timeout",
		"REAP_AFTER":                     "reap-after",
		"LAST_USED_THRESHOLD":            "last-used-threshold",
		"INTERVAL":                       "interval",
		"INTERLVAL":                      "interval",
		"RUN_ONCE":                       "once",
		"LISTEN_ADDRESS":                 "admin-address",
		"LOG_LEVEL":                      "log-level",
		"POD_NAMESPACE":                  "own-namespace",
	},
}

// Config is the tool's configuration.
type Config struct {
	// NamespaceLabels are label selectors, OR-ed.
	NamespaceLabels []string
	// NamespaceRegexp must match the whole namespace name.
	NamespaceRegexp     string
	LastUsedAnnotation  string
	LastUsedThreshold   time.Duration
	ReapAfter           time.Duration
	ReapWithPVCs        bool
	DryRun              bool
	MaxDeletionsPerPass int
	// OwnNamespace is the namespace the tool runs in; it is never deleted.
	OwnNamespace        string
	ProtectedNamespaces []string
	// ActivityRecordInterval: the pod watch writes a namespace's activity
	// annotation at most once per this interval.
	ActivityRecordInterval time.Duration
	// CacheSyncTimeout bounds how long a pass waits for the watch caches.
	CacheSyncTimeout time.Duration
	Prometheus       promactivity.Options

	policy Policy
	// namespaceFile holds the namespace of the pod the tool runs in, when
	// in a cluster (empty: inClusterNamespaceFile).
	namespaceFile string
}

// inClusterNamespaceFile is where a pod's ServiceAccount volume names its
// namespace.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// NewConfig returns the configuration with its defaults: the Open OnDemand
// profile, as the flags show them.
func NewConfig() *Config {
	return &Config{
		NamespaceLabels:        []string{identity.OnDemandNameLabel + "=" + identity.OnDemandNameValue},
		NamespaceRegexp:        "user-.+",
		LastUsedAnnotation:     identity.LastHookExecutionAnnotation,
		LastUsedThreshold:      4 * time.Hour,
		ReapAfter:              168 * time.Hour,
		MaxDeletionsPerPass:    10,
		ActivityRecordInterval: 15 * time.Minute,
		CacheSyncTimeout:       5 * time.Minute,
		Prometheus:             promactivity.Options{Timeout: 30 * time.Second, RetryTimeout: 5 * time.Minute, RetryInterval: 5 * time.Second},
	}
}

// AddFlags binds the flags to c's fields, whose current values (NewConfig's
// defaults) are the flags' defaults.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.NamespaceLabels, "namespace-labels", c.NamespaceLabels,
		"Label selectors of the namespaces to consider, OR-ed (comma-separated; quote a selector that has commas)")
	fs.StringVar(&c.NamespaceRegexp, "namespace-regexp", c.NamespaceRegexp,
		"Regular expression the WHOLE namespace name must match (anchored, as in PromQL); ANDed with --namespace-labels")
	fs.StringVar(&c.LastUsedAnnotation, "namespace-last-used-annotation", c.LastUsedAnnotation,
		"Namespace annotation holding the last login (Unix seconds); empty disables the check")
	fs.DurationVar(&c.LastUsedThreshold, "last-used-threshold", c.LastUsedThreshold,
		"Keep namespaces whose last-used annotation is more recent than this")
	fs.DurationVar(&c.ReapAfter, "reap-after", c.ReapAfter,
		"Minimum namespace age, and how long a namespace must have had no pod activity")
	fs.BoolVar(&c.ReapWithPVCs, "reap-with-pvcs", c.ReapWithPVCs,
		"Also delete idle namespaces holding PersistentVolumeClaims (users' data); off by default")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "Log and count what would be deleted; write nothing")
	fs.IntVar(&c.MaxDeletionsPerPass, "max-deletions-per-pass", c.MaxDeletionsPerPass,
		"Delete at most this many namespaces per pass (the least recently active first)")
	fs.StringVar(&c.OwnNamespace, "own-namespace", c.OwnNamespace,
		"The namespace this tool runs in, never deleted (also read from $POD_NAMESPACE; in a cluster the namespace it runs in is protected whatever this says)")
	fs.StringSliceVar(&c.ProtectedNamespaces, "protected-namespaces", c.ProtectedNamespaces,
		"More namespaces never to delete, besides the built-in default, kube-*, openshift-* and --own-namespace")
	fs.DurationVar(&c.ActivityRecordInterval, "activity-record-interval", c.ActivityRecordInterval,
		"Watch mode: record a namespace's last pod activity ("+identity.LastActivityAnnotation+") at most once per this interval")
	fs.DurationVar(&c.CacheSyncTimeout, "cache-sync-timeout", c.CacheSyncTimeout,
		"Watch mode: how long a pass waits for the namespace and pod caches to fill")
	fs.StringVar(&c.Prometheus.Address, "prometheus-address", c.Prometheus.Address,
		"Optional Prometheus URL: also keep namespaces where kube_pod_container_info saw a container within --reap-after; a failed or empty answer aborts the pass")
	fs.DurationVar(&c.Prometheus.Timeout, "prometheus-timeout", c.Prometheus.Timeout, "Timeout of each Prometheus query attempt")
	fs.DurationVar(&c.Prometheus.RetryTimeout, "prometheus-retry-timeout", c.Prometheus.RetryTimeout,
		"How long to keep retrying a failing Prometheus query (0: one attempt)")
	fs.DurationVar(&c.Prometheus.RetryInterval, "prometheus-retry-interval", c.Prometheus.RetryInterval, "Wait between Prometheus query attempts")
	fs.StringVar(&c.Prometheus.BearerTokenFile, "prometheus-bearer-token-file", c.Prometheus.BearerTokenFile,
		"File holding a bearer token for Prometheus (read at every query)")
	fs.StringVar(&c.Prometheus.CAFile, "prometheus-ca-file", c.Prometheus.CAFile, "PEM CA certificates verifying an https Prometheus")
}

// Validate checks the configuration and builds the policy.
func (c *Config) Validate() error {
	var errs []error
	p := Policy{
		ReapAfter: c.ReapAfter, LastUsedAnnotation: c.LastUsedAnnotation, LastUsedThreshold: c.LastUsedThreshold,
		ReapWithPVCs: c.ReapWithPVCs,
	}
	for _, s := range c.NamespaceLabels {
		sel, err := labels.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--namespace-labels %q: %w", s, err))
			continue
		}
		if sel.Empty() {
			errs = append(errs, fmt.Errorf("--namespace-labels %q selects every namespace; use --namespace-regexp alone for that", s))
			continue
		}
		p.Selectors = append(p.Selectors, sel)
	}
	re, err := AnchorPattern(c.NamespaceRegexp)
	if err != nil {
		errs = append(errs, err)
	}
	p.NamePattern = re
	if len(c.NamespaceLabels) == 0 && c.NamespaceRegexp == "" {
		errs = append(errs, errors.New("set --namespace-labels or --namespace-regexp (or both): refusing to consider every namespace"))
	}
	if c.ReapAfter <= 0 {
		errs = append(errs, fmt.Errorf("--reap-after must be positive, got %v", c.ReapAfter))
	}
	if c.LastUsedThreshold < 0 {
		errs = append(errs, fmt.Errorf("--last-used-threshold must not be negative, got %v", c.LastUsedThreshold))
	}
	if c.MaxDeletionsPerPass < 1 {
		errs = append(errs, fmt.Errorf("--max-deletions-per-pass must be at least 1 (use --dry-run to delete nothing), got %d", c.MaxDeletionsPerPass))
	}
	if c.ActivityRecordInterval <= 0 || c.ActivityRecordInterval >= c.ReapAfter {
		errs = append(errs, fmt.Errorf("--activity-record-interval must be positive and shorter than --reap-after, got %v", c.ActivityRecordInterval))
	}
	if c.CacheSyncTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--cache-sync-timeout must be positive, got %v", c.CacheSyncTimeout))
	}
	for _, n := range append([]string{c.OwnNamespace}, c.ProtectedNamespaces...) {
		if n == "" {
			continue
		}
		if e := validation.IsDNS1123Label(n); len(e) > 0 {
			errs = append(errs, fmt.Errorf("protected namespace %q is not a valid name: %v", n, e))
			continue
		}
		p.Protected = append(p.Protected, n)
	}
	if c.Prometheus.Address != "" {
		if err := c.Prometheus.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.policy = p
	return nil
}

// Policy returns the policy built by Validate.
func (c *Config) Policy() Policy { return c.policy }

// Build returns the pass: in --once mode it lists namespaces and pods once
// per pass; otherwise it also watches them (Start) and decides from the caches.
func (c *Config) Build(_ context.Context, env app.Env) (daemon.Pass, error) {
	if c.policy.ReapAfter == 0 {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	// The tool's own namespace is never deleted, whatever the flags: the
	// Lease's namespace, and the namespace it runs in (the in-cluster
	// namespace file), besides --own-namespace and $POD_NAMESPACE.
	own := []string{env.Daemon.LeaderElection.Namespace}
	file := c.namespaceFile
	if file == "" {
		file = inClusterNamespaceFile
	}
	if b, err := os.ReadFile(file); err == nil {
		own = append(own, strings.TrimSpace(string(b)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the namespace this tool runs in from %s: %w", file, err)
	}
	for _, ns := range own {
		if ns != "" && !IsProtected(ns, c.policy.Protected) {
			c.policy.Protected = append(c.policy.Protected, ns)
		}
	}
	client, err := protobufClient(env.RESTConfig)
	if err != nil {
		return nil, err
	}
	return New(*c, Deps{Client: client, Clock: env.Clock, Log: env.Log, Registry: env.Registry,
		Recorder: env.EventRecorder(Tool), Watch: !env.Daemon.Once})
}

// protobufClient returns a clientset speaking protobuf, which is smaller and
// faster to decode for the cluster-wide pod lists and watches.
func protobufClient(cfg *rest.Config) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return cs, nil
}

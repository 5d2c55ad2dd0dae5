// Package daemon runs a tool's pass, RunOnce, the way every tool runs: once
// (the CronJob mode), on an interval, or on a cron schedule, never
// overlapping, optionally under leader election, with the admin HTTP server
// and the common metrics.
package daemon

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/pflag"
)

// Options are the run-loop flags shared by every tool.
type Options struct {
	Once            bool
	Interval        time.Duration
	Schedule        string
	Jitter          float64
	ShutdownTimeout time.Duration
	// ReadyIntervals: /readyz fails when the last successful pass is older
	// than this many periods (interval, or the schedule's gap).
	ReadyIntervals int
	AdminAddr      string
	// Pprof serves /debug/pprof on the admin address.
	Pprof bool
	// APIProbeInterval is how often the daemon checks that it can reach
	// the API server (GET /version); 0 disables the check.
	APIProbeInterval time.Duration
	LeaderElection   LeaderElectionOptions
}

// LeaderElectionOptions configure the Lease-based leader election.
type LeaderElectionOptions struct {
	Enabled       bool
	LeaseName     string
	Namespace     string
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// AddFlags registers the run-loop flags. tool names the default Lease.
func (o *Options) AddFlags(fs *pflag.FlagSet, tool string) {
	if o.Interval == 0 {
		o.Interval = 5 * time.Minute
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.ReadyIntervals == 0 {
		o.ReadyIntervals = 3
	}
	if o.AdminAddr == "" {
		o.AdminAddr = ":8080"
	}
	if o.APIProbeInterval == 0 {
		o.APIProbeInterval = 10 * time.Second
	}
	le := &o.LeaderElection
	if le.LeaseName == "" {
		le.LeaseName = tool
	}
	if le.LeaseDuration == 0 {
		le.LeaseDuration, le.RenewDeadline, le.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	fs.BoolVar(&o.Once, "once", o.Once, "Run one pass and exit, non-zero if it failed (the CronJob mode)")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "Time between passes when running as a daemon")
	fs.StringVar(&o.Schedule, "schedule", o.Schedule, "Cron schedule for passes (e.g. '*/15 * * * *'); overrides --interval")
	fs.Float64Var(&o.Jitter, "jitter", o.Jitter, "Random delay added before each pass, as a fraction of the period (0 to 1)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "On SIGTERM, how long a running pass may take to finish before it is abandoned")
	fs.IntVar(&o.ReadyIntervals, "ready-intervals", o.ReadyIntervals, "/readyz fails when no pass succeeded within this many periods")
	fs.StringVar(&o.AdminAddr, "admin-address", o.AdminAddr, "Address for /metrics, /healthz and /readyz (empty disables)")
	fs.BoolVar(&o.Pprof, "pprof", o.Pprof, "Also serve Go's /debug/pprof profiles on the admin address (off by default: they reveal the process's memory)")
	fs.DurationVar(&o.APIProbeInterval, "api-probe-interval", o.APIProbeInterval,
		"How often to check that the API server answers (GET /version); /readyz fails and api_server_reachable is 0 after two failed checks in a row (0 disables)")
	fs.BoolVar(&le.Enabled, "leader-elect", le.Enabled, "Run passes only while holding a Lease, so several replicas have exactly one acting")
	fs.StringVar(&le.LeaseName, "leader-elect-lease-name", le.LeaseName, "Name of the leader-election Lease")
	fs.StringVar(&le.Namespace, "leader-elect-namespace", le.Namespace, "Namespace of the Lease (default: $POD_NAMESPACE or the in-cluster namespace)")
	fs.StringVar(&le.Identity, "leader-elect-identity", le.Identity, "This replica's identity in the Lease (default: hostname)")
	fs.DurationVar(&le.LeaseDuration, "leader-elect-lease-duration", le.LeaseDuration, "How long a Lease is valid without renewal")
	fs.DurationVar(&le.RenewDeadline, "leader-elect-renew-deadline", le.RenewDeadline, "How long the leader tries to renew before giving up")
	fs.DurationVar(&le.RetryPeriod, "leader-elect-retry-period", le.RetryPeriod, "Time between attempts to acquire or renew the Lease")
}

// Validate checks the options and fills in derived defaults.
func (o *Options) Validate() error {
	var errs []error
	if !o.Once && o.Schedule == "" && o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval must be positive, got %v", o.Interval))
	}
	if o.Schedule != "" {
		if _, err := ParseSchedule(o.Schedule); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Jitter < 0 || o.Jitter > 1 {
		errs = append(errs, fmt.Errorf("--jitter must be between 0 and 1, got %v", o.Jitter))
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout must not be negative, got %v", o.ShutdownTimeout))
	}
	if o.ReadyIntervals < 1 {
		errs = append(errs, fmt.Errorf("--ready-intervals must be at least 1, got %d", o.ReadyIntervals))
	}
	le := &o.LeaderElection
	if le.Enabled && !o.Once {
		if le.Namespace == "" {
			le.Namespace = defaultNamespace()
		}
		if le.Namespace == "" {
			errs = append(errs, errors.New("--leader-elect needs --leader-elect-namespace (or $POD_NAMESPACE, or running in a cluster)"))
		}
		if le.Identity == "" {
			h, err := os.Hostname()
			if err != nil {
				errs = append(errs, fmt.Errorf("leader election identity from hostname: %w", err))
			}
			le.Identity = h
		}
		if le.LeaseName == "" {
			errs = append(errs, errors.New("--leader-elect-lease-name must not be empty"))
		}
		if !(le.LeaseDuration > le.RenewDeadline && le.RenewDeadline > le.RetryPeriod && le.RetryPeriod > 0) {
			errs = append(errs, fmt.Errorf("leader election needs lease-duration > renew-deadline > retry-period > 0, got %v, %v, %v",
				le.LeaseDuration, le.RenewDeadline, le.RetryPeriod))
		}
	}
	return errors.Join(errs...)
}

// ParseSchedule parses a standard 5-field cron expression (or a descriptor
// such as @hourly).
func ParseSchedule(s string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("--schedule %q: %w", s, err)
	}
	return sched, nil
}

func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

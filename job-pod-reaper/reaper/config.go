package reaper

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// AllNamespaces as the only item of --reap-namespaces opts in to every
// namespace (still filtered by --namespace-labels when that is set).
const AllNamespaces = "all"

// NoJobLabel as --job-label reaps pods only: no companions, no orphans.
const NoJobLabel = "none"

// DefaultUserNamespacePrefix is the default --user-namespace-prefix, Open
// OnDemand's and namespace-bootstrap's default namespace prefix.
const DefaultUserNamespacePrefix = "user-"

// Tool is job-pod-reaper's name (binary, Event source, field manager),
// environment prefix and metric prefix, and the environment variables of the
// OSC job-pod-reaper mapped to our flags (REAP_INTERLVAL is its historical
// typo). main.go, the metrics and the chart tests read it.
var Tool = app.Tool{
	Name:             "job-pod-reaper",
	EnvPrefix:        "JOB_POD_REAPER",
	MetricsNamespace: "job_pod_reaper",
	EnvAliases: map[string]string{
		"RUN_ONCE":         "once",
		"REAP_INTERVAL":    "interval",
		"REAP_INTERLVAL":   "interval",
		"REAP_MAX":         "max-deletions-per-pass",
		"REAP_NAMESPACES":  "reap-namespaces",
		"NAMESPACE_LABELS": "namespace-labels",
		"OBJECT_LABELS":    "object-labels",
		"JOB_LABEL":        "job-label",
		"LOG_LEVEL":        "log-level",
	},
}

// flagAliases are the OSC flag names, accepted as synonyms.
var flagAliases = map[string]string{
	"run-once":      "once",
	"reap-interval": "interval",
	"reap-max":      "max-deletions-per-pass",
}

// Config is job-pod-reaper's configuration.
type Config struct {
	DryRun bool
	// ReapNamespaces is a list of namespaces (per-namespace mode), or ["all"]
	// or empty (one cluster-wide watch).
	ReapNamespaces []string
	// PerNamespace reads each selected namespace on its own, for RBAC
	// granted per namespace (implied by a namespace list).
	PerNamespace    bool
	NamespaceLabels string
	ObjectLabels    string
	JobLabel        string
	// UserNamespacePrefix names the user namespaces: every pod in them is
	// reaped whatever its labels. Empty: namespaces are chosen by
	// NamespaceLabels and pods by ObjectLabels (the OSC reaper's scope).
	UserNamespacePrefix string

	DefaultLifetime time.Duration
	MaxLifetime     time.Duration
	AgeFrom         string
	WarnBefore      time.Duration

	GracePeriodSeconds int64
	// MaxGracePeriod caps the grace period of every deletion the reaper
	// makes, whatever the pod asks for, and a terminating pod past its
	// walltime whose deletion would end later than this is deleted again
	// with it (which shortens the deletion in progress).
	MaxGracePeriod      time.Duration
	MaxDeletionsPerPass int
	OrphanMinAge        time.Duration

	// The mass-deletion brake (brake.go).
	MaxDeletionsPerMinute int
	AnomalyPercent        float64
	AnomalyMinPods        int
	AnomalyOverdue        time.Duration

	// Parsed by Validate.
	nsSelector  labels.Selector
	objSelector labels.Selector
}

// NewConfig returns the configuration with its defaults: the Open OnDemand
// profile, as the flags show them.
func NewConfig() *Config {
	return &Config{
		NamespaceLabels:       identity.OnDemandNameLabel + "=" + identity.OnDemandNameValue,
		ObjectLabels:          identity.ManagedByLabel + "=" + identity.OnDemandManagedBy,
		JobLabel:              identity.JobLabel,
		UserNamespacePrefix:   DefaultUserNamespacePrefix,
		AgeFrom:               AgeFromCreation,
		WarnBefore:            10 * time.Minute,
		GracePeriodSeconds:    -1,
		MaxGracePeriod:        30 * time.Second,
		OrphanMinAge:          time.Minute,
		MaxDeletionsPerMinute: 3000,
		AnomalyPercent:        20,
		AnomalyMinPods:        100,
		AnomalyOverdue:        15 * time.Minute,
	}
}

// AddFlags binds the flags to c's fields, whose current values (NewConfig's
// defaults) are the flags' defaults.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	prev := fs.GetNormalizeFunc()
	fs.SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := flagAliases[name]; ok {
			name = to
		}
		return prev(f, name)
	})
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "Log what would be deleted and delete nothing (no Events either)")
	fs.StringSliceVar(&c.ReapNamespaces, "reap-namespaces", c.ReapNamespaces,
		"Namespaces to reap (one watch per namespace), or 'all' for every namespace; empty: every namespace matching --namespace-labels, with one cluster-wide watch")
	fs.BoolVar(&c.PerNamespace, "per-namespace", c.PerNamespace,
		"Read each namespace matching --namespace-labels on its own (4 watches or LISTs per namespace), for RBAC granted per namespace such as the Open OnDemand hook's RoleBindings; a namespace the reaper may not read is skipped and counted (implied by a list in --reap-namespaces)")
	fs.StringVar(&c.UserNamespacePrefix, "user-namespace-prefix", c.UserNamespacePrefix,
		"User namespaces are those whose name starts with this; every pod in them is reaped whatever its labels, and the reaper acts in no other namespace (--namespace-labels is then not used). Empty: namespaces by --namespace-labels and pods by --object-labels, as the OSC reaper")
	fs.StringVar(&c.NamespaceLabels, "namespace-labels", c.NamespaceLabels,
		"With an empty --user-namespace-prefix: label selector a namespace must match to be reaped (empty: no filter, which with an empty --reap-namespaces needs --reap-namespaces=all)")
	fs.StringVar(&c.ObjectLabels, "object-labels", c.ObjectLabels,
		"Label selector of the Services, ConfigMaps and Secrets the reaper considers, and, with an empty --user-namespace-prefix, of the pods (empty: all)")
	fs.StringVar(&c.JobLabel, "job-label", c.JobLabel, "Label tying a pod to the Services, ConfigMaps and Secrets of its job; 'none' reaps pods only")
	fs.DurationVar(&c.DefaultLifetime, "default-lifetime", c.DefaultLifetime,
		"Walltime of a pod with no, or an unparseable, "+identity.LifetimeAnnotation+" annotation (0: such pods are not reaped, only reported)")
	fs.DurationVar(&c.MaxLifetime, "max-lifetime", c.MaxLifetime, "No pod outlives this, whatever its annotation says (0: no cap)")
	fs.StringVar(&c.AgeFrom, "age-from", c.AgeFrom, "Count the walltime from the pod's 'creation' (metadata.creationTimestamp) or 'start' (status.startTime)")
	fs.DurationVar(&c.WarnBefore, "warn-before", c.WarnBefore, "Record a warning Event on the pod this long before its walltime ends (0 disables)")
	fs.Int64Var(&c.GracePeriodSeconds, "grace-period-seconds", c.GracePeriodSeconds,
		"Termination grace period given to a reaped pod (-1: the pod's own terminationGracePeriodSeconds), never more than --max-grace-period")
	fs.DurationVar(&c.MaxGracePeriod, "max-grace-period", c.MaxGracePeriod,
		"Longest termination grace period the reaper gives a pod, whatever its terminationGracePeriodSeconds; a pod past its walltime that is already terminating with a longer grace period (deleted by its owner with a huge gracePeriodSeconds) is deleted again with this one, which shortens its deletion (whole seconds, at least 1s)")
	fs.IntVar(&c.MaxDeletionsPerPass, "max-deletions-per-pass", c.MaxDeletionsPerPass,
		"With --once only: at most this many pods and orphans are deleted per run, the longest overdue first, the rest left to the next run (0: no limit; the daemon has --max-deletions-per-minute instead)")
	fs.IntVar(&c.MaxDeletionsPerMinute, "max-deletions-per-minute", c.MaxDeletionsPerMinute,
		"Deletion rate limit, a token bucket holding one minute's worth: pods and orphans beyond it wait for the next token in expiry order, none is dropped (0: no limit)")
	fs.Float64Var(&c.AnomalyPercent, "anomaly-percent", c.AnomalyPercent,
		"Stop deleting (until restarted) when more than this percentage of the pods in scope, and more than --anomaly-min-pods, are overdue by more than --anomaly-overdue at once: a clock jump, a lowered --max-lifetime or a long outage; a metric and a Warning Event say so (0 disables)")
	fs.IntVar(&c.AnomalyMinPods, "anomaly-min-pods", c.AnomalyMinPods, "The anomaly trip needs more than this many overdue pods at once")
	fs.DurationVar(&c.AnomalyOverdue, "anomaly-overdue", c.AnomalyOverdue,
		"A pod counts towards the anomaly trip when found this long after its deadline (ordinary expiries are found at their deadline)")
	fs.DurationVar(&c.OrphanMinAge, "orphan-min-age", c.OrphanMinAge,
		"An object whose job has no pod is deleted only if it was created at least this long before the pass began")
}

// Validate checks the configuration and parses the selectors.
func (c *Config) Validate() error {
	var errs []error
	var err error
	if c.nsSelector, err = labels.Parse(c.NamespaceLabels); err != nil {
		errs = append(errs, fmt.Errorf("--namespace-labels %q: %w", c.NamespaceLabels, err))
	}
	if c.objSelector, err = labels.Parse(c.ObjectLabels); err != nil {
		errs = append(errs, fmt.Errorf("--object-labels %q: %w", c.ObjectLabels, err))
	}
	all := slices.Contains(c.ReapNamespaces, AllNamespaces)
	if all && len(c.ReapNamespaces) > 1 {
		errs = append(errs, fmt.Errorf("--reap-namespaces: %q must be the only item, got %v", AllNamespaces, c.ReapNamespaces))
	}
	for _, ns := range c.ReapNamespaces {
		if ns == AllNamespaces {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--reap-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if c.UserNamespacePrefix != "" {
		if msgs := validation.IsDNS1123Label(strings.TrimSuffix(c.UserNamespacePrefix, "-") + "x"); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--user-namespace-prefix %q cannot begin a namespace name: %s", c.UserNamespacePrefix, strings.Join(msgs, "; ")))
		}
	}
	if c.UserNamespacePrefix == "" && len(c.ReapNamespaces) == 0 && strings.TrimSpace(c.NamespaceLabels) == "" {
		errs = append(errs, errors.New("reaping every namespace needs an explicit --reap-namespaces=all (or set --namespace-labels)"))
	}
	if c.JobLabel == "" {
		errs = append(errs, errors.New("--job-label must not be empty (use 'none' to reap pods only)"))
	} else if c.JobLabel != NoJobLabel {
		if msgs := validation.IsQualifiedName(c.JobLabel); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--job-label %q: %s", c.JobLabel, strings.Join(msgs, "; ")))
		}
	}
	if c.DefaultLifetime < 0 || c.MaxLifetime < 0 || c.WarnBefore < 0 || c.OrphanMinAge < 0 {
		errs = append(errs, errors.New("--default-lifetime, --max-lifetime, --warn-before and --orphan-min-age must not be negative"))
	}
	if c.MaxLifetime > 0 && c.DefaultLifetime > c.MaxLifetime {
		errs = append(errs, fmt.Errorf("--default-lifetime %v is longer than --max-lifetime %v", c.DefaultLifetime, c.MaxLifetime))
	}
	if c.AgeFrom != AgeFromCreation && c.AgeFrom != AgeFromStart {
		errs = append(errs, fmt.Errorf("--age-from %q: want %q or %q", c.AgeFrom, AgeFromCreation, AgeFromStart))
	}
	if c.GracePeriodSeconds < -1 {
		errs = append(errs, fmt.Errorf("--grace-period-seconds must be -1 or more, got %d", c.GracePeriodSeconds))
	}
	if c.MaxGracePeriod < time.Second {
		errs = append(errs, fmt.Errorf("--max-grace-period must be at least 1s, got %v", c.MaxGracePeriod))
	} else if c.GracePeriodSeconds > c.maxGraceSeconds() {
		errs = append(errs, fmt.Errorf("--grace-period-seconds %d is longer than --max-grace-period %v", c.GracePeriodSeconds, c.MaxGracePeriod))
	}
	if c.MaxDeletionsPerPass < 0 || c.MaxDeletionsPerMinute < 0 || c.AnomalyMinPods < 0 || c.AnomalyOverdue < 0 {
		errs = append(errs, fmt.Errorf("--max-deletions-per-pass (%d), --max-deletions-per-minute (%d), --anomaly-min-pods (%d) and --anomaly-overdue (%v) must not be negative",
			c.MaxDeletionsPerPass, c.MaxDeletionsPerMinute, c.AnomalyMinPods, c.AnomalyOverdue))
	}
	if c.AnomalyPercent < 0 || c.AnomalyPercent > 100 {
		errs = append(errs, fmt.Errorf("--anomaly-percent must be between 0 and 100, got %v", c.AnomalyPercent))
	}
	return errors.Join(errs...)
}

// policy returns the decision policy.
func (c *Config) policy() Policy {
	return Policy{DefaultLifetime: c.DefaultLifetime, MaxLifetime: c.MaxLifetime, AgeFrom: c.AgeFrom, WarnBefore: c.WarnBefore,
		MaxGrace: time.Duration(c.maxGraceSeconds()) * time.Second}
}

// maxGraceSeconds is --max-grace-period in whole seconds (rounded down), or
// 0 for no cap (only a Config built without NewConfig has none).
func (c *Config) maxGraceSeconds() int64 {
	return int64(c.MaxGracePeriod / time.Second)
}

// jobLabel returns the job label, or "" for none.
func (c *Config) jobLabel() string {
	if c.JobLabel == NoJobLabel {
		return ""
	}
	return c.JobLabel
}

// byPrefix says whether user namespaces are named by a prefix.
func (c *Config) byPrefix() bool { return c.UserNamespacePrefix != "" }

// userNamespace says whether ns is named as a user namespace; always true
// without a prefix (the scope is then the namespace labels').
func (c *Config) userNamespace(ns string) bool {
	return !c.byPrefix() || strings.HasPrefix(ns, c.UserNamespacePrefix)
}

// namespaceSelector is the label selector of the namespaces the reaper
// reads: --namespace-labels, or every namespace in the prefix mode (whose
// scope is the name).
func (c *Config) namespaceSelector() labels.Selector {
	if c.byPrefix() {
		return labels.Everything()
	}
	return c.nsSelector
}

// listsNamespaces says whether the reaper reads namespaces: to select them
// by label, or to find them in the per-namespace mode without a list.
func (c *Config) listsNamespaces() bool {
	return !c.namespaceSelector().Empty() || (c.perNamespace() && c.namespaceList() == nil)
}

// perNamespace says whether the reaper reads namespace by namespace.
func (c *Config) perNamespace() bool {
	return c.PerNamespace || c.namespaceList() != nil
}

// namespaceList returns the listed namespaces (per-namespace mode), or nil
// when namespaces are not listed.
func (c *Config) namespaceList() []string {
	if len(c.ReapNamespaces) == 0 || slices.Contains(c.ReapNamespaces, AllNamespaces) {
		return nil
	}
	out := slices.Clone(c.ReapNamespaces)
	slices.Sort(out)
	return slices.Compact(out)
}

package reaper

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

var tool = Tool.WithVersion("test")

var update = flag.Bool("update", false, "rewrite testdata/help.txt and testdata/plan/*.golden from the current code")

func parse(t testing.TB, args []string, env map[string]string) (*Config, *app.Options, error) {
	t.Helper()
	c := NewConfig()
	o, err := app.Parse(tool, args, apptest.Lookup(env), io.Discard, c)
	return c, o, err
}

func TestParseDefaults(t *testing.T) {
	c, o, err := parse(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		NamespaceLabels: "app.kubernetes.io/name=open-ondemand", ObjectLabels: "app.kubernetes.io/managed-by=open-ondemand",
		JobLabel: "job", UserNamespacePrefix: "user-", AgeFrom: AgeFromCreation, WarnBefore: 10 * time.Minute, GracePeriodSeconds: -1,
		MaxGracePeriod: 30 * time.Second, OrphanMinAge: time.Minute, MaxDeletionsPerMinute: 3000, AnomalyPercent: 20, AnomalyMinPods: 100, AnomalyOverdue: 15 * time.Minute,
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("default Config (-want +got):\n%s", diff)
	}
	if o.Daemon.Once {
		t.Errorf("Once = true by default")
	}
}

func TestParseFlagsAndEnv(t *testing.T) {
	args := []string{"--dry-run", "--reap-namespaces=user-a,user-b", "--namespace-labels=", "--object-labels=team=x",
		"--job-label=none", "--default-lifetime=1h", "--max-lifetime=24h", "--age-from=start", "--warn-before=5m",
		"--grace-period-seconds=0", "--max-grace-period=10s", "--orphan-min-age=2m", "--user-namespace-prefix=hpc-",
		"--max-deletions-per-minute=60", "--anomaly-percent=5", "--anomaly-min-pods=10", "--anomaly-overdue=1h",
		// OSC flag names.
		"--run-once", "--reap-max=7", "--reap-interval=90s"}
	c, o, err := parse(t, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DryRun: true, ReapNamespaces: []string{"user-a", "user-b"}, NamespaceLabels: "", ObjectLabels: "team=x", JobLabel: "none",
		DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour, AgeFrom: AgeFromStart, WarnBefore: 5 * time.Minute,
		GracePeriodSeconds: 0, MaxGracePeriod: 10 * time.Second, MaxDeletionsPerPass: 7, OrphanMinAge: 2 * time.Minute, UserNamespacePrefix: "hpc-",
		MaxDeletionsPerMinute: 60, AnomalyPercent: 5, AnomalyMinPods: 10, AnomalyOverdue: time.Hour,
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("Config (-want +got):\n%s", diff)
	}
	if !o.Daemon.Once || o.Daemon.Interval != 90*time.Second {
		t.Errorf("daemon options = once %v interval %v, want true 90s", o.Daemon.Once, o.Daemon.Interval)
	}
	if got := c.namespaceList(); !cmp.Equal(got, []string{"user-a", "user-b"}) {
		t.Errorf("namespaceList() = %v", got)
	}

	// The OSC environment variables, typo included, and our own prefix.
	c, o, err = parse(t, nil, map[string]string{
		"RUN_ONCE": "true", "REAP_INTERLVAL": "2m", "REAP_MAX": "3", "REAP_NAMESPACES": "all",
		"NAMESPACE_LABELS": "", "OBJECT_LABELS": "a=b", "JOB_LABEL": "jobid", "JOB_POD_REAPER_DRY_RUN": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Daemon.Once || o.Daemon.Interval != 2*time.Minute || c.MaxDeletionsPerPass != 3 || !c.DryRun ||
		!cmp.Equal(c.ReapNamespaces, []string{"all"}) || c.NamespaceLabels != "" || c.ObjectLabels != "a=b" || c.JobLabel != "jobid" {
		t.Errorf("from env: %+v once=%v interval=%v", c, o.Daemon.Once, o.Daemon.Interval)
	}
	if c.namespaceList() != nil {
		t.Errorf("namespaceList() with all = %v, want nil (cluster-wide)", c.namespaceList())
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"every namespace needs an opt-in", []string{"--user-namespace-prefix=", "--namespace-labels="}, "explicit --reap-namespaces=all"},
		{"bad prefix", []string{"--user-namespace-prefix=User_"}, "--user-namespace-prefix"},
		{"negative rate", []string{"--max-deletions-per-minute=-1"}, "--max-deletions-per-minute"},
		{"percent over 100", []string{"--anomaly-percent=101"}, "--anomaly-percent"},
		{"bad namespace selector", []string{"--namespace-labels=a=b=c"}, "--namespace-labels"},
		{"bad object selector", []string{"--object-labels=!!"}, "--object-labels"},
		{"all with others", []string{"--reap-namespaces=all,user-a"}, "must be the only item"},
		{"bad namespace name", []string{"--reap-namespaces=User_A"}, "not a namespace name"},
		{"default over max", []string{"--default-lifetime=2h", "--max-lifetime=1h"}, "longer than --max-lifetime"},
		{"bad age origin", []string{"--age-from=birth"}, "--age-from"},
		{"negative cap", []string{"--max-deletions-per-pass=-1"}, "--max-deletions-per-pass"},
		{"empty job label", []string{"--job-label="}, "--job-label"},
		{"bad job label", []string{"--job-label=a b"}, "--job-label"},
		{"no max grace period", []string{"--max-grace-period=0"}, "--max-grace-period must be at least 1s"},
		{"grace period over the max", []string{"--grace-period-seconds=60", "--max-grace-period=30s"}, "--grace-period-seconds 60 is longer than --max-grace-period 30s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parse(t, c.args, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse(%v) error = %v, want one containing %q", c.args, err, c.want)
			}
		})
	}
	if _, _, err := parse(t, []string{"--reap-namespaces=all", "--namespace-labels="}, nil); err != nil {
		t.Errorf("explicit opt-in to every namespace: %v", err)
	}
}

// TestNewConfigIsTheFlagDefaults: the defaults live in NewConfig, and
// AddFlags only binds the flags to them, so parsing no flags changes nothing
// and a field set before parsing keeps every other default (AddFlags once
// skipped them all when a selector or the job label was set).
func TestNewConfigIsTheFlagDefaults(t *testing.T) {
	apptest.ParseKeepsDefaults(t, tool, NewConfig, cmpopts.IgnoreUnexported(Config{}))
	c := NewConfig()
	c.JobLabel = "slurm-job"
	apptest.Parse(t, tool, nil, nil, c)
	if c.GracePeriodSeconds != -1 || c.AgeFrom != AgeFromCreation || c.MaxGracePeriod != 30*time.Second || c.JobLabel != "slurm-job" {
		t.Errorf("Parse(NewConfig() with JobLabel) = grace %d, age from %q, max grace %v, job label %q; want -1, creation, 30s, slurm-job",
			c.GracePeriodSeconds, c.AgeFrom, c.MaxGracePeriod, c.JobLabel)
	}
}

// TestHelp compares --help, defaults included, with testdata/help.txt (the
// output before the defaults moved into NewConfig); -update rewrites it.
func TestHelp(t *testing.T) {
	apptest.Help(t, tool, NewConfig(), *update)
}

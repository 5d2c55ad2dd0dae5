package reaper

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehpc/kubehpc/namespace-reaper/promactivity"
	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
)

var tool = Tool.WithVersion("test")

var update = flag.Bool("update", false, "rewrite the golden files under testdata (help.txt, plan/*.golden)")

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     Config
		wantOnce bool
		wantIvl  time.Duration
	}{
		{
			name: "defaults are the Open OnDemand profile",
			want: Config{
				NamespaceLabels: []string{"app.kubernetes.io/name=open-ondemand"}, NamespaceRegexp: "user-.+",
				LastUsedAnnotation: "openondemand.org/last-hook-execution", LastUsedThreshold: 4 * time.Hour,
				ReapAfter: 168 * time.Hour, MaxDeletionsPerPass: 10, ActivityRecordInterval: 15 * time.Minute,
				CacheSyncTimeout: 5 * time.Minute,
				Prometheus:       promactivity.Options{Timeout: 30 * time.Second, RetryTimeout: 5 * time.Minute, RetryInterval: 5 * time.Second},
			},
			wantIvl: 5 * time.Minute,
		},
		{
			name: "flags",
			args: []string{"--namespace-labels=a=b,c in (d)", "--namespace-regexp=u-.*", "--reap-after=8h", "--last-used-threshold=1h",
				"--dry-run", "--max-deletions-per-pass=3", "--reap-with-pvcs", "--prometheus-address=http://prom:9090",
				"--prometheus-timeout=10s", "--prometheus-retry-timeout=1m", "--prometheus-bearer-token-file=/t",
				"--own-namespace=ops", "--protected-namespaces=user-root", "--once"},
			want: Config{
				NamespaceLabels: []string{"a=b", "c in (d)"}, NamespaceRegexp: "u-.*",
				LastUsedAnnotation: "openondemand.org/last-hook-execution", LastUsedThreshold: time.Hour,
				ReapAfter: 8 * time.Hour, ReapWithPVCs: true, DryRun: true, MaxDeletionsPerPass: 3, OwnNamespace: "ops",
				ProtectedNamespaces: []string{"user-root"}, ActivityRecordInterval: 15 * time.Minute, CacheSyncTimeout: 5 * time.Minute,
				Prometheus: promactivity.Options{Address: "http://prom:9090", Timeout: 10 * time.Second, RetryTimeout: time.Minute,
					RetryInterval: 5 * time.Second, BearerTokenFile: "/t"},
			},
			wantOnce: true, wantIvl: 5 * time.Minute,
		},
		{
			name: "OSC environment variables",
			env: map[string]string{"NAMESPACE_LABELS": "x=y", "NAMESPACE_REGEXP": "user-[a-z]+", "NAMESPACE_LAST_USED_ANNOTATION": "o/l",
				"REAP_AFTER": "8h", "LAST_USED_THRESHOLD": "2h", "PROMETHEUS_ADDRESS": "https://p", "PROMETHEUS_TIMEOUT": "5s",
				"PROMETHEUS_RETRY_TIMEOUT": "20s", "INTERLVAL": "2h", "RUN_ONCE": "true", "POD_NAMESPACE": "reaper"},
			want: Config{
				NamespaceLabels: []string{"x=y"}, NamespaceRegexp: "user-[a-z]+", LastUsedAnnotation: "o/l", LastUsedThreshold: 2 * time.Hour,
				ReapAfter: 8 * time.Hour, MaxDeletionsPerPass: 10, OwnNamespace: "reaper", ActivityRecordInterval: 15 * time.Minute,
				CacheSyncTimeout: 5 * time.Minute,
				Prometheus: promactivity.Options{Address: "https://p", Timeout: 5 * time.Second, RetryTimeout: 20 * time.Second,
					RetryInterval: 5 * time.Second},
			},
			wantOnce: true, wantIvl: 2 * time.Hour,
		},
		{
			name: "our prefixed variables beat OSC's",
			env:  map[string]string{"NAMESPACE_REAPER_REAP_AFTER": "9h", "REAP_AFTER": "8h", "NAMESPACE_REAPER_DRY_RUN": "true"},
			want: Config{
				NamespaceLabels: []string{"app.kubernetes.io/name=open-ondemand"}, NamespaceRegexp: "user-.+",
				LastUsedAnnotation: "openondemand.org/last-hook-execution", LastUsedThreshold: 4 * time.Hour,
				ReapAfter: 9 * time.Hour, DryRun: true, MaxDeletionsPerPass: 10, ActivityRecordInterval: 15 * time.Minute,
				CacheSyncTimeout: 5 * time.Minute,
				Prometheus:       promactivity.Options{Timeout: 30 * time.Second, RetryTimeout: 5 * time.Minute, RetryInterval: 5 * time.Second},
			},
			wantIvl: 5 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfig()
			o, err := app.Parse(tool, tt.args, apptest.Lookup(tt.env), io.Discard, c)
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, *c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
				t.Errorf("Parse(%q) config mismatch (-want +got):\n%s", tt.args, diff)
			}
			if o.Daemon.Once != tt.wantOnce || o.Daemon.Interval != tt.wantIvl {
				t.Errorf("Parse(%q) once, interval = %v, %v, want %v, %v", tt.args, o.Daemon.Once, o.Daemon.Interval, tt.wantOnce, tt.wantIvl)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "bad regexp", args: []string{"--namespace-regexp=user-(["}, want: `--namespace-regexp "user-(["`},
		{name: "bad selector", args: []string{"--namespace-labels=a=b=c"}, want: `--namespace-labels "a=b=c"`},
		{name: "nothing selects", args: []string{"--namespace-labels=", "--namespace-regexp="}, want: "refusing to consider every namespace"},
		{name: "zero cap", args: []string{"--max-deletions-per-pass=0"}, want: "--max-deletions-per-pass must be at least 1"},
		{name: "zero reap-after", args: []string{"--reap-after=0s"}, want: "--reap-after must be positive"},
		{name: "bad Prometheus address", args: []string{"--prometheus-address=prom:9090"}, want: "--prometheus-address"},
		{name: "bad own namespace", args: []string{"--own-namespace=Not_A_Name"}, want: `protected namespace "Not_A_Name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.Parse(tool, tt.args, apptest.NoEnv, io.Discard, NewConfig())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestNewConfigIsTheFlagDefaults: the defaults live in NewConfig, and
// AddFlags only binds the flags to them, so parsing no flags changes nothing
// and a field set before parsing keeps every other default.
func TestNewConfigIsTheFlagDefaults(t *testing.T) {
	apptest.ParseKeepsDefaults(t, tool, NewConfig, cmpopts.IgnoreUnexported(Config{}))
	c := NewConfig()
	c.ReapAfter = 24 * time.Hour
	apptest.Parse(t, tool, nil, nil, c)
	if c.MaxDeletionsPerPass != 10 || c.Prometheus.RetryInterval != 5*time.Second || c.ReapAfter != 24*time.Hour {
		t.Errorf("Parse(NewConfig() with ReapAfter) = max deletions %d, Prometheus retry interval %v, reap after %v; want 10, 5s, 24h",
			c.MaxDeletionsPerPass, c.Prometheus.RetryInterval, c.ReapAfter)
	}
}

// TestHelp compares --help, defaults included, with testdata/help.txt (the
// output before the defaults moved into NewConfig); -update rewrites it.
func TestHelp(t *testing.T) {
	apptest.Help(t, tool, NewConfig(), *update)
}

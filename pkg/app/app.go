// Package app is the shared body of every tool's main: flags with env-var
// overrides, the logger, the Kubernetes client, the Prometheus registry, the
// clock, the Event recorder, signal handling and the run loop. A tool's
// main.go only hands over the tool's Tool value and its Command; Run is the
// only wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/events"
	"github.com/kubehpc/kubehpc/pkg/flagenv"
	"github.com/kubehpc/kubehpc/pkg/kubeclient"
	"github.com/kubehpc/kubehpc/pkg/logging"
)

// Tool names a binary. Each tool package exports one Tool value, which its
// main.go, its metrics and the chart tests all read.
type Tool struct {
	// Name is the binary's name, e.g. "job-pod-reaper": the user agent, the
	// default Lease, the Event source and the server-side apply field manager.
	Name string
	// EnvPrefix prefixes every flag's environment variable, e.g.
	// "JOB_POD_REAPER" for JOB_POD_REAPER_DRY_RUN.
	EnvPrefix string
	// MetricsNamespace prefixes every metric, e.g. "job_pod_reaper".
	MetricsNamespace string
	// EnvAliases maps legacy environment variables to flag names.
	EnvAliases map[string]string
	// Version is set by main (at build time, -ldflags "-X main.version=…").
	Version string
}

// WithVersion returns t with its Version set.
func (t Tool) WithVersion(v string) Tool {
	t.Version = v
	return t
}

// validate checks that t names everything Parse and Run need.
func (t Tool) validate() error {
	if t.Name == "" || t.EnvPrefix == "" || t.MetricsNamespace == "" {
		return fmt.Errorf("tool %q: Name, EnvPrefix and MetricsNamespace are required", t.Name)
	}
	return nil
}

// Env is what a Command gets to build its pass.
type Env struct {
	Log        *zap.Logger
	Clock      clock.WithTicker
	Registry   *prometheus.Registry
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	// Daemon are the run-loop options (Once tells a tool it runs as a CronJob).
	Daemon daemon.Options
	// Recorder records the tool's Events, reporting as the tool's Name. Run
	// chooses it (see NewRecorder); read it through EventRecorder.
	Recorder record.EventRecorder
}

// EventRecorder returns the recorder Run chose. An Env built by hand without
// one (a test calling a Command's Build) gets a synchronous recorder
// reporting as t, which needs no stopping.
func (e Env) EventRecorder(t Tool) record.EventRecorder {
	if e.Recorder != nil {
		return e.Recorder
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if e.Clock != nil {
		clk = e.Clock
	}
	log := e.Log
	if log == nil {
		log = zap.NewNop()
	}
	return events.NewSyncRecorder(e.Client, t.Name, clk, log)
}

// NewRecorder returns the Event recorder of a run and the function that
// stops it. A process that runs once (--once, namespace-bootstrap's hook
// mode, which implies it) exits right after its pass, so it writes each
// Event before going on; a daemon records through client-go's broadcaster,
// in the background, with its aggregation of repeated Events.
func NewRecorder(t Tool, once bool, client kubernetes.Interface, clk clock.PassiveClock, log *zap.Logger) (record.EventRecorder, func()) {
	if once {
		return events.NewSyncRecorder(client, t.Name, clk, log), func() {}
	}
	return events.NewRecorder(client, t.Name, log)
}

// Command is a tool's configuration and the constructor of its pass.
type Command interface {
	AddFlags(fs *pflag.FlagSet)
	Validate() error
	Build(ctx context.Context, env Env) (daemon.Pass, error)
}

// Main runs a tool with args (os.Args[1:]) and returns the exit code.
func Main(t Tool, args []string, cmd Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, t, args, os.LookupEnv, os.Stderr, cmd); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		if errors.Is(err, ErrVersion) {
			fmt.Fprintf(os.Stdout, "%s %s\n", t.Name, t.Version)
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", t.Name, err)
		return 1
	}
	return 0
}

// ErrVersion is returned by Parse and Run for --version: the caller prints
// the version (Main does) and exits successfully.
var ErrVersion = errors.New("version requested")

// Parse parses args and the environment into the flags registered by cmd,
// the shared options and the daemon options. It is separate from Run so a
// test can pass argv and assert the parsed configuration.
func Parse(t Tool, args []string, lookup func(string) (string, bool), out io.Writer, cmd Command) (*Options, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	o := &Options{}
	fs := pflag.NewFlagSet(t.Name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	cmd.AddFlags(fs)
	o.Daemon.AddFlags(fs, t.Name)
	o.Kube.AddFlags(fs)
	o.Log.AddFlags(fs)
	flagenv.Help(fs, t.EnvPrefix)
	showVersion := fs.Bool("version", false, "Print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of %s (every flag can also be set by the environment variable shown):\n%s", t.Name, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *showVersion {
		return nil, ErrVersion
	}
	fs.Lookup("version").Changed = true // no environment variable sets --version
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := flagenv.Apply(fs, t.EnvPrefix, t.EnvAliases, lookup); err != nil {
		return nil, err
	}
	if err := errors.Join(cmd.Validate(), o.Daemon.Validate(), o.Kube.Validate(), o.Log.Validate()); err != nil {
		return nil, err
	}
	return o, nil
}

// Options are the flags every tool shares.
type Options struct {
	Daemon daemon.Options
	Kube   kubeclient.Options
	Log    logging.Options
}

// Run parses args, builds everything and runs the loop until ctx is done.
func Run(ctx context.Context, t Tool, args []string, lookup func(string) (string, bool), out io.Writer, cmd Command) error {
	o, err := Parse(t, args, lookup, out, cmd)
	if err != nil {
		return err
	}
	log, err := logging.New(o.Log, t.Name, out)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	logging.RouteKlog(log)
	restCfg, client, err := o.Kube.New(kubeclient.UserAgent(t.Name, t.Version))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	env := Env{Log: log, Clock: clock.RealClock{}, Registry: reg, RESTConfig: restCfg, Client: client, Daemon: o.Daemon}
	rec, stopEvents := NewRecorder(t, o.Daemon.Once, client, env.Clock, log)
	defer stopEvents()
	env.Recorder = rec
	pass, err := cmd.Build(ctx, env)
	if err != nil {
		return err
	}
	r, err := daemon.New(o.Daemon, daemon.Deps{
		MetricsNamespace: t.MetricsNamespace, Version: t.Version, Log: log, Clock: env.Clock, Registry: reg, Client: client,
	}, pass)
	if err != nil {
		return err
	}
	log.Info("Starting", zap.String("version", t.Version), zap.Bool("once", o.Daemon.Once))
	return r.Run(ctx)
}

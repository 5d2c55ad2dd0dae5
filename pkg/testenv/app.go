package testenv

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/kubeclient"
)

// AppOptions say how Env.App builds a tool's environment.
type AppOptions struct {
	// Tool, when set, gets the Event recorder app.Run would choose for it
	// (synchronous with Daemon.Once, else the broadcaster, stopped at the
	// test's end); without it the tool's Build falls back to a synchronous
	// one (app.Env.EventRecorder).
	Tool app.Tool
	// Config is the identity the tool acts as; nil means the admin.
	Config *rest.Config
	// Now starts a fake clock at that time; zero means the real clock.
	Now time.Time
	// Log replaces the test's logger (zaptest, info level and above).
	Log *zap.Logger
	// Daemon are the run-loop options app.Run would have parsed.
	Daemon daemon.Options
}

// App is the environment app.Run gives a tool's Build, made for a test
// against the test API server: the same fields, with the tool's API requests
// counted, a registry of its own and, if asked, a fake clock.
type App struct {
	app.Env
	// Counter counts the requests made through Env.RESTConfig and Env.Client.
	Counter *kubeclient.RequestCounter
	// FakeClock is Env.Clock when AppOptions.Now was set, else nil.
	FakeClock *clocktesting.FakeClock
}

// App builds a tool's environment as app.Run does (REST config, client,
// registry, clock, logger, daemon options), for a tool's Build in a test.
func (e *Env) App(t testing.TB, o AppOptions) *App {
	t.Helper()
	cfg := o.Config
	if cfg == nil {
		cfg = e.Kube.Config
	}
	counted, counter := kubeclient.Count(cfg)
	client, err := ClientFor(counted)
	if err != nil {
		t.Fatal(err)
	}
	log := o.Log
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	a := &App{Counter: counter}
	var clk clock.WithTicker = clock.RealClock{}
	if !o.Now.IsZero() {
		a.FakeClock = clocktesting.NewFakeClock(o.Now)
		clk = a.FakeClock
	}
	a.Env = app.Env{Log: log, Clock: clk, Registry: prometheus.NewRegistry(), RESTConfig: counted, Client: client, Daemon: o.Daemon}
	if o.Tool.Name != "" {
		rec, stop := app.NewRecorder(o.Tool, o.Daemon.Once, client, clk, log)
		t.Cleanup(stop)
		a.Env.Recorder = rec
	}
	return a
}

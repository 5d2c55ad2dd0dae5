package daemon

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubehpc/kubehpc/pkg/toolmetrics"
)

// metrics are the run metrics every tool exports, named <namespace>_….
type metrics struct {
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	leader      prometheus.Gauge
	// apiReachable is 1 while the API server answers the daemon's checks.
	apiReachable     prometheus.Gauge
	apiProbeFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, namespace, version string) *metrics {
	f := toolmetrics.New(reg, namespace)
	m := &metrics{
		runs:        f.CounterVec("runs_total", "Passes run, by result (success or failure).", "result"),
		duration:    f.Histogram("run_duration_seconds", "Duration of a pass.", prometheus.ExponentialBuckets(0.01, 2.5, 12)),
		lastSuccess: f.Gauge("last_success_timestamp_seconds", "Unix time of the last successful pass."),
		leader:      f.Gauge("leader", "1 while this replica acts (holds the Lease, or leader election is off)."),
		apiReachable: f.Gauge("api_server_reachable",
			"1 while the API server answers the daemon's checks (--api-probe-interval), 0 after two failed checks in a row."),
		apiProbeFailures: f.Counter("api_server_check_failures_total", "Failed checks that the API server answers."),
	}
	m.apiReachable.Set(1)
	f.GaugeVec("build_info", "Build information; always 1.", "version", "goversion").WithLabelValues(version, runtime.Version()).Set(1)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	return m
}

package daemon

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
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
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_total", Help: "Passes run, by result (success or failure).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "run_duration_seconds", Help: "Duration of a pass.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_success_timestamp_seconds", Help: "Unix time of the last successful pass.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leader", Help: "1 while this replica acts (holds the Lease, or leader election is off).",
		}),
	}
	m.apiReachable = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "api_server_reachable",
		Help: "1 while the API server answers the daemon's checks (--api-probe-interval), 0 after two failed checks in a row.",
	})
	m.apiProbeFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "api_server_check_failures_total", Help: "Failed checks that the API server answers.",
	})
	m.apiReachable.Set(1)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	reg.MustRegister(m.runs, m.duration, m.lastSuccess, m.leader, m.apiReachable, m.apiProbeFailures, buildInfo)
	return m
}

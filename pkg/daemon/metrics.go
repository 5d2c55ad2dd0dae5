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
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	reg.MustRegister(m.runs, m.duration, m.lastSuccess, m.leader, buildInfo)
	return m
}

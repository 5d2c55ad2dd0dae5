package reaper

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are job-pod-reaper's own metrics; the run metrics come from
// pkg/daemon. reaped_total and errors_total keep the OSC names.
type metrics struct {
	reaped          *prometheus.CounterVec
	errors          prometheus.Counter
	expiryLag       prometheus.Histogram
	skipped         *prometheus.GaugeVec
	forbidden       prometheus.Gauge
	capReached      prometheus.Counter
	deferred        prometheus.Counter
	warnings        prometheus.Counter
	invalidLifetime prometheus.Counter
	rateLimited     prometheus.Counter
	stopped         prometheus.Gauge
	trips           prometheus.Counter
	retries         prometheus.Counter
	graceShortened  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	metricsNamespace := Tool.MetricsNamespace
	m := &metrics{
		reaped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "reaped_total",
			Help: "Objects deleted, by type (pod, service, configmap, secret).",
		}, []string{"type"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "errors_total",
			Help: "Errors: failed lists and deletions, and unparseable lifetimes.",
		}),
		expiryLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "expiry_lag_seconds",
			Help:    "Time from a pod's walltime end to its deletion.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
		}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "skipped_pods",
			Help: "Pods in scope that have no deadline, by reason, at the last full pass.",
		}, []string{"reason"}),
		forbidden: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "forbidden_namespaces",
			Help: "Listed namespaces skipped at the last pass because the reaper may not read them.",
		}),
		capReached: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "max_deletions_reached_total",
			Help: "--once runs that stopped deleting at --max-deletions-per-pass.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "deferred_deletions_total",
			Help: "Pods and orphans left for the next --once run by --max-deletions-per-pass.",
		}),
		warnings: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "walltime_warnings_total",
			Help: "Warning Events recorded on pods whose walltime is about to end.",
		}),
		invalidLifetime: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "invalid_lifetimes_total",
			Help: "Pods found with an unparseable lifetime annotation (each pod counted once).",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "rate_limited_deletions_total",
			Help: "Deletions that waited for a token of --max-deletions-per-minute.",
		}),
		stopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "anomaly_stopped",
			Help: "1 when the anomaly trip has stopped all deletions (until restart); alert on it.",
		}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "anomaly_trips_total",
			Help: "Times the anomaly trip stopped the reaper.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "delete_retries_total",
			Help: "Failed pod deletions put back into the queue with backoff.",
		}),
		graceShortened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "grace_periods_shortened_total",
			Help: "Terminating pods past their walltime whose grace period (longer than --max-grace-period) was shortened by a second deletion.",
		}),
	}
	for _, k := range []string{KindPod, KindService, KindConfigMap, KindSecret} {
		m.reaped.WithLabelValues(k)
	}
	for _, r := range skipReasons() {
		m.skipped.WithLabelValues(r)
	}
	reg.MustRegister(m.reaped, m.errors, m.expiryLag, m.skipped, m.forbidden, m.capReached, m.deferred, m.warnings, m.invalidLifetime,
		m.rateLimited, m.stopped, m.trips, m.retries, m.graceShortened)
	return m
}

package reaper

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubehpc/kubehpc/pkg/toolmetrics"
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
	f := toolmetrics.New(reg, Tool.MetricsNamespace)
	m := &metrics{
		reaped: f.CounterVec("reaped_total", "Objects deleted, by type (pod, service, configmap, secret).", "type"),
		errors: f.Counter("errors_total", "Errors: failed lists and deletions, and unparseable lifetimes."),
		expiryLag: f.Histogram("expiry_lag_seconds", "Time from a pod's walltime end to its deletion.",
			[]float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}),
		skipped:    f.GaugeVec("skipped_pods", "Pods in scope that have no deadline, by reason, at the last full pass.", "reason"),
		forbidden:  f.Gauge("forbidden_namespaces", "Listed namespaces skipped at the last pass because the reaper may not read them."),
		capReached: f.Counter("max_deletions_reached_total", "--once runs that stopped deleting at --max-deletions-per-pass."),
		deferred:   f.Counter("deferred_deletions_total", "Pods and orphans left for the next --once run by --max-deletions-per-pass."),
		warnings:   f.Counter("walltime_warnings_total", "Warning Events recorded on pods whose walltime is about to end."),
		invalidLifetime: f.Counter("invalid_lifetimes_total",
			"Pods found with an unparseable lifetime annotation (each pod counted once)."),
		rateLimited: f.Counter("rate_limited_deletions_total", "Deletions that waited for a token of --max-deletions-per-minute."),
		stopped:     f.Gauge("anomaly_stopped", "1 when the anomaly trip has stopped all deletions (until restart); alert on it."),
		trips:       f.Counter("anomaly_trips_total", "Times the anomaly trip stopped the reaper."),
		retries:     f.Counter("delete_retries_total", "Failed pod deletions put back into the queue with backoff."),
		graceShortened: f.Counter("grace_periods_shortened_total",
			"Terminating pods past their walltime whose grace period (longer than --max-grace-period) was shortened by a second deletion."),
	}
	for _, k := range []string{KindPod, KindService, KindConfigMap, KindSecret} {
		m.reaped.WithLabelValues(k)
	}
	for _, r := range skipReasons() {
		m.skipped.WithLabelValues(r)
	}
	return m
}

package reaper

import "github.com/prometheus/client_golang/prometheus"

// metrics are the tool's own metrics, named k8_namespace_reaper_… so OSC
// dashboards keep working (reaped_total, errors_total, error).
type metrics struct {
	reaped          prometheus.Counter
	wouldReap       prometheus.Counter
	errors          prometheus.Counter
	lastPassError   prometheus.Gauge
	candidates      prometheus.Gauge
	idle            prometheus.Gauge
	kept            *prometheus.GaugeVec
	activityRecords prometheus.Counter
	promQueries     *prometheus.CounterVec
	promAttempts    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ns := Tool.MetricsNamespace
	m := &metrics{
		reaped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "reaped_total",
			Help: "Namespaces deleted."}),
		wouldReap: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dry_run_reaped_total",
			Help: "Namespaces that would have been deleted, in dry-run."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "errors_total",
			Help: "Errors: failed API calls, failed Prometheus queries, failed deletions."}),
		lastPassError: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "error",
			Help: "1 if the last pass had an error, else 0."}),
		candidates: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "candidates",
			Help: "Namespaces matching the selection in the last pass."}),
		idle: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "idle",
			Help: "Namespaces found idle in the last pass (before the per-pass cap and the final check)."}),
		kept: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "kept",
			Help: "Selected namespaces kept in the last pass, by reason."}, []string{"reason"}),
		activityRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "activity_records_total",
			Help: "Writes of the last-activity annotation by the pod watch."}),
		promQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "prometheus_queries_total",
			Help: "Prometheus activity queries, by result (success, failure)."}, []string{"result"}),
		promAttempts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "prometheus_query_attempts_total",
			Help: "HTTP requests made to Prometheus, retries included."}),
	}
	for _, r := range keptReasons {
		m.kept.WithLabelValues(string(r))
	}
	m.promQueries.WithLabelValues("success")
	m.promQueries.WithLabelValues("failure")
	reg.MustRegister(m.reaped, m.wouldReap, m.errors, m.lastPassError, m.candidates, m.idle, m.kept,
		m.activityRecords, m.promQueries, m.promAttempts)
	return m
}

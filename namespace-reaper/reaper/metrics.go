package reaper

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubehpc/kubehpc/pkg/toolmetrics"
)

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
	f := toolmetrics.New(reg, Tool.MetricsNamespace)
	m := &metrics{
		reaped:          f.Counter("reaped_total", "Namespaces deleted."),
		wouldReap:       f.Counter("dry_run_reaped_total", "Namespaces that would have been deleted, in dry-run."),
		errors:          f.Counter("errors_total", "Errors: failed API calls, failed Prometheus queries, failed deletions."),
		lastPassError:   f.Gauge("error", "1 if the last pass had an error, else 0."),
		candidates:      f.Gauge("candidates", "Namespaces matching the selection in the last pass."),
		idle:            f.Gauge("idle", "Namespaces found idle in the last pass (before the per-pass cap and the final check)."),
		kept:            f.GaugeVec("kept", "Selected namespaces kept in the last pass, by reason.", "reason"),
		activityRecords: f.Counter("activity_records_total", "Writes of the last-activity annotation by the pod watch."),
		promQueries:     f.CounterVec("prometheus_queries_total", "Prometheus activity queries, by result (success, failure).", "result"),
		promAttempts:    f.Counter("prometheus_query_attempts_total", "HTTP requests made to Prometheus, retries included."),
	}
	for _, r := range keptReasons {
		m.kept.WithLabelValues(string(r))
	}
	m.promQueries.WithLabelValues("success")
	m.promQueries.WithLabelValues("failure")
	return m
}

package bootstrap

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	bootstraps       *prometheus.CounterVec
	duration         prometheus.Histogram
	applied          *prometheus.CounterVec
	terminatingWaits prometheus.Counter
	requests         *prometheus.CounterVec
	rateLimited      prometheus.Counter
	reconciled       *prometheus.CounterVec
	managed          prometheus.Gauge
	collisions       prometheus.Counter
	clientLimited    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	metricsNamespace := Tool.MetricsNamespace
	m := &metrics{
		bootstraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "bootstraps_total",
			Help: "User bootstraps (logins), by result: created, updated, unchanged, refused (invalid or unknown user, foreign namespace, name collision, not in an allowed group), unavailable (API server or LDAP temporarily failing) or failed.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "bootstrap_duration_seconds", Help: "Duration of one user bootstrap.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "objects_applied_total",
			Help: "Objects written by server-side apply, by kind and reason (missing, template changed, drifted, login).",
		}, []string{"kind", "reason"}),
		terminatingWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "terminating_waits_total", Help: "Bootstraps that waited for a Terminating namespace to go before recreating it.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "http_requests_total", Help: "Service-mode requests, by HTTP status code.",
		}, []string{"code"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "rate_limited_total", Help: "Service-mode requests refused by the per-user rate limit.",
		}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "reconcile_namespaces_total",
			Help: "Managed namespaces seen by reconcile passes, by result: unchanged, corrected, skipped or failed.",
		}, []string{"result"}),
		managed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "managed_namespaces", Help: "Managed namespaces found by the last reconcile pass.",
		}),
		collisions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "identity_collisions_total",
			Help: "Logins refused because several directory entries map to the user's namespace (an administrator must rename one).",
		}),
		clientLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "client_rate_limited_total",
			Help: "Service-mode requests refused by the per-client (remote address) rate limit, before any TokenReview.",
		}),
	}
	for _, r := range []string{"created", "updated", "unchanged", "refused", "unavailable", "failed"} {
		m.bootstraps.WithLabelValues(r)
	}
	for _, r := range []string{"unchanged", "corrected", "skipped", "failed"} {
		m.reconciled.WithLabelValues(r)
	}
	reg.MustRegister(m.bootstraps, m.duration, m.applied, m.terminatingWaits, m.requests, m.rateLimited, m.reconciled, m.managed, m.collisions, m.clientLimited)
	return m
}

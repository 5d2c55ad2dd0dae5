package bootstrap

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubehpc/kubehpc/pkg/toolmetrics"
)

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
	f := toolmetrics.New(reg, Tool.MetricsNamespace)
	m := &metrics{
		bootstraps: f.CounterVec("bootstraps_total",
			"User bootstraps (logins), by result: created, updated, unchanged, refused (invalid or unknown user, foreign namespace, name collision, not in an allowed group), unavailable (API server or LDAP temporarily failing) or failed.",
			"result"),
		duration: f.Histogram("bootstrap_duration_seconds", "Duration of one user bootstrap.", prometheus.ExponentialBuckets(0.005, 2, 12)),
		applied: f.CounterVec("objects_applied_total",
			"Objects written by server-side apply, by kind and reason (missing, template changed, drifted, login).", "kind", "reason"),
		terminatingWaits: f.Counter("terminating_waits_total", "Bootstraps that waited for a Terminating namespace to go before recreating it."),
		requests:         f.CounterVec("http_requests_total", "Service-mode requests, by HTTP status code.", "code"),
		rateLimited:      f.Counter("rate_limited_total", "Service-mode requests refused by the per-user rate limit."),
		reconciled: f.CounterVec("reconcile_namespaces_total",
			"Managed namespaces seen by reconcile passes, by result: unchanged, corrected, skipped or failed.", "result"),
		managed: f.Gauge("managed_namespaces", "Managed namespaces found by the last reconcile pass."),
		collisions: f.Counter("identity_collisions_total",
			"Logins refused because several directory entries map to the user's namespace (an administrator must rename one)."),
		clientLimited: f.Counter("client_rate_limited_total",
			"Service-mode requests refused by the per-client (remote address) rate limit, before any TokenReview."),
	}
	for _, r := range []string{"created", "updated", "unchanged", "refused", "unavailable", "failed"} {
		m.bootstraps.WithLabelValues(r)
	}
	for _, r := range []string{"unchanged", "corrected", "skipped", "failed"} {
		m.reconciled.WithLabelValues(r)
	}
	return m
}

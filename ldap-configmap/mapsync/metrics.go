package mapsync

import "github.com/prometheus/client_golang/prometheus"

// metrics keep the original k8_ldap_configmap names where one existed
// (keys_count, size_bytes, errors_total, error) and add the rest.
type metrics struct {
	keys         *prometheus.GaugeVec
	size         *prometheus.GaugeVec
	errors       *prometheus.CounterVec
	lastError    prometheus.Gauge
	skipped      *prometheus.CounterVec
	ldapErrors   *prometheus.CounterVec
	ldapRequests prometheus.Counter
	writes       *prometheus.CounterVec
	refused      *prometheus.CounterVec
	users        prometheus.Gauge
	annotated    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ns := MetricsNamespace
	m := &metrics{
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "keys_count",
			Help: "Number of keys in each ConfigMap (the desired data, written or not)"}, []string{"configmap"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "size_bytes",
			Help: "Size of each ConfigMap's data as the API server counts it against 1 MiB"}, []string{"configmap"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_total",
			Help: "ConfigMap write errors and refusals by mapper"}, []string{"mapper"}),
		lastError: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "error",
			Help: "1 if the last pass failed"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "skipped_entries_total",
			Help: "LDAP entries skipped by reason (counted at each pass)"}, []string{"reason"}),
		ldapErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ldap_errors_total",
			Help: "LDAP failures by operation (connect, bind, search)"}, []string{"operation"}),
		ldapRequests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ldap_requests_total",
			Help: "LDAP search requests (round trips; each page counts)"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "writes_total",
			Help: "Kubernetes writes by kind (configmap, namespace) and result"}, []string{"kind", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "refused_total",
			Help: "Writes refused by a safety guard, by reason (empty, drop, size)"}, []string{"reason"}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "users",
			Help: "Users with a valid identity in the last LDAP read"}),
		annotated: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "annotated_namespaces",
			Help: "User namespaces carrying identity annotations after the last pass"}),
	}
	reg.MustRegister(m.keys, m.size, m.errors, m.lastError, m.skipped, m.ldapErrors, m.ldapRequests,
		m.writes, m.refused, m.users, m.annotated)
	return m
}

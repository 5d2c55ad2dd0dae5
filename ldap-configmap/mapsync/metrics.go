package mapsync

import "github.com/prometheus/client_golang/prometheus"

// metrics keep the original k8_ldap_configmap names where one existed
// (keys_count, size_bytes, errors_total, error) and add the rest.
type metrics struct {
	keys         *prometheus.GaugeVec
	size         *prometheus.GaugeVec
	stored       *prometheus.GaugeVec
	errors       *prometheus.CounterVec
	lastError    prometheus.Gauge
	skipped      *prometheus.CounterVec
	ldapErrors   *prometheus.CounterVec
	ldapRequests prometheus.Counter
	writes       *prometheus.CounterVec
	refused      *prometheus.CounterVec
	users        prometheus.Gauge
	annotated    prometheus.Gauge
	collisions   prometheus.Gauge
	reads        *prometheus.CounterVec
	incremental  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ns := Tool.MetricsNamespace
	m := &metrics{
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "keys_count",
			Help: "Number of keys in each ConfigMap (the desired data, written or not)"}, []string{"configmap"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "size_bytes",
			Help: "Size of each ConfigMap's data as the API server counts it against 1 MiB"}, []string{"configmap"}),
		stored: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "stored_bytes",
			Help: "Size of each ConfigMap as etcd stores it (the object's protobuf encoding, metadata included), checked against etcd's 1.5 MiB request limit"}, []string{"configmap"}),
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
		collisions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "collision_namespaces",
			Help: "Namespaces refused in the last pass because several LDAP entries map to them (see the IdentityCollision Events)"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ldap_reads_total",
			Help: "LDAP reads by kind: full (every entry), incremental (changed entries and a DN-only search), unchanged (the change marker had not moved)"}, []string{"kind"}),
		incremental: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "incremental_sync",
			Help: "1 if passes read only what changed in LDAP, 0 if every pass reads the whole directory (no change tracking on the server, or --full-resync-interval=0)"}),
	}
	reg.MustRegister(m.keys, m.size, m.stored, m.errors, m.lastError, m.skipped, m.ldapErrors, m.ldapRequests,
		m.writes, m.refused, m.users, m.annotated, m.collisions, m.reads, m.incremental)
	return m
}

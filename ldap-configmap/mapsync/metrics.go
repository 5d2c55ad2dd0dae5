package mapsync

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubehpc/kubehpc/pkg/toolmetrics"
)

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
	f := toolmetrics.New(reg, Tool.MetricsNamespace)
	return &metrics{
		keys: f.GaugeVec("keys_count", "Number of keys in each ConfigMap (the desired data, written or not)", "configmap"),
		size: f.GaugeVec("size_bytes", "Size of each ConfigMap's data as the API server counts it against 1 MiB", "configmap"),
		stored: f.GaugeVec("stored_bytes",
			"Size of each ConfigMap as etcd stores it (the object's protobuf encoding, metadata included), checked against etcd's 1.5 MiB request limit", "configmap"),
		errors:       f.CounterVec("errors_total", "ConfigMap write errors and refusals by mapper", "mapper"),
		lastError:    f.Gauge("error", "1 if the last pass failed"),
		skipped:      f.CounterVec("skipped_entries_total", "LDAP entries skipped by reason (counted at each pass)", "reason"),
		ldapErrors:   f.CounterVec("ldap_errors_total", "LDAP failures by operation (connect, bind, search)", "operation"),
		ldapRequests: f.Counter("ldap_requests_total", "LDAP search requests (round trips; each page counts)"),
		writes:       f.CounterVec("writes_total", "Kubernetes writes by kind (configmap, namespace) and result", "kind", "result"),
		refused:      f.CounterVec("refused_total", "Writes refused by a safety guard, by reason (empty, drop, size)", "reason"),
		users:        f.Gauge("users", "Users with a valid identity in the last LDAP read"),
		annotated:    f.Gauge("annotated_namespaces", "User namespaces carrying identity annotations after the last pass"),
		collisions: f.Gauge("collision_namespaces",
			"Namespaces refused in the last pass because several LDAP entries map to them (see the IdentityCollision Events)"),
		reads: f.CounterVec("ldap_reads_total",
			"LDAP reads by kind: full (every entry), incremental (changed entries and a DN-only search), unchanged (the change marker had not moved)", "kind"),
		incremental: f.Gauge("incremental_sync",
			"1 if passes read only what changed in LDAP, 0 if every pass reads the whole directory (no change tracking on the server, or --full-resync-interval=0)"),
	}
}

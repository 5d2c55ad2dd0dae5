// Package toolmetrics builds a tool's Prometheus metrics: each one is named
// under the tool's metrics namespace (app.Tool.MetricsNamespace, e.g.
// job_pod_reaper_reaped_total) and registered on the injected Registerer as
// it is made, so none can be made and left unregistered.
package toolmetrics

import "github.com/prometheus/client_golang/prometheus"

// Factory makes metrics under one namespace and registers them on one
// Registerer; it panics, as prometheus.MustRegister does, on a name
// registered twice (a programming error).
type Factory struct {
	reg       prometheus.Registerer
	namespace string
}

// New returns the Factory of the metrics namespace, registering on reg.
func New(reg prometheus.Registerer, namespace string) Factory {
	return Factory{reg: reg, namespace: namespace}
}

// Counter makes and registers the counter <namespace>_<name>.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return register(f.reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: f.namespace, Name: name, Help: help}))
}

// CounterVec makes and registers the counter <namespace>_<name> with labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(f.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: f.namespace, Name: name, Help: help}, labels))
}

// Gauge makes and registers the gauge <namespace>_<name>.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return register(f.reg, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: f.namespace, Name: name, Help: help}))
}

// GaugeVec makes and registers the gauge <namespace>_<name> with labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(f.reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: f.namespace, Name: name, Help: help}, labels))
}

// Histogram makes and registers the histogram <namespace>_<name> with
// buckets (nil: prometheus.DefBuckets).
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(f.reg, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: f.namespace, Name: name, Help: help, Buckets: buckets}))
}

// register registers c on reg and returns it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	reg.MustRegister(c)
	return c
}

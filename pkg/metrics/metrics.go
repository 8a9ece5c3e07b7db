// Package metrics owns the Prometheus registry of one process. Nothing registers on the
// global default registerer, so tests and several servers in one process never collide.
package metrics

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Registry is a process registry with the Go runtime and process collectors.
type Registry struct {
	*prometheus.Registry
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	HTTPInFlight prometheus.Gauge
}

// New builds the registry and the HTTP metrics of a service.
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	labels := prometheus.Labels{"service": service}
	r := &Registry{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route template, method and status.",
			ConstLabels: labels,
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route template and method.",
			ConstLabels: labels,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		HTTPInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being served.", ConstLabels: labels,
		}),
	}
	reg.MustRegister(r.HTTPRequests, r.HTTPDuration, r.HTTPInFlight)
	return r
}

// ExemplarTraceID is the exemplar label that carries the trace id.
const ExemplarTraceID = "trace_id"

// ObserveHTTPDuration records one request's latency. When the request's span is sampled
// the observation carries the trace id as its exemplar, so a latency spike on a
// dashboard leads to a trace that has it.
func (r *Registry) ObserveHTTPDuration(route, method string, d time.Duration, sc trace.SpanContext) {
	o := r.HTTPDuration.WithLabelValues(route, method)
	if sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{ExemplarTraceID: sc.TraceID().String()})
			return
		}
	}
	o.Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format, or in OpenMetrics (which
// carries the exemplars) to a scraper that asks for it in Accept.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry, EnableOpenMetrics: true})
}

// Register registers c on reg, or returns the collector of the same name already there
// (several components of one process, or one built twice in tests, share a registry).
// Another kind of collector under the name is a programming error: it panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

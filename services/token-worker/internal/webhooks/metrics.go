package webhooks

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of an attempt (token_worker_webhook_deliveries_total{outcome}).
const (
	// OutcomeSucceeded: the endpoint answered 2xx.
	OutcomeSucceeded = "succeeded"
	// OutcomeFailed: the attempt failed (the delivery is tried again later, unless it
	// was the last: then it is also counted dead).
	OutcomeFailed = "failed"
	// OutcomeDead: a delivery was given up (its last attempt failed, or its endpoint
	// was disabled) and goes to AUTH_DEADLETTER.
	OutcomeDead = "dead"
)

// Metrics are the webhook deliveries' series.
type Metrics struct {
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	pending    prometheus.Gauge
	disabled   prometheus.Counter
}

// NewMetrics builds the metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_webhook_deliveries_total",
			Help: "Webhook delivery attempts and ends by outcome: succeeded (an attempt got a 2xx), failed (an attempt failed), dead (a delivery given up: its last attempt failed or its endpoint was disabled; dead-lettered).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "token_worker_webhook_attempt_duration_seconds",
			Help:    "Duration of one webhook call, from connecting to the answer's end, by result (succeeded, failed).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "token_worker_webhook_deliveries_pending",
			Help: "Webhook deliveries not yet succeeded nor given up (all endpoints), read every WORKER_LAG_INTERVAL.",
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "token_worker_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints the worker disabled because they kept failing for WORKER_WEBHOOK_DISABLE_AFTER.",
		}),
	}
	// Every outcome exists from the start, so increase() sees the first dead delivery.
	for _, o := range []string{OutcomeSucceeded, OutcomeFailed, OutcomeDead} {
		m.deliveries.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.duration, m.pending, m.disabled)
	}
	return m
}

package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the consumers' counters, shared by every consumer of the process.
type Metrics struct {
	consumed    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	ready       *prometheus.GaugeVec
}

// NewMetrics builds the metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_events_consumed_total",
			Help: "Event deliveries handled, by consumer, event type and result (sent, duplicate, capped, recorded, retry, unavailable, dead_letter...).",
		}, []string{"consumer", "type", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_dead_letters_total", Help: "Events moved to the dead-letter stream, by consumer and event type.",
		}, []string{"consumer", "type"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_pending", Help: "Consumer lag: events on the stream not yet delivered to the consumer.",
		}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_ack_pending", Help: "Events delivered to the consumer and not yet acknowledged.",
		}, []string{"consumer"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_ready", Help: "1 while the consumer is set up on the stream and its fetches work, else 0 (see /readyz).",
		}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.deadLetters, m.pending, m.ackPending, m.ready)
	}
	return m
}

// reportLag publishes how far the consumer is behind until ctx ends.
func (c *Consumer) reportLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.o.lagInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			c.o.metrics.pending.WithLabelValues(c.cfg.Label).Set(float64(info.NumPending))
			c.o.metrics.ackPending.WithLabelValues(c.cfg.Label).Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

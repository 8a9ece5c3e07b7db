package consumer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/natsx"
)

// The dead-letter stream: an event no retry could handle is published there, as it
// came, under DeadLetterPrefix + its type (in the namespace, as the events stream), and
// the original is terminated.
const (
	DeadLetterStream  = "AUTH_DEADLETTER"
	DeadLetterPrefix  = "deadletter."
	DeadLetterSubject = DeadLetterPrefix + events.SubjectAll
	DeadLetterMaxAge  = 30 * 24 * time.Hour
)

// Headers of a dead letter.
const (
	HeaderConsumer   = "Dead-Letter-Consumer"
	HeaderReason     = "Dead-Letter-Reason"
	HeaderDeliveries = "Dead-Letter-Deliveries"
	HeaderStreamSeq  = "Dead-Letter-Stream-Seq"
)

// DeadLetterStreamConfig is the dead-letter stream's configuration in namespace ns.
func DeadLetterStreamConfig(ns events.Namespace) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        ns.Stream(DeadLetterStream),
		Description: "auth events the token-worker gave up on; inspect, fix and republish",
		Subjects:    []string{ns.Subject(DeadLetterSubject)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      DeadLetterMaxAge,
		MaxBytes:    256 << 20,
		Discard:     jetstream.DiscardOld,
		Duplicates:  events.DuplicateWindow,
	}
}

// EnsureDeadLetterStream creates the dead-letter stream or brings it to its configuration.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, ns events.Namespace) error {
	cfg := DeadLetterStreamConfig(ns)
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return nil
}

// deadLetter publishes the event to the dead-letter stream and terminates it. When the
// publish fails the event is retried instead, so it is never dropped silently.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, ev events.Envelope, cause error) {
	typ := ev.Type
	log := logging.WithTrace(ctx, c.o.log.With(zap.String("event_id", ev.ID), zap.String("type", typ), zap.Uint64("delivery", meta.NumDelivered)))
	// One dead letter per event and consumer, whatever the number of attempts.
	id := c.cfg.Durable + ":" + ev.ID
	if ev.ID == "" {
		id = c.cfg.Durable + ":seq:" + itoa(meta.Sequence.Stream)
	}
	dl := &nats.Msg{
		Subject: c.streams.ns.Subject(DeadLetterPrefix + typ),
		Data:    msg.Data(),
		Header: natsHeader(
			HeaderConsumer, c.cfg.Durable,
			HeaderReason, cause.Error(),
			HeaderDeliveries, itoa(meta.NumDelivered),
			HeaderStreamSeq, itoa(meta.Sequence.Stream),
		),
	}
	natsx.InjectTrace(ctx, dl) // the dead letter stays in the event's trace
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, dl, jetstream.WithMsgID(id)); err != nil {
		log.Error("cannot publish the dead letter; retrying the event", zap.NamedError("cause", cause), zap.Error(err))
		c.o.metrics.consumed.WithLabelValues(c.cfg.Label, typ, "retry").Inc()
		_ = msg.NakWithDelay(c.cfg.BackoffMax)
		return
	}
	if err := msg.Term(); err != nil {
		log.Warn("term failed: the dead letter is published, the event may come back and be dead-lettered again", zap.Error(err))
	}
	c.o.metrics.consumed.WithLabelValues(c.cfg.Label, typ, "dead_letter").Inc()
	c.o.metrics.deadLetters.WithLabelValues(c.cfg.Label, typ).Inc()
	log.Error("event dead-lettered", zap.Error(cause))
}

// natsHeader builds the dead letter's headers.
func natsHeader(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

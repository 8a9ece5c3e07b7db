package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// process handles one delivery and answers the server.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.o.log.Error("message without metadata: terminated", zap.Error(err))
		_ = msg.Term()
		return
	}
	delivery := int(meta.NumDelivered)
	ev, err := decode(msg, c.streams.ns)
	ctx, span := c.startSpan(ctx, msg, ev, delivery)
	defer span.End()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "undecodable event")
		// An event that cannot be read is dead-lettered under its subject's type, not
		// its envelope's: the subject is what the stream vouches for.
		typ, _ := c.streams.ns.Type(msg.Subject())
		c.deadLetter(ctx, msg, meta, events.Envelope{Type: typ}, err)
		return
	}
	log := logging.WithTrace(ctx, c.o.log.With(zap.String("event_id", ev.ID), zap.String("type", ev.Type), zap.Int("delivery", delivery)))

	outcome, err := c.handleInProgress(ctx, msg, ev)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
	} else if span.IsRecording() && outcome != "" {
		span.SetAttributes(attribute.String("token_worker.outcome", outcome))
	}
	if err == nil {
		if c.o.beforeAck != nil {
			if herr := c.o.beforeAck(ctx, ev); herr != nil {
				log.Warn("left unacked by the before-ack hook", zap.Error(herr))
				return
			}
		}
		if aerr := msg.Ack(); aerr != nil {
			// The server delivers it again; the handler is idempotent.
			log.Warn("ack failed", zap.Error(aerr))
		}
		if outcome == "" {
			outcome = "ok"
		}
		c.o.metrics.consumed.WithLabelValues(c.cfg.Label, ev.Type, outcome).Inc()
		log.Debug("event handled", zap.String("outcome", outcome))
		return
	}

	permanent := errors.Is(err, retry.ErrPermanent)
	unavailable := errors.Is(err, retry.ErrUnavailable)
	switch {
	case permanent,
		!unavailable && delivery >= c.cfg.MaxDeliver,
		delivery >= c.serverMaxDeliver():
		c.deadLetter(ctx, msg, meta, ev, err)
	default:
		delay := retry.Backoff(delivery, c.cfg.BackoffMin, c.cfg.BackoffMax)
		result := "retry"
		if unavailable {
			result = "unavailable"
		}
		c.o.metrics.consumed.WithLabelValues(c.cfg.Label, ev.Type, result).Inc()
		log.Warn("event failed; retrying", zap.Error(err), zap.Duration("in", delay), zap.Bool("unavailable", unavailable))
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed: the server redelivers after the ack wait", zap.Error(nerr))
		}
	}
}

// handleInProgress runs the handler and tells the server it is still at work meanwhile,
// so a slow relay does not get the event delivered twice at once.
func (c *Consumer) handleInProgress(ctx context.Context, msg jetstream.Msg, ev events.Envelope) (outcome string, err error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(max(c.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.handle(ctx, ev)
}

// decode reads the envelope; an event that cannot be read is dead-lettered at once.
func decode(msg jetstream.Msg, ns events.Namespace) (events.Envelope, error) {
	var ev events.Envelope
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return ev, retry.Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if _, err := uuid.Parse(ev.ID); err != nil {
		return ev, retry.Permanent(fmt.Errorf("envelope id %q is not a uuid", ev.ID))
	}
	if typ, ok := ns.Type(msg.Subject()); !ok || ev.Type != typ {
		return ev, retry.Permanent(fmt.Errorf("envelope type %q differs from its subject %q", ev.Type, msg.Subject()))
	}
	if ev.OccurredAt.IsZero() {
		if meta, err := msg.Metadata(); err == nil {
			ev.OccurredAt = meta.Timestamp
		}
	}
	return ev, nil
}

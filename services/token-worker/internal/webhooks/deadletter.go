package webhooks

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
)

// Headers of a webhook's dead letter, beside consumer.HeaderConsumer (ConsumerName),
// HeaderReason and HeaderDeliveries (the attempts made).
const (
	HeaderEndpoint = "Webhook-Endpoint-Id"
	HeaderDelivery = "Webhook-Delivery-Id"
	HeaderEventID  = "Webhook-Id" // the event id, the webhook-id of every attempt
)

// deadLetterBatch bounds the rows one pass publishes in one transaction.
const deadLetterBatch = 100

// deadRow is a dead delivery still to publish.
type deadRow struct {
	ID         string  `bun:"id"`
	EndpointID string  `bun:"endpoint_id"`
	EventID    string  `bun:"event_id"`
	EventType  string  `bun:"event_type"`
	Body       string  `bun:"body"`
	Attempts   int     `bun:"attempts"`
	LastError  *string `bun:"last_error"`
	Disabled   bool    `bun:"disabled"`
}

// deadLetterLoop publishes the dead deliveries to AUTH_DEADLETTER: at once after a
// delivery dies in this process, else every PollInterval (another replica's, or one
// whose publish failed while NATS was away) until ctx ends.
func (d *Dispatcher) deadLetterLoop(ctx context.Context) {
	failures := 0
	for {
		n, err := d.DeadLetter(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			if failures == 1 || failures%30 == 0 {
				d.log.Warn("cannot dead-letter dead webhook deliveries yet; retrying", zap.Error(err), zap.Int("failures", failures))
			}
		case err == nil:
			failures = 0
		}
		if err == nil && n == deadLetterBatch {
			continue
		}
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wakeDead:
		case <-t.C:
		}
		t.Stop()
	}
}

// DeadLetter publishes up to one batch of dead deliveries not yet dead-lettered, each
// once (Nats-Msg-Id token-worker-webhooks:<delivery id>), and marks them; it returns how
// many it published. The message is the delivery's body under deadletter.<event type>,
// with the consumer's dead-letter headers and the delivery's.
func (d *Dispatcher) DeadLetter(ctx context.Context) (int, error) {
	if err := d.streams.Ensure(ctx); err != nil {
		return 0, err
	}
	published := 0
	var perr error // a publish that failed ends the batch; those before it are kept
	err := d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		published, perr = 0, nil
		var rows []deadRow
		if err := tx.NewRaw(`SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, d.last_error,
				e.disabled_at IS NOT NULL AS disabled
			FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'dead' AND d.dead_lettered_at IS NULL
			ORDER BY d.finished_at LIMIT ? FOR UPDATE OF d SKIP LOCKED`, deadLetterBatch).Scan(ctx, &rows); err != nil && !postgres.IsNoRows(err) {
			return fmt.Errorf("read dead deliveries: %w", err)
		}
		var done []string
		for _, r := range rows {
			if perr = d.publishDead(ctx, r); perr != nil {
				break
			}
			done = append(done, r.ID)
		}
		if len(done) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET dead_lettered_at = now() WHERE id IN (?)`, bun.List(done)); err != nil {
			// Rolled back: they are published again by a later pass, and deduplicated
			// by their message id within the stream's duplicate window.
			return fmt.Errorf("mark dead deliveries: %w", err)
		}
		published = len(done)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return published, perr
}

func (d *Dispatcher) publishDead(ctx context.Context, r deadRow) error {
	why := "gave up after " + strconv.Itoa(r.Attempts) + " attempts"
	if r.Attempts < d.cfg.MaxAttempts() && r.Disabled {
		why = "the endpoint was disabled after " + strconv.Itoa(r.Attempts) + " attempts"
	}
	if r.LastError != nil && *r.LastError != "" {
		why += ": " + *r.LastError
	}
	msg := &nats.Msg{
		Subject: d.ns.Subject(consumer.DeadLetterPrefix + r.EventType),
		Data:    []byte(r.Body),
		Header:  nats.Header{},
	}
	for k, v := range map[string]string{
		consumer.HeaderConsumer: ConsumerName, consumer.HeaderReason: why, consumer.HeaderDeliveries: strconv.Itoa(r.Attempts),
		HeaderEndpoint: r.EndpointID, HeaderDelivery: r.ID, HeaderEventID: r.EventID,
	} {
		msg.Header.Set(k, v)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.js.PublishMsg(pctx, msg, jetstream.WithMsgID(ConsumerName+":"+r.ID)); err != nil {
		return fmt.Errorf("publish the dead letter of delivery %s: %w", r.ID, err)
	}
	d.log.Warn("webhook delivery dead-lettered", zap.String("delivery_id", r.ID), zap.String("endpoint_id", r.EndpointID),
		zap.String("webhook_id", r.EventID), zap.String("reason", why))
	return nil
}

// gaugeLoop reads the pending deliveries every GaugeInterval until ctx ends.
func (d *Dispatcher) gaugeLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.GaugeInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var n int64
		err := d.db.NewRaw(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(qctx, &n)
		cancel()
		if err == nil {
			d.m.pending.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

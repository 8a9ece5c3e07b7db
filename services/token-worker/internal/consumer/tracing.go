package consumer

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/natsx"
)

// startSpan starts the consumer span of one delivery: a child of the trace context in
// the message's headers (the relay's publish span), or, for a message published
// without one, of the envelope's own (the request that wrote the event). The handler
// runs under it, so its SMTP and PostgreSQL spans join the trace.
func (c *Consumer) startSpan(ctx context.Context, msg jetstream.Msg, ev events.Envelope, delivery int) (context.Context, trace.Span) {
	ctx = natsx.ExtractTrace(ctx, msg.Headers())
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = ev.TraceContext(ctx)
	}
	typ, _ := c.streams.ns.Type(msg.Subject()) // span names stay the same in every namespace
	ctx, span := c.tracer.Start(ctx, "process "+typ, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(msg.Subject()),
			semconv.MessagingConsumerGroupName(c.cfg.Durable),
			semconv.MessagingMessageID(ev.ID),
			attribute.Int("messaging.nats.delivery_count", delivery),
		)
	}
	return ctx, span
}

package events

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/talentforge/auth/pkg/keyring"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// W3C trace context field names.
const (
	headerTraceparent = "traceparent"
	headerTracestate  = "tracestate"
)

// NewEnvelopeContext is NewEnvelope with the trace context of ctx recorded in the
// envelope (SetTraceContext): what a service that writes the outbox inside a traced
// request calls.
func NewEnvelopeContext(ctx context.Context, keys *keyring.Keyring, id, typ string, occurredAt time.Time, requestID string, payload any) (Envelope, error) {
	env, err := NewEnvelope(keys, id, typ, occurredAt, requestID, payload)
	if err != nil {
		return env, err
	}
	env.SetTraceContext(ctx)
	return env, nil
}

// SetTraceContext records the W3C trace context of ctx's span (none: nothing) in the
// envelope, with the global propagator.
func (e *Envelope) SetTraceContext(ctx context.Context) {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	e.Traceparent, e.Tracestate = c[headerTraceparent], c[headerTracestate]
}

// TraceContext returns ctx with the envelope's trace context as the remote parent, or
// ctx itself when the envelope has none.
func (e Envelope) TraceContext(ctx context.Context) context.Context {
	if e.Traceparent == "" {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{
		headerTraceparent: e.Traceparent, headerTracestate: e.Tracestate,
	})
}

// envelopeTraceContext reads only the trace context of an encoded envelope (the relay
// publishes the bytes as they are).
func envelopeTraceContext(ctx context.Context, raw []byte) context.Context {
	if !bytes.Contains(raw, []byte(`"traceparent"`)) {
		return ctx
	}
	var e struct {
		Traceparent string `json:"traceparent"`
		Tracestate  string `json:"tracestate"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ctx
	}
	return Envelope{Traceparent: e.Traceparent, Tracestate: e.Tracestate}.TraceContext(ctx)
}

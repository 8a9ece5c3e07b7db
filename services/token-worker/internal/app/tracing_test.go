package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/tracing/tracingtest"
	"github.com/talentforge/auth/services/token-worker/internal/app"
)

// publishMsg publishes ev with the trace context of ctx in its headers, as the relay does.
func publishMsg(t *testing.T, r *rig, ctx context.Context, ev events.Envelope) {
	t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: r.nats.Namespace.Subject(ev.Type), Data: data, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, ev.ID)
	natsx.InjectTrace(ctx, msg)
	pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, msg); err != nil {
		t.Fatal(err)
	}
}

func consumerSpan(durable string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool {
		if s.SpanKind != trace.SpanKindConsumer {
			return false
		}
		for _, a := range s.Attributes {
			if a.Key == "messaging.consumer.group.name" && a.Value.AsString() == durable {
				return true
			}
		}
		return false
	}
}

// An event published with a traceparent is processed under consumer spans of the same
// trace, children of the publisher's span; the email's SMTP span and the consumers'
// PostgreSQL spans are their children.
func TestTracingConsumerJoinsPublisherTrace(t *testing.T) {
	rec := tracingtest.Install(t)
	r := newRig(t, nil)
	to := address(t, "traced")
	ev := event(t, r.keys, "auth.email.verification_requested", map[string]any{
		"user_id": "0190a8a4-0000-7000-8000-000000000002", "email": to, "name": "Tracy",
		"token": token(), "expires_at": time.Now().Add(time.Hour).UTC(),
	})
	ctx, root := tracingtest.Root(context.Background(), "publisher")
	publishMsg(t, r, ctx, ev)
	root.End()
	tid := root.SpanContext().TraceID()

	email := rec.WaitFor(t, tid, 20*time.Second, "email consumer", consumerSpan(app.EmailConsumer))
	if email.Name != "process auth.email.verification_requested" || email.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("email span %q, parent %s, want parent %s", email.Name, email.Parent.SpanID(), root.SpanContext().SpanID())
	}
	audit := rec.WaitFor(t, tid, 20*time.Second, "audit consumer", consumerSpan(app.AuditConsumer))
	if audit.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("audit span parent %s", audit.Parent.SpanID())
	}
	smtp := rec.WaitFor(t, tid, 20*time.Second, "smtp", tracingtest.Named("smtp send"))
	if smtp.Parent.SpanID() != email.SpanContext.SpanID() || smtp.SpanKind != trace.SpanKindClient {
		t.Fatalf("smtp span parent %s, want the email consumer's %s", smtp.Parent.SpanID(), email.SpanContext.SpanID())
	}
	for _, a := range smtp.Attributes {
		if a.Value.String() == to {
			t.Fatalf("the recipient is on the SMTP span (%s)", a.Key)
		}
	}
	db := rec.WaitFor(t, tid, 20*time.Second, "postgres", func(s tracetest.SpanStub) bool {
		for _, a := range s.Attributes {
			if a.Key == "db.system.name" && a.Value.AsString() == "postgresql" {
				return s.Parent.SpanID() == audit.SpanContext.SpanID()
			}
		}
		return false
	})
	if db.SpanKind != trace.SpanKindClient {
		t.Fatalf("postgres span kind %s", db.SpanKind)
	}
}

// An event whose message carries no trace context (a publisher that does not trace)
// is still processed in the trace its envelope recorded.
func TestTracingConsumerFallsBackToEnvelopeTrace(t *testing.T) {
	rec := tracingtest.Install(t)
	r := newRig(t, nil)
	ev := event(t, r.keys, "auth.user.password_changed", map[string]any{
		"user_id": "0190a8a4-0000-7000-8000-000000000003", "email": address(t, "env"), "name": "Env", "how": "change",
	})
	ctx, root := tracingtest.Root(context.Background(), "request")
	ev.SetTraceContext(ctx)
	root.End()
	publishMsg(t, r, context.Background(), ev) // no span: no traceparent header

	span := rec.WaitFor(t, root.SpanContext().TraceID(), 20*time.Second, "email consumer", consumerSpan(app.EmailConsumer))
	if span.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("parent %s, want %s", span.Parent.SpanID(), root.SpanContext().SpanID())
	}
}

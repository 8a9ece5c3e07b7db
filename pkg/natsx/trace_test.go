package natsx

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/tracing/tracingtest"
)

func TestTraceContextThroughHeaders(t *testing.T) {
	tracingtest.Install(t)
	ctx, span := tracingtest.Root(context.Background(), "publish")
	defer span.End()
	msg := &nats.Msg{Subject: "auth.x"}
	InjectTrace(ctx, msg)
	if got := msg.Header["traceparent"]; len(got) != 1 {
		t.Fatalf("headers %v: want a lower-case traceparent", msg.Header)
	}
	sc := trace.SpanContextFromContext(ExtractTrace(context.Background(), msg.Header))
	if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
		t.Fatalf("extracted %v", sc)
	}
	// Another client's canonical spelling reads the same; Set replaces it.
	h := nats.Header{"Traceparent": {msg.Header.Get("traceparent")}}
	if HeaderCarrier(h).Get("traceparent") == "" {
		t.Fatal("a Traceparent header was not read")
	}
	HeaderCarrier(h).Set("traceparent", "x")
	if len(h) != 1 || h.Get("traceparent") != "x" {
		t.Fatalf("Set left %v", h)
	}
	if ExtractTrace(context.Background(), nil) != context.Background() {
		t.Fatal("no headers changed the context")
	}
}

package logging

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestFromAddsTraceIDs(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	base := zap.New(core)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0xf0, 2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	From(ctx, base).Info("traced")
	From(context.Background(), base).Info("untraced")
	// A request-scoped logger is returned as it is (the server put the ids on it).
	From(WithLogger(ctx, base.With(zap.String("request_id", "r1"))), zap.NewNop()).Info("scoped")

	all := logs.All()
	if m := all[0].ContextMap(); m[TraceIDKey] != sc.TraceID().String() || m[SpanIDKey] != sc.SpanID().String() {
		t.Fatalf("traced line fields %v", m)
	}
	if m := all[1].ContextMap(); m[TraceIDKey] != nil {
		t.Fatalf("untraced line fields %v", m)
	}
	if m := all[2].ContextMap(); m["request_id"] != "r1" {
		t.Fatalf("scoped line fields %v", m)
	}
	if TraceFields(context.Background()) != nil {
		t.Fatal("trace fields without a span")
	}
}

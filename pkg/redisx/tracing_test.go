package redisx

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/talentforge/auth/pkg/tracing"
)

// While tracing is off a client has no tracing hook, even with a recording provider
// installed by hand; once tracing.Install has run, new clients trace every command. (Not
// parallel: it turns tracing on for the whole test binary, as a main would.)
func TestTracingHookOnlyWhileTracingIsOn(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ping := func() {
		t.Helper()
		c, err := New(Options{URL: testURL()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}

	otel.SetTracerProvider(tp)
	if tracing.On() {
		t.Fatal("tracing is on before Install")
	}
	ping()
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("tracing off: %d spans recorded, want none (no hook)", n)
	}

	tracing.Install(tp)
	ping()
	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("tracing on: no span for the PING")
	}
	found := false
	for _, s := range spans {
		found = found || s.Name == "ping"
	}
	if !found {
		t.Fatalf("tracing on: spans %v, want one named ping", spans.Snapshots())
	}
}

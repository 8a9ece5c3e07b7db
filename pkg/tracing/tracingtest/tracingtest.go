// Package tracingtest records the spans of a test binary in memory: Install puts a
// tracer provider that samples everything and exports synchronously in place of the
// global one, once per process (the global provider delegates only once, so every
// test of the binary shares it), and the tests pick their own trace out by its id.
package tracingtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/tracing"
)

// Recorder holds every span the process ended since Install.
type Recorder struct {
	exp *tracetest.InMemoryExporter
}

var (
	once     sync.Once
	recorder *Recorder
)

// Install installs the recording provider (every new trace sampled, a caller's
// decision followed) and the W3C propagator, once, and returns the recorder.
func Install(t testing.TB) *Recorder {
	t.Helper()
	once.Do(func() {
		exp := tracetest.NewInMemoryExporter()
		tp, err := tracing.NewProvider(context.Background(), "test", "test",
			sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
		if err != nil {
			panic(err)
		}
		tracing.Install(tp)
		otel.SetTextMapPropagator(tracing.Propagator())
		recorder = &Recorder{exp: exp}
	})
	return recorder
}

// Spans returns the ended spans of one trace, in the order they ended.
func (r *Recorder) Spans(id trace.TraceID) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.exp.GetSpans() {
		if s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// WaitFor polls until the trace has a span for which match is true and returns it,
// failing the test after timeout.
func (r *Recorder) WaitFor(t testing.TB, id trace.TraceID, timeout time.Duration, what string, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range r.Spans(id) {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range r.Spans(id) {
				names = append(names, s.Name)
			}
			t.Fatalf("trace %s has no %s span after %s; it has %q", id, what, timeout, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Named matches a span by name.
func Named(name string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return s.Name == name }
}

// Root starts a sampled span with the global tracer and returns its context, for a test
// to play the caller.
func Root(ctx context.Context, name string) (context.Context, trace.Span) {
	return otel.Tracer("github.com/talentforge/auth/pkg/tracing/tracingtest").Start(ctx, name,
		trace.WithNewRoot())
}

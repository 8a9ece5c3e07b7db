package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/talentforge/auth/pkg/tracing"
)

// Runs first (tests of this file run in order, none in parallel): the process has no
// tracer provider yet.
func TestSetupWithoutEndpointInstallsNoExporter(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := tracing.Setup(context.Background(), "svc", "v1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}()
	if otel.GetTracerProvider() != before {
		t.Fatalf("Setup without endpoint installed a provider: %T", otel.GetTracerProvider())
	}
	_, span := otel.Tracer("test").Start(context.Background(), "nothing")
	if span.IsRecording() || span.SpanContext().IsSampled() {
		t.Fatal("a span is recorded with tracing off")
	}
	span.End()

	// The propagator is installed all the same: a caller's trace context passes through.
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	ctx, child := otel.Tracer("test").Start(ctx, "pass-through")
	defer child.End()
	out := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, out)
	if out["traceparent"] != tp {
		t.Fatalf("traceparent passed on = %q, want %q", out["traceparent"], tp)
	}
	if got := tracing.TraceID(ctx); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("TraceID = %q", got)
	}
}

func TestSetupRejectsABadEndpoint(t *testing.T) {
	for _, ep := range []string{"collector:4318", "ftp://collector", "http://"} {
		if _, err := tracing.Setup(context.Background(), "svc", "v1", ep); err == nil {
			t.Errorf("Setup accepted %q", ep)
		}
	}
}

// A real OTLP/HTTP receiver (an httptest server speaking the protocol) gets the spans.
func TestSetupExportsToOTLPEndpoint(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/otlp/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "unexpected", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("not an OTLP export: %v", err)
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got <- &req
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer srv.Close()

	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	ctx := context.Background()
	// A base URL with a path: spans go to its /v1/traces.
	shutdown, err := tracing.Setup(ctx, "auth-test", "1.2.3", srv.URL+"/otlp/")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "exported work", trace.WithSpanKind(trace.SpanKindInternal))
	if !span.SpanContext().IsSampled() {
		t.Fatal("a new trace is not sampled with the default ratio 1")
	}
	wantTrace := span.SpanContext().TraceID()
	span.End()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	select {
	case req := <-got:
		var names []string
		for _, rs := range req.GetResourceSpans() {
			attrs := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if attrs["service.name"] != "auth-test" || attrs["service.version"] != "1.2.3" {
				t.Errorf("resource = %v", attrs)
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
					if s.GetName() == "exported work" && trace.TraceID(s.GetTraceId()) != wantTrace {
						t.Errorf("trace id %x, want %s", s.GetTraceId(), wantTrace)
					}
				}
			}
		}
		if len(names) != 1 || names[0] != "exported work" {
			t.Fatalf("exported spans %q", names)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the collector received nothing")
	}
}

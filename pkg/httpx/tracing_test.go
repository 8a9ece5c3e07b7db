package httpx_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/tracing/tracingtest"
)

const callerSpan = "00f067aa0ba902b7"

func tracedServer(t *testing.T) *testServer {
	t.Helper()
	s := newServer(t, httpx.WithAccessLogSampling(1))
	s.Echo.GET("/work/:id", func(c echo.Context) error {
		logging.From(c.Request().Context(), zap.NewNop()).Info("working")
		return c.NoContent(http.StatusNoContent)
	})
	return s
}

func logField(t *testing.T, s *testServer, msg, key string) string {
	t.Helper()
	entries := s.logs.FilterMessage(msg).All()
	if len(entries) != 1 {
		t.Fatalf("%d %q log lines", len(entries), msg)
	}
	v, _ := entries[0].ContextMap()[key].(string)
	return v
}

// A request with a traceparent gets a server span in the caller's trace, named by its
// route; its log lines (access log and handler) carry the trace and span ids, and the
// latency histogram an exemplar with the trace id, visible in OpenMetrics.
func TestTracingRequestSpanLogsAndExemplar(t *testing.T) {
	rec := tracingtest.Install(t)
	s := tracedServer(t)
	traceID := randomTraceID(t)
	req := httptest.NewRequest(http.MethodGet, "/work/42", nil)
	req.Header.Set("traceparent", "00-"+traceID.String()+"-"+callerSpan+"-01")
	// A fixed id: a generated UUID holds "42" often enough to trip the leak check below.
	req.Header.Set("X-Request-Id", "tracing-test-request")
	if w := s.do(req); w.Code != http.StatusNoContent {
		t.Fatalf("status %d", w.Code)
	}

	span := rec.WaitFor(t, traceID, 0, "server", func(s tracetestSpan) bool { return s.SpanKind == trace.SpanKindServer })
	if span.Name != "GET /work/:id" || span.Parent.SpanID().String() != callerSpan || !span.Parent.IsRemote() {
		t.Fatalf("span %q, parent %s", span.Name, span.Parent.SpanID())
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, a := range span.Attributes {
		attrs[a.Key] = a.Value
	}
	if attrs["http.route"].AsString() != "/work/:id" || attrs["http.response.status_code"].AsInt64() != 204 ||
		attrs["http.request.method"].AsString() != "GET" {
		t.Fatalf("attributes %v", span.Attributes)
	}
	for k, v := range attrs {
		if strings.Contains(v.String(), "42") {
			t.Fatalf("the raw URL leaked into the span: %s=%s", k, v.String())
		}
	}

	spanID := span.SpanContext.SpanID().String()
	for _, msg := range []string{"request", "working"} {
		if got := logField(t, s, msg, "trace_id"); got != traceID.String() {
			t.Errorf("%q log trace_id = %q, want %s", msg, got, traceID)
		}
		if got := logField(t, s, msg, "span_id"); got != spanID {
			t.Errorf("%q log span_id = %q, want %s", msg, got, spanID)
		}
	}

	// OpenMetrics when asked: the bucket that got the observation carries the exemplar.
	m := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	m.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	w := s.do(m)
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/openmetrics-text") {
		t.Fatalf("/metrics Content-Type %q", w.Header().Get("Content-Type"))
	}
	found := false
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "http_request_duration_seconds_bucket{") && strings.Contains(line, `route="/work/:id"`) &&
			strings.Contains(line, `# {trace_id="`+traceID.String()+`"}`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no exemplar with trace %s in:\n%s", traceID, w.Body.String())
	}
	// The classic text format is still the default.
	if ct := s.get("/metrics").Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("default /metrics Content-Type %q", ct)
	}
}

// A caller that did not sample: the trace id still reaches the logs, no exemplar.
func TestTracingUnsampledCallerStillLogsTraceID(t *testing.T) {
	tracingtest.Install(t)
	s := tracedServer(t)
	traceID := randomTraceID(t)
	req := httptest.NewRequest(http.MethodGet, "/work/7", nil)
	req.Header.Set("traceparent", "00-"+traceID.String()+"-"+callerSpan+"-00")
	s.do(req)
	if got := logField(t, s, "request", "trace_id"); got != traceID.String() {
		t.Fatalf("trace_id = %q, want %s", got, traceID)
	}
	m := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	m.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	if body := s.do(m).Body.String(); strings.Contains(body, traceID.String()) {
		t.Fatal("an unsampled request left an exemplar")
	}
}

// The probes and /metrics make no spans.
func TestTracingSkipsProbes(t *testing.T) {
	rec := tracingtest.Install(t)
	s := tracedServer(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		traceID := randomTraceID(t)
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("traceparent", "00-"+traceID.String()+"-"+callerSpan+"-01")
		s.do(req)
		if spans := rec.Spans(traceID); len(spans) != 0 {
			t.Errorf("%s made %d spans", p, len(spans))
		}
	}
}

type tracetestSpan = tracetest.SpanStub

func randomTraceID(t *testing.T) trace.TraceID {
	t.Helper()
	var id trace.TraceID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

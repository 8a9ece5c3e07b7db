package httpx

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/tracing"
)

// With tracing off the chain starts no span, yet a caller's trace context and the
// request id still reach the handler's context (events and logs carry them on).
func TestPassTraceContextWithoutSpans(t *testing.T) {
	otel.SetTextMapPropagator(tracing.Propagator())
	s := &Server{log: zap.NewNop(), reg: metrics.New("test"), opts: options{logEvery: 1}}
	e := echo.New()
	e.Use(requestID, passTraceContext, s.observe)
	e.GET("/x", func(c echo.Context) error {
		ctx := c.Request().Context()
		sc := trace.SpanContextFromContext(ctx)
		return c.String(http.StatusOK, fmt.Sprintf("%s %t %t %s", sc.TraceID(), sc.IsValid(), sc.IsRemote(), logging.RequestID(ctx)))
	})
	get := func(h map[string]string) string {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	got := get(map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01", "X-Request-Id": "req-1"})
	if want := traceID + " true true req-1"; got != want {
		t.Fatalf("with a traceparent: %q, want %q (the caller's context, remote: no span of ours)", got, want)
	}
	if got, want := get(map[string]string{"X-Request-Id": "req-2"}), "00000000000000000000000000000000 false false req-2"; got != want {
		t.Fatalf("without: %q, want %q", got, want)
	}
}

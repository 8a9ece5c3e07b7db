package httpx

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/talentforge/auth/pkg/httpx"

// passTraceContext is traceRequests while tracing is off (tracing.On): no span, only the
// caller's trace context, when it sent one, passed on to the events and logs of the
// request.
func passTraceContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Header.Get("Traceparent") != "" || req.Header.Get("Baggage") != "" {
			c.SetRequest(req.WithContext(otel.GetTextMapPropagator().Extract(req.Context(), propagation.HeaderCarrier(req.Header))))
		}
		return next(c)
	}
}

// traceRequests starts one server span per request, named "METHOD /route/template",
// as the child of the W3C traceparent the caller sent (if any). The probes and
// /metrics are not traced. It runs before observe, so the access log line and the
// latency exemplar carry the span's trace id. Nothing of the URL but the route template
// is recorded, as in the logs.
func traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	tracer := otel.Tracer(tracerName)
	return func(c echo.Context) error {
		route := c.Path()
		switch route {
		case "/healthz", "/readyz", "/metrics":
			return next(c)
		case "":
			route = "unmatched"
		}
		req := c.Request()
		ctx := otel.GetTextMapPropagator().Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		ctx, span := tracer.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		recording := span.IsRecording() // name and attributes cost nothing while tracing is off
		if recording {
			span.SetName(req.Method + " " + route)
			span.SetAttributes(
				semconv.HTTPRequestMethodKey.String(req.Method),
				semconv.HTTPRoute(route),
				semconv.URLScheme(c.Scheme()),
				semconv.ClientAddress(c.RealIP()),
				attribute.String("http.request.header.x-request-id", c.Response().Header().Get(echo.HeaderXRequestID)),
			)
		}
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		if err != nil {
			c.Error(err) // observe renders errors itself; this is for a chain without it
		}
		if recording {
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
		return nil
	}
}

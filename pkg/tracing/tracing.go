// Package tracing sets up OpenTelemetry tracing for a process: W3C trace context
// propagation always, and, when an OTLP endpoint is configured, a tracer provider that
// batches spans to it over OTLP/HTTP. The instrumentation lives where the work is
// (pkg/httpx, pkg/postgres, pkg/redisx, pkg/events, the token-worker) and uses the
// global provider, so with tracing off every span is a cheap no-op while trace ids
// still pass through (a traceparent that came in goes out again).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// DefaultSampleRatio is the share of new traces (those no caller started) that are
// sampled; a caller's sampling decision is always followed (ParentBased).
const DefaultSampleRatio = 1.0

// Propagator is W3C Trace Context and Baggage, the one every service installs.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup installs the W3C propagator and, when endpoint is not empty, a tracer provider
// exporting to it over OTLP/HTTP with a batch span processor, a resource naming service
// and version, and a ParentBased(TraceIDRatio) sampler. endpoint is the collector's base
// URL (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://otel-collector:4318); spans go to its
// /v1/traces. The exporter also honours the standard OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, compression, certificates; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins
// over endpoint), the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, and the
// resource OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
//
// With endpoint empty tracing is off: no provider or exporter is installed, spans are
// no-ops, and only the propagator is set so trace context still passes through.
// shutdown flushes the spans still buffered; call it once on exit.
func Setup(ctx context.Context, service, version, endpoint string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		u, err := tracesURL(endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	tp, err := NewProvider(ctx, service, version, sdktrace.WithBatcher(exp))
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	Install(tp)
	return tp.Shutdown, nil
}

// on is whether a tracer provider is installed (Install).
var on atomic.Bool

// Install makes tp the global tracer provider and turns tracing on for the clients and
// servers built from now on (On).
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	on.Store(true)
}

// On reports whether tracing is on. While it is off, servers and clients skip span work
// altogether (no spans, no hooks): a no-op span still costs a hot route several
// allocations and a hook call per Redis round trip. Decided when each is built.
func On() bool { return on.Load() }

// NewProvider builds the tracer provider Setup installs, with the span processors given
// (tests pass a synchronous one over an in-memory exporter). It does not install it.
func NewProvider(ctx context.Context, service, version string, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		// Last, so OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME can override.
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	all := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		all = append(all, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(DefaultSampleRatio))))
	}
	return sdktrace.NewTracerProvider(append(all, opts...)...), nil
}

// tracesURL is endpoint + /v1/traces, as the OTLP specification has it for the
// signal-independent OTEL_EXPORTER_OTLP_ENDPOINT.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q is not an http(s) URL", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String(), nil
}

// TraceID returns the trace id of ctx's span ("" when there is none): what logs and
// exemplars carry so they join the trace.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// Start is Setup for a service's main: stop flushes the spans still buffered (waiting at
// most 5 s) and logs a failure to. Defer stop after the server has drained, so the last
// requests' spans go out too.
func Start(ctx context.Context, log *zap.Logger, service, version, endpoint string) (stop func(), err error) {
	shutdown, err := Setup(ctx, service, version, endpoint)
	if err != nil {
		return nil, err
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flush traces", zap.Error(err))
		}
	}, nil
}

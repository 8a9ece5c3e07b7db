// Package logging builds the zap logger every service uses: JSON for machines,
// console for humans, one request id on every line of a request.
package logging

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger at level ("debug", "info", "warn", "error") in format ("json" or "console").
func New(level, format, service string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("LOG_FORMAT: %q must be json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true
	cfg.Sampling = nil
	l, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return l.With(zap.String("service", service)), nil
}

type ctxKey struct{}

// WithLogger stores a request-scoped logger (carrying the request id) in ctx.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the request-scoped logger, or fallback when ctx carries none. The
// request-scoped logger carries the request's trace_id and span_id (see TraceFields);
// fallback gets them added when ctx belongs to a span, so every line written with a
// traced context joins its trace.
func From(ctx context.Context, fallback *zap.Logger) *zap.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*zap.Logger); ok {
		return l
	}
	return WithTrace(ctx, fallback)
}

// Names of the fields that join a log line to its trace.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// TraceFields are trace_id and span_id of ctx's span, nil when ctx has none. A span
// that is not sampled still has ids (propagated from the caller), and they are logged.
func TraceFields(ctx context.Context) []zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []zap.Field{zap.Stringer(TraceIDKey, sc.TraceID()), zap.Stringer(SpanIDKey, sc.SpanID())}
}

// WithTrace returns l with the trace_id and span_id of ctx's span, or l itself when
// ctx has none. The fields are encoded only if the logger writes a line.
func WithTrace(ctx context.Context, l *zap.Logger) *zap.Logger {
	if f := TraceFields(ctx); f != nil {
		return l.WithLazy(f...)
	}
	return l
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request it belongs to.
func WithRequestID(ctx context.Context, rid string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, rid)
}

// RequestID returns the id of the request that ctx belongs to ("" outside one), so
// use cases can stamp events with it, as the access log stamps its lines.
func RequestID(ctx context.Context) string {
	rid, _ := ctx.Value(requestIDKey{}).(string)
	return rid
}

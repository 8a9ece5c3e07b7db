package postgres

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/talentforge/auth/pkg/postgres"

// tracingHook makes each query a client span, child of the caller's span. A query
// outside any recording span (the outbox relay polling, the clean-up jobs) gets none,
// so pollers do not flood the tracer with one-span traces, and while tracing is off a
// query pays a context lookup. The statement is not recorded: bun inlines the argument
// values (password hashes, token hashes, addresses) into it. The operation and, for a
// model query, the table are.
type tracingHook struct {
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

type spanKey struct{}

func newTracingHook(database, host string, port uint16) *tracingHook {
	attrs := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}
	if database != "" {
		attrs = append(attrs, semconv.DBNamespace(database))
	}
	if host != "" {
		attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(int(port)))
	}
	return &tracingHook{tracer: otel.Tracer(tracerName), attrs: attrs}
}

var _ bun.QueryHook = (*tracingHook)(nil)

func (h *tracingHook) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	op := e.Operation()
	name, table := op, ""
	if tm, ok := e.Model.(bun.TableModel); ok && tm.Table() != nil {
		table = tm.Table().Name
		name = op + " " + table
	}
	ctx, span := h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(h.attrs...))
	span.SetAttributes(semconv.DBOperationName(op))
	if table != "" {
		span.SetAttributes(semconv.DBCollectionName(table))
	}
	return context.WithValue(ctx, spanKey{}, span)
}

func (h *tracingHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	if e.Result != nil {
		if n, err := e.Result.RowsAffected(); err == nil {
			span.SetAttributes(attribute.Int64("db.response.returned_rows", n))
		}
	}
	if e.Err != nil && !errors.Is(e.Err, sql.ErrNoRows) {
		span.RecordError(e.Err)
		span.SetStatus(codes.Error, "query failed")
		var pe *pgconn.PgError
		if errors.As(e.Err, &pe) {
			span.SetAttributes(semconv.DBResponseStatusCode(pe.Code))
		}
	}
	span.End()
}

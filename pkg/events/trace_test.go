package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/tracing/tracingtest"
)

// An event written inside a traced request keeps that trace through the outbox: the
// relay's publish span is a child of the request's span, and the message's traceparent
// header names the publish span, so a consumer continues the same trace.
func TestRelayCarriesTheRequestTrace(t *testing.T) {
	rec := tracingtest.Install(t)
	db, _ := testDB(t)
	ns := sharedNATS(t)
	_, js := ns.connect(t)
	ns.ensureStream(t, js)
	keys, _ := testKeyring(t, "k1")
	relay := ns.fastRelay(t, db, js)

	ctx, req := tracingtest.Root(context.Background(), "POST /v1/auth/register")
	id := uuid.Must(uuid.NewV7()).String()
	env, err := NewEnvelopeContext(ctx, keys, id, "auth.user.registered", time.Now(), "req-1", userPayload(1))
	req.End()
	if err != nil {
		t.Fatal(err)
	}
	tid := req.SpanContext().TraceID()
	if env.Traceparent != "00-"+tid.String()+"-"+req.SpanContext().SpanID().String()+"-01" {
		t.Fatalf("envelope traceparent %q", env.Traceparent)
	}
	b, _ := json.Marshal(env)
	if _, err := db.ExecContext(context.Background(),
		"INSERT INTO outbox (id, subject, payload) VALUES (?, ?, ?::jsonb)", id, env.Type, string(b)); err != nil {
		t.Fatal(err)
	}
	// A row of an untraced writer gets a trace of its own.
	untraced := enqueue(t, db, keys, 1, "auth.user.registered", userPayload)[0]

	if n, err := relay.PublishPending(context.Background()); err != nil || n != 2 {
		t.Fatalf("PublishPending = %d, %v", n, err)
	}
	send := rec.WaitFor(t, tid, 0, "publish", tracingtest.Named("send auth.user.registered"))
	if send.Parent.SpanID() != req.SpanContext().SpanID() || send.SpanKind != trace.SpanKindProducer {
		t.Fatalf("publish span parent %s kind %s", send.Parent.SpanID(), send.SpanKind)
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(sctx, ns.ns.Stream(StreamName))
	if err != nil {
		t.Fatal(err)
	}
	traced, err := getByMsgID(sctx, s, id)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.SpanContextFromContext(natsx.ExtractTrace(context.Background(), traced.Header))
	if sc.TraceID() != tid || sc.SpanID() != send.SpanContext.SpanID() {
		t.Fatalf("message traceparent %s/%s, want %s/%s (%v)", sc.TraceID(), sc.SpanID(), tid, send.SpanContext.SpanID(), traced.Header)
	}
	other, err := getByMsgID(sctx, s, untraced.ID)
	if err != nil {
		t.Fatal(err)
	}
	sc = trace.SpanContextFromContext(natsx.ExtractTrace(context.Background(), other.Header))
	if !sc.IsValid() || sc.TraceID() == tid {
		t.Fatalf("the untraced row's message has trace %s (%v): want one of its own", sc.TraceID(), other.Header)
	}
}

func getByMsgID(ctx context.Context, s jetstream.Stream, id string) (*jetstream.RawStreamMsg, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, err
		}
		if m.Header.Get(jetstream.MsgIDHeader) == id {
			return m, nil
		}
	}
	return nil, jetstream.ErrMsgNotFound
}

func TestEnvelopeTraceContextRoundTrip(t *testing.T) {
	tracingtest.Install(t)
	var none Envelope
	none.SetTraceContext(context.Background())
	if none.Traceparent != "" || none.TraceContext(context.Background()) != context.Background() {
		t.Fatal("an untraced context left a trace context")
	}
	ctx, span := tracingtest.Root(context.Background(), "x")
	defer span.End()
	var e Envelope
	e.SetTraceContext(ctx)
	raw, _ := json.Marshal(e)
	got := trace.SpanContextFromContext(envelopeTraceContext(context.Background(), raw))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("round trip gave %v", got)
	}
	// Decoders that predate the field ignore it; envelopes without it decode as before.
	var old struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
}

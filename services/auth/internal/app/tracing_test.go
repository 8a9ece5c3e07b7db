package app_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/pkg/tracing/tracingtest"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.DropDatabase()
	os.Exit(code)
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// A login (PostgreSQL for the user, Redis for the throttle and the session) sent with a
// traceparent is one trace: the server span, child of the caller's, and under it the
// PostgreSQL and Redis client spans.
func TestTracingRequestTouchingPostgresAndRedis(t *testing.T) {
	rec := tracingtest.Install(t)
	e := apitest.Start(t, nil)
	email := apitest.Email("traced")
	e.Register(email)

	var tid trace.TraceID
	var caller trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(caller[:])
	r := e.Request(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password},
		http.Header{"Traceparent": {"00-" + tid.String() + "-" + caller.String() + "-01"}})
	apitest.Expect(t, r, http.StatusOK, "")

	server := rec.WaitFor(t, tid, 5*time.Second, "server", tracingtest.Named("POST /v1/auth/login"))
	if server.Parent.SpanID() != caller || server.SpanKind != trace.SpanKindServer {
		t.Fatalf("server span parent %s kind %s, want child of %s", server.Parent.SpanID(), server.SpanKind, caller)
	}
	if attr(server, "http.response.status_code") != "200" || attr(server, "http.route") != "/v1/auth/login" {
		t.Fatalf("server span attributes %v", server.Attributes)
	}
	spans := rec.Spans(tid)
	under := underSpan(spans, server)
	var pg, rd int
	for _, s := range spans {
		switch {
		case attr(s, "db.system.name") == "postgresql":
			if !under(s) || s.SpanKind != trace.SpanKindClient {
				t.Errorf("postgres span %q is not a client span under the server span", s.Name)
			}
			if attr(s, "db.query.text") != "" || attr(s, "db.statement") != "" {
				t.Errorf("postgres span %q records the statement", s.Name)
			}
			pg++
		case attr(s, "db.system") == "redis":
			if !under(s) || s.SpanKind != trace.SpanKindClient {
				t.Errorf("redis span %q is not a client span under the server span", s.Name)
			}
			if attr(s, "db.statement") != "" {
				t.Errorf("redis span %q records the command's arguments", s.Name)
			}
			rd++
		}
	}
	// The events the request wrote keep its trace for the relay and the consumers.
	n, err := e.App.DB.NewSelect().Table("outbox").
		Where("subject = 'auth.user.login_succeeded' AND payload->>'traceparent' LIKE ?", "00-"+tid.String()+"-%").
		Count(context.Background())
	if err != nil || n != 1 {
		t.Errorf("%d login_succeeded events carry the request's traceparent (%v), want 1", n, err)
	}
	if pg == 0 || rd == 0 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("%d postgres and %d redis spans in the trace %q", pg, rd, names)
	}
}

// underSpan reports whether a span of spans descends from root.
func underSpan(spans []tracetest.SpanStub, root tracetest.SpanStub) func(tracetest.SpanStub) bool {
	parent := map[trace.SpanID]trace.SpanID{}
	for _, s := range spans {
		parent[s.SpanContext.SpanID()] = s.Parent.SpanID()
	}
	return func(s tracetest.SpanStub) bool {
		for id := s.Parent.SpanID(); id.IsValid(); id = parent[id] {
			if id == root.SpanContext.SpanID() {
				return true
			}
		}
		return false
	}
}

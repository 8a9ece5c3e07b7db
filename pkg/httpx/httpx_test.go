package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/metrics"
)

const internalErrText = "db exploded: password=hunter2"

type testServer struct {
	*httpx.Server
	logs *observer.ObservedLogs
	reg  *metrics.Registry
}

type bindTarget struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

// newServer builds a Server with an observed logger, its own registry and the test routes.
func newServer(t *testing.T, opts ...httpx.Option) *testServer {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := metrics.New("test")
	s := httpx.New(zap.New(core), reg, opts...)
	e := s.Echo
	e.GET("/things/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id")})
	})
	e.POST("/things/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.POST("/bind", func(c echo.Context) error {
		c.Response().Header().Set("X-Test-Content-Length", strconv.FormatInt(c.Request().ContentLength, 10))
		var v bindTarget
		if err := httpx.BindJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})
	e.POST("/nobody", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.GET("/fail", func(c echo.Context) error { return errors.New(internalErrText) })
	e.GET("/panic", func(c echo.Context) error { panic("boom: " + internalErrText) })
	e.GET("/ip", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
	e.GET("/v1/thing", func(c echo.Context) error {
		return httpx.NewError(http.StatusUnprocessableEntity, "weak_password", "Too weak.")
	})
	e.GET("/v2/thing", func(c echo.Context) error {
		return httpx.NewError(http.StatusUnprocessableEntity, "weak_password", "Too weak.")
	})
	e.GET("/v2/fail", func(c echo.Context) error { return errors.New(internalErrText) })
	e.GET("/limited", func(c echo.Context) error {
		return &httpx.Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts", Message: "Slow down.",
			Header: http.Header{"Retry-After": {"7"}}}
	})
	e.GET("/conflict", func(c echo.Context) error { return echo.NewHTTPError(http.StatusConflict) })
	return &testServer{Server: s, logs: logs, reg: reg}
}

func (s *testServer) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Echo.ServeHTTP(rec, req)
	return rec
}

func (s *testServer) get(path string) *httptest.ResponseRecorder {
	return s.do(httptest.NewRequest(http.MethodGet, path, nil))
}

type errBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func decodeErr(t *testing.T, body []byte) errBody {
	t.Helper()
	var b errBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return b
}

func assertErrorCode(t *testing.T, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status = %d, want %d (body %s)", status, wantStatus, body)
	}
	if got := decodeErr(t, body).Error.Code; got != wantCode {
		t.Fatalf("error code = %q, want %q (body %s)", got, wantCode, body)
	}
}

// entryText is everything a log entry would write: message and every field.
func entryText(e observer.LoggedEntry) string {
	return fmt.Sprintf("%s %s %v", e.LoggerName, e.Message, e.ContextMap())
}

func jsonBodyOfSize(n int) string {
	const frame = `{"name":""}`
	return `{"name":"` + strings.Repeat("a", n-len(frame)) + `"}`
}

func TestRequestID(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name   string
		header *string
		echoed bool
	}{
		{"absent", nil, false},
		{"empty", ptr(""), false},
		{"well-formed", ptr("abc-123_X.y:z"), true},
		{"uuid", ptr("0b7c1f9e-5d0a-4c53-9d7e-8f4b9a2e1c3d"), true},
		{"128 chars", ptr(strings.Repeat("a", 128)), true},
		{"129 chars", ptr(strings.Repeat("a", 129)), false},
		{"newline", ptr("abc\ninjected: yes"), false},
		{"carriage return", ptr("abc\rdef"), false},
		{"space", ptr("abc def"), false},
		{"non-ascii", ptr("abcé"), false},
		{"quote", ptr(`abc"def`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
			if tt.header != nil {
				req.Header.Set("X-Request-Id", *tt.header)
			}
			rec := s.do(req)
			got := rec.Header().Get("X-Request-Id")
			if tt.echoed {
				if got != *tt.header {
					t.Fatalf("X-Request-Id = %q, want the well-formed %q echoed", got, *tt.header)
				}
				return
			}
			if tt.header != nil && got == *tt.header {
				t.Fatalf("malformed X-Request-Id %q was echoed", got)
			}
			if _, err := uuid.Parse(got); err != nil {
				t.Fatalf("generated X-Request-Id %q is not a UUID: %v", got, err)
			}
		})
	}
	t.Run("generated ids differ", func(t *testing.T) {
		a := s.get("/things/1").Header().Get("X-Request-Id")
		b := s.get("/things/1").Header().Get("X-Request-Id")
		if a == b {
			t.Fatalf("two requests got the same generated id %q", a)
		}
	})
}

func ptr(s string) *string { return &s }

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"ok", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/things/1", nil) }},
		{"healthz", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/healthz", nil) }},
		{"not found", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/nope", nil) }},
		{"method not allowed", func() *http.Request { return httptest.NewRequest(http.MethodDelete, "/things/1", nil) }},
		{"handler error", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/fail", nil) }},
		{"panic", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/panic", nil) }},
		{"problem json", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/v2/thing", nil) }},
		{"too large", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/bind", strings.NewReader(jsonBodyOfSize(httpx.MaxBodyBytes+1)))
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
		{"unsupported media", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/bind", strings.NewReader("x"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(tt.req())
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff (status %d)", got, rec.Code)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store (status %d)", got, rec.Code)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id (status %d)", rec.Code)
			}
		})
	}
}

// The body limit is exercised over a real connection so the chunked case is real chunked
// transfer encoding.
func TestBodyLimit(t *testing.T) {
	s := newServer(t)
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool
		status  int
	}{
		{"content-length at limit", "/bind", httpx.MaxBodyBytes, false, http.StatusOK},
		{"content-length over limit", "/bind", httpx.MaxBodyBytes + 1, false, http.StatusRequestEntityTooLarge},
		// A route that never reads its body still refuses a declared oversized one.
		{"content-length over limit, handler ignores body", "/nobody", httpx.MaxBodyBytes + 1, false, http.StatusRequestEntityTooLarge},
		{"chunked at limit", "/bind", httpx.MaxBodyBytes, true, http.StatusOK},
		{"chunked over limit", "/bind", httpx.MaxBodyBytes + 1, true, http.StatusRequestEntityTooLarge},
		{"chunked far over limit", "/bind", 4 * httpx.MaxBodyBytes, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := jsonBodyOfSize(tt.size)
			if len(body) != tt.size {
				t.Fatalf("test body is %d bytes, want %d", len(body), tt.size)
			}
			var r io.Reader = strings.NewReader(body)
			if tt.chunked {
				r = io.MultiReader(r) // unknown length: the client sends it chunked
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+tt.path, r)
			if err != nil {
				t.Fatal(err)
			}
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if tt.status == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200 (body %s)", resp.StatusCode, b)
				}
			} else {
				assertErrorCode(t, resp.StatusCode, b, http.StatusRequestEntityTooLarge, "payload_too_large")
			}
			if cl := resp.Header.Get("X-Test-Content-Length"); tt.chunked && cl != "" && cl != "-1" {
				t.Fatalf("the request was not chunked: handler saw Content-Length %s", cl)
			}
		})
	}
}

func TestContentTypePolicy(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		chunked     bool
		status      int
		code        string
	}{
		{"json", "/bind", "application/json", `{"name":"a"}`, false, http.StatusOK, ""},
		{"json with charset", "/bind", "application/json; charset=utf-8", `{"name":"a"}`, false, http.StatusOK, ""},
		{"json upper case", "/bind", "Application/JSON", `{"name":"a"}`, false, http.StatusOK, ""},
		{"text/plain with body", "/bind", "text/plain", `{"name":"a"}`, false, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"form with body", "/bind", "application/x-www-form-urlencoded", "name=a", false, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"no content type with body", "/bind", "", `{"name":"a"}`, false, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"malformed content type with body", "/bind", "application/json;;", `{"name":"a"}`, false, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"chunked text/plain", "/bind", "text/plain", `{"name":"a"}`, true, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain without body", "/nobody", "text/plain", "", false, http.StatusNoContent, ""},
		{"no content type without body", "/nobody", "", "", false, http.StatusNoContent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := httptest.NewRequest(http.MethodPost, tt.path, body)
			if tt.chunked {
				req.ContentLength = -1
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := s.do(req)
			if tt.code != "" {
				assertErrorCode(t, rec.Code, rec.Body.Bytes(), tt.status, tt.code)
				return
			}
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
		})
	}
}

func TestBindJSON(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name string
		body string
		want *bindTarget // nil: 400 invalid_json
	}{
		{"valid", `{"name":"ann","age":3}`, &bindTarget{Name: "ann", Age: 3}},
		{"unknown fields ignored", `{"name":"ann","roles":["admin"],"id":"x"}`, &bindTarget{Name: "ann"}},
		{"trailing newline", "{\"name\":\"ann\"}\n", &bindTarget{Name: "ann"}},
		{"empty body", "", &bindTarget{}},
		{"whitespace only", "  \n", &bindTarget{}},
		{"syntax error", `{"name":`, nil},
		{"not json", `name=ann`, nil},
		{"trailing object", `{"name":"ann"} {"name":"bob"}`, nil},
		{"trailing garbage", `{"name":"ann"} garbage`, nil},
		{"trailing bracket", `{"name":"ann"}]`, nil},
		{"wrong type string for int", `{"age":"three"}`, nil},
		{"wrong type number for string", `{"name":42}`, nil},
		{"array instead of object", `[1,2]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/bind", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := s.do(req)
			if tt.want == nil {
				assertErrorCode(t, rec.Code, rec.Body.Bytes(), http.StatusBadRequest, "invalid_json")
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %s)", rec.Code, rec.Body)
			}
			var got bindTarget
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got != *tt.want {
				t.Fatalf("bound %+v, want %+v", got, *tt.want)
			}
		})
	}
	t.Run("no body at all", func(t *testing.T) {
		e := echo.New()
		c := e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), httptest.NewRecorder())
		var v bindTarget
		if err := httpx.BindJSON(c, &v); err != nil {
			t.Fatalf("BindJSON without a body = %v, want nil", err)
		}
	})
	t.Run("invalid json error is an httpx.Error", func(t *testing.T) {
		e := echo.New()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{"))
		c := e.NewContext(req, httptest.NewRecorder())
		var v bindTarget
		err := httpx.BindJSON(c, &v)
		var he *httpx.Error
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.Code != "invalid_json" {
			t.Fatalf("BindJSON(\"{\") = %v, want a 400 invalid_json *httpx.Error", err)
		}
	})
}

func TestErrorBodyShape(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name   string
		path   string
		rid    string
		status int
		code   string
	}{
		{"app error generated id", "/v1/thing", "", http.StatusUnprocessableEntity, "weak_password"},
		{"app error client id", "/v1/thing", "client-id-1", http.StatusUnprocessableEntity, "weak_password"},
		{"not found", "/nope", "", http.StatusNotFound, "not_found"},
		{"internal", "/fail", "client-id-2", http.StatusInternalServerError, "internal_error"},
		{"echo http error", "/conflict", "", http.StatusConflict, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.rid != "" {
				req.Header.Set("X-Request-Id", tt.rid)
			}
			rec := s.do(req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
			var raw map[string]map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if len(raw) != 1 || raw["error"] == nil {
				t.Fatalf("body %s is not {\"error\": {...}}", rec.Body)
			}
			inner := raw["error"]
			for _, k := range []string{"code", "message", "request_id"} {
				if s, ok := inner[k].(string); !ok || s == "" {
					t.Fatalf("error.%s missing or empty in %s", k, rec.Body)
				}
			}
			if len(inner) != 3 {
				t.Fatalf("error object has unexpected keys: %s", rec.Body)
			}
			if inner["code"] != tt.code {
				t.Fatalf("code = %v, want %s", inner["code"], tt.code)
			}
			hdr := rec.Header().Get("X-Request-Id")
			if inner["request_id"] != hdr {
				t.Fatalf("request_id %v != X-Request-Id %q", inner["request_id"], hdr)
			}
			if tt.rid != "" && hdr != tt.rid {
				t.Fatalf("X-Request-Id = %q, want client's %q", hdr, tt.rid)
			}
		})
	}
	t.Run("error headers are sent", func(t *testing.T) {
		rec := s.get("/limited")
		assertErrorCode(t, rec.Code, rec.Body.Bytes(), http.StatusTooManyRequests, "too_many_attempts")
		if got := rec.Header().Get("Retry-After"); got != "7" {
			t.Fatalf("Retry-After = %q, want 7", got)
		}
	})
}

func TestProblemJSON(t *testing.T) {
	s := newServer(t, httpx.WithProblemJSON("/v2"))
	tests := []struct {
		name   string
		path   string
		status int
		code   string
		detail string
	}{
		{"app error", "/v2/thing", http.StatusUnprocessableEntity, "weak_password", "Too weak."},
		{"unknown route", "/v2/nope", http.StatusNotFound, "not_found", "Not found."},
		{"internal", "/v2/fail", http.StatusInternalServerError, "internal_error", httpx.ErrInternal.Message},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Header.Set("X-Request-Id", "prob-1")
			rec := s.do(req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			want := map[string]any{
				"type": "about:blank", "title": http.StatusText(tt.status), "status": float64(tt.status),
				"detail": tt.detail, "code": tt.code, "request_id": "prob-1",
			}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("%s = %#v, want %#v (body %s)", k, p[k], v, rec.Body)
				}
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("problem body leaks the cause: %s", rec.Body)
			}
		})
	}
	t.Run("v1 route on the same server keeps the v1 shape", func(t *testing.T) {
		rec := s.get("/v1/thing")
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type = %q, want application/json", ct)
		}
		assertErrorCode(t, rec.Code, rec.Body.Bytes(), http.StatusUnprocessableEntity, "weak_password")
	})
}

func TestInternalErrorIsHiddenAndLogged(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		logText string
	}{
		{"plain error", "/fail", internalErrText},
		{"panic", "/panic", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			rec := s.get(tt.path)
			assertErrorCode(t, rec.Code, rec.Body.Bytes(), http.StatusInternalServerError, "internal_error")
			if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "exploded") ||
				strings.Contains(rec.Body.String(), "boom") {
				t.Fatalf("body leaks the cause: %s", rec.Body)
			}
			rid := rec.Header().Get("X-Request-Id")
			errs := s.logs.FilterLevelExact(zapcore.ErrorLevel).All()
			found := false
			for _, e := range errs {
				m := e.ContextMap()
				if m["request_id"] == rid && strings.Contains(fmt.Sprint(m["error"]), tt.logText) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no error log line with request_id %s and the cause %q; got %v", rid, tt.logText, errs)
			}
		})
	}
}

func TestPanicDoesNotStopTheServer(t *testing.T) {
	s := newServer(t)
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	for i := 0; i < 3; i++ {
		resp, err := srv.Client().Get(srv.URL + "/panic")
		if err != nil {
			t.Fatalf("request %d after a panic: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertErrorCode(t, resp.StatusCode, b, http.StatusInternalServerError, "internal_error")
		resp, err = srv.Client().Get(srv.URL + "/things/1")
		if err != nil {
			t.Fatalf("server stopped serving after a panic: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after a panic: status %d, want 200", resp.StatusCode)
		}
	}
}

func TestRoutingErrorsAndHealth(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   string
	}{
		{"unknown route", http.MethodGet, "/nope", http.StatusNotFound, "not_found"},
		{"unknown nested route", http.MethodGet, "/nope/deeper/still", http.StatusNotFound, "not_found"},
		{"wrong method", http.MethodDelete, "/things/1", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"wrong method on healthz", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"healthz", http.MethodGet, "/healthz", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(httptest.NewRequest(tt.method, tt.path, nil))
			if tt.code != "" {
				assertErrorCode(t, rec.Code, rec.Body.Bytes(), tt.status, tt.code)
				return
			}
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.9:6379: secret-detail refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name   string
		opts   []httpx.Option
		status int
		checks map[string]string
	}{
		{"no checks", nil, http.StatusOK, map[string]string{}},
		{"all pass", []httpx.Option{httpx.WithReadyCheck("postgres", ok), httpx.WithReadyCheck("redis", ok), httpx.WithReadyCheck("nats", ok)},
			http.StatusOK, map[string]string{"postgres": "ok", "redis": "ok", "nats": "ok"}},
		{"redis down", []httpx.Option{httpx.WithReadyCheck("postgres", ok), httpx.WithReadyCheck("redis", down), httpx.WithReadyCheck("nats", ok)},
			http.StatusServiceUnavailable, map[string]string{"postgres": "ok", "redis": "unavailable", "nats": "ok"}},
		{"two down", []httpx.Option{httpx.WithReadyCheck("postgres", down), httpx.WithReadyCheck("nats", down)},
			http.StatusServiceUnavailable, map[string]string{"postgres": "unavailable", "nats": "unavailable"}},
		{"hung dependency times out", []httpx.Option{httpx.WithReadyCheck("postgres", ok), httpx.WithReadyCheck("nats", hang)},
			http.StatusServiceUnavailable, map[string]string{"postgres": "ok", "nats": "unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.opts...)
			start := time.Now()
			rec := s.get("/readyz")
			if time.Since(start) > 5*time.Second {
				t.Fatalf("/readyz took %s", time.Since(start))
			}
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q", ct)
			}
			var body struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if len(body.Checks) != len(tt.checks) {
				t.Fatalf("checks = %v, want %v", body.Checks, tt.checks)
			}
			for k, v := range tt.checks {
				if body.Checks[k] != v {
					t.Fatalf("checks[%s] = %q, want %q (body %s)", k, body.Checks[k], v, rec.Body)
				}
			}
			wantStatus := "ok"
			if tt.status != http.StatusOK {
				wantStatus = "unavailable"
			}
			if body.Status != wantStatus {
				t.Fatalf("status field = %q, want %q", body.Status, wantStatus)
			}
			if strings.Contains(rec.Body.String(), "secret-detail") {
				t.Fatalf("readiness body leaks the dependency error: %s", rec.Body)
			}
		})
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	s := newServer(t)
	const token = "tok9f8e7dzz"
	for _, p := range []string{"/things/123", "/things/" + token, "/unknown/" + token + "x"} {
		s.get(p)
	}
	rec := s.get("/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics status %d", rec.Code)
	}
	out := rec.Body.String()
	want := `http_requests_total{method="GET",route="/things/:id",service="test",status="200"} 2`
	if !strings.Contains(out, want) {
		t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(out, "http_requests_total"))
	}
	if !strings.Contains(out, `route="unmatched"`) {
		t.Fatalf("unknown route not recorded as unmatched:\n%s", grepLines(out, "http_requests_total"))
	}
	if !strings.Contains(out, "http_request_duration_seconds_bucket") || !strings.Contains(out, "http_requests_in_flight") {
		t.Fatal("/metrics lacks the duration histogram or in-flight gauge")
	}
	for _, bad := range []string{"/things/123", token} {
		if strings.Contains(out, bad) {
			t.Fatalf("raw path %q leaked into /metrics", bad)
		}
	}
	// "123" may legitimately occur in runtime metric values, so check every label value.
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "123") {
					t.Fatalf("%s has label %s=%q holding the raw id", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	for _, line := range strings.Split(grepLines(out, "http_"), "\n") {
		if strings.HasPrefix(line, "http_") && strings.Contains(strings.SplitN(line, "}", 2)[0], "123") {
			t.Fatalf("metric line holds the raw id: %s", line)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAccessLogNeverHoldsTheQueryOrRawPath(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		route  string
		status int
		secret string
	}{
		{"ok", "/things/1?token=SECRET1", "/things/:id", http.StatusOK, "SECRET1"},
		{"raw path param", "/things/PATHSECRET2?x=1", "/things/:id", http.StatusOK, "PATHSECRET2"},
		{"internal error", "/fail?token=SECRET3", "/fail", http.StatusInternalServerError, "SECRET3"},
		{"unknown route", "/nope/PATHSECRET4?token=SECRET4", "unmatched", http.StatusNotFound, "SECRET4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Header.Set("X-Request-Id", "log-"+strconv.Itoa(tt.status))
			rec := s.do(req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			entries := s.logs.All()
			for _, e := range entries {
				if txt := entryText(e); strings.Contains(txt, tt.secret) || strings.Contains(txt, "token=") {
					t.Fatalf("log entry holds the secret: %s", txt)
				}
			}
			access := s.logs.FilterMessage("request").All()
			if len(access) != 1 {
				t.Fatalf("want one access log line, got %d: %v", len(access), entries)
			}
			m := access[0].ContextMap()
			if m["route"] != tt.route || m["method"] != "GET" || m["status"] != int64(tt.status) || m["request_id"] != "log-"+strconv.Itoa(tt.status) {
				t.Fatalf("access log fields = %v", m)
			}
		})
	}
	t.Run("probes are not access-logged", func(t *testing.T) {
		s := newServer(t)
		s.get("/healthz")
		s.get("/readyz")
		s.get("/metrics")
		if n := s.logs.FilterMessage("request").Len(); n != 0 {
			t.Fatalf("probes wrote %d access log lines", n)
		}
	})
}

func TestClientIP(t *testing.T) {
	_, tenNet, _ := net.ParseCIDR("10.0.0.0/8")
	_, v6Net, _ := net.ParseCIDR("fd00::/8")
	trusted := httpx.WithTrustedProxies([]*net.IPNet{tenNet, v6Net})
	tests := []struct {
		name    string
		trusted bool
		remote  string
		xff     []string
		want    string
	}{
		{"untrusted peer, no proxies configured", false, "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7"},
		{"loopback peer, no proxies configured", false, "127.0.0.1:5555", []string{"1.2.3.4"}, "127.0.0.1"},
		{"private peer, no proxies configured", false, "10.0.0.1:5555", []string{"1.2.3.4"}, "10.0.0.1"},
		{"no xff from trusted peer", true, "10.0.0.1:5555", nil, "10.0.0.1"},
		{"trusted peer", true, "10.0.0.1:5555", []string{"1.2.3.4"}, "1.2.3.4"},
		{"trusted peer, spoofed left hops", true, "10.0.0.1:5555", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"trusted peer, chain of trusted proxies", true, "10.0.0.1:5555", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9, 10.8.8.8"}, "1.2.3.4"},
		{"trusted peer, several headers", true, "10.0.0.1:5555", []string{"6.6.6.6", "1.2.3.4, 10.9.9.9"}, "1.2.3.4"},
		{"trusted peer, garbage on the left", true, "10.0.0.1:5555", []string{"not-an-ip, 1.2.3.4"}, "1.2.3.4"},
		{"trusted v6 peer", true, "[fd00::1]:5555", []string{"2001:db8::7"}, "2001:db8::7"},
		{"untrusted peer with proxies configured", true, "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7"},
		{"loopback is not trusted unless configured", true, "127.0.0.1:5555", []string{"1.2.3.4"}, "127.0.0.1"},
		{"other private range is not trusted", true, "192.168.1.1:5555", []string{"1.2.3.4"}, "192.168.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *testServer
			if tt.trusted {
				s = newServer(t, trusted)
			} else {
				s = newServer(t)
			}
			req := httptest.NewRequest(http.MethodGet, "/ip", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			req.Header.Set("X-Real-Ip", "9.9.9.9")
			rec := s.do(req)
			if got := rec.Body.String(); got != tt.want {
				t.Fatalf("RealIP = %q, want %q", got, tt.want)
			}
			access := s.logs.FilterMessage("request").All()
			if len(access) != 1 || access[0].ContextMap()["ip"] != tt.want {
				t.Fatalf("access log ip = %v, want %q", access, tt.want)
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := newServer(t, httpx.WithShutdownTimeout(5*time.Second))
	started := make(chan struct{})
	var finished atomic.Bool
	s.Echo.GET("/slow", func(c echo.Context) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return c.String(http.StatusOK, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resc <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request never reached the handler")
	}
	cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v while a request was in flight", err)
	default:
	}
	select {
	case r := <-resc:
		if r.err != nil || r.status != http.StatusOK || r.body != "done" {
			t.Fatalf("slow request: status %d body %q err %v, want 200 done", r.status, r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow request did not complete")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if !finished.Load() {
		t.Fatal("handler did not finish")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts connections after shutdown")
	}
}

func TestServeReturnsNilOnCancelWhenIdle(t *testing.T) {
	s := newServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"ok"`)) {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestAccessLogSampling(t *testing.T) {
	s := newServer(t, httpx.WithAccessLogSampling(10))
	for range 25 {
		s.get("/things/1")
	}
	if n := s.logs.FilterMessage("request").Len(); n != 3 {
		t.Fatalf("25 successes sampled 1 in 10 wrote %d lines, want 3", n)
	}
	for range 5 {
		s.get("/fail")
		s.get("/nope")
	}
	if n := s.logs.FilterMessage("request").Len(); n != 13 {
		t.Fatalf("errors are logged every time: %d lines, want 13", n)
	}
	if got := testutil.ToFloat64(s.reg.HTTPRequests.WithLabelValues("/things/:id", "GET", "200")); got != 25 {
		t.Fatalf("metrics count %v successes, want 25", got)
	}
	all := newServer(t, httpx.WithAccessLogSampling(1))
	for range 5 {
		all.get("/things/1")
	}
	if n := all.logs.FilterMessage("request").Len(); n != 5 {
		t.Fatalf("sampling 1 wrote %d lines, want 5", n)
	}
}

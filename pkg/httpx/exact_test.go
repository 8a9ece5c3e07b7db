package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zapcore"

	"github.com/talentforge/auth/pkg/httpx"
)

// Echo's own origin matching reads "*" and "?" inside an entry as wildcards and takes
// "null" literally. Even when an allowlist holds such entries (configuration validation
// bypassed), only an exact origin may get Access-Control-Allow-Origin.
func TestCORSMatchesOriginsExactly(t *testing.T) {
	const app = "https://app.example"
	s := newServer(t, httpx.WithCORS([]string{"https://*.example", "https://?vil.example", "https://ev*", "null", app}))
	request := func(method, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/things/1", nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		}
		return s.do(req)
	}
	for _, method := range []string{http.MethodGet, http.MethodOptions} {
		rec := request(method, app)
		if rec.Header().Get("Access-Control-Allow-Origin") != app || rec.Header().Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("%s from the listed origin %s: headers %v", method, app, rec.Header())
		}
		for _, origin := range []string{"https://evil.example", "null", "https://APP.example", "https://app.example.evil", "http://app.example"} {
			rec := request(method, origin)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("%s from %q got Access-Control-Allow-Origin %q", method, origin, got)
			}
			if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("%s from %q got Access-Control-Allow-Credentials %q", method, origin, got)
			}
		}
	}
}

// A request the client (the gateway's ForwardAuth) gave up on is not a server error: it
// is counted and logged as 499, never as a 500 at error level (that fires the 5xx alert).
func TestClientCanceledRequestIs499NotAnError(t *testing.T) {
	s := newServer(t)
	started := make(chan struct{})
	s.Echo.GET("/slow", func(c echo.Context) error {
		close(started)
		<-c.Request().Context().Done()
		return fmt.Errorf("load session: session: get: %w", c.Request().Context().Err())
	})
	srv := httptest.NewServer(s.Echo)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-started; cancel() }()
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the canceled request got an answer: %d", resp.StatusCode)
	}

	counter := func(status string) float64 {
		return testutil.ToFloat64(s.reg.HTTPRequests.WithLabelValues("/slow", http.MethodGet, status))
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter("499")+counter("500")+counter("503") == 0 || s.logs.FilterMessage("request").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the canceled request was never counted and logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := counter("499"); got != 1 {
		t.Errorf(`http_requests_total{status="499"} = %v, want 1`, got)
	}
	if got5xx := counter("500") + counter("503"); got5xx != 0 {
		t.Errorf("the canceled request was counted as a 5xx (%v)", got5xx)
	}
	for _, e := range s.logs.All() {
		if e.Level >= zapcore.ErrorLevel {
			t.Errorf("error-level line for a canceled request: %s", entryText(e))
		}
	}
	access := s.logs.FilterMessage("request").All()
	if len(access) != 1 || access[0].ContextMap()["status"] != int64(499) || access[0].Level > zapcore.InfoLevel {
		t.Errorf("access log = %v, want one info line with status 499", access)
	}
}

// A deadline of our own, or a cancellation while the client is still there, stays a
// server-side failure: 503 or 500, logged at error level.
func TestServerSideCancellationStaysAnError(t *testing.T) {
	tests := []struct {
		name    string
		handler echo.HandlerFunc
		status  int
	}{
		{"own deadline", func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), time.Millisecond)
			defer cancel()
			<-ctx.Done()
			return fmt.Errorf("query: %w", ctx.Err())
		}, http.StatusServiceUnavailable},
		{"request deadline expired", func(c echo.Context) error {
			ctx, cancel := context.WithTimeout(c.Request().Context(), time.Millisecond)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			<-ctx.Done()
			// Some drivers report a canceled query even when the deadline was the cause.
			return fmt.Errorf("query: %w", context.Canceled)
		}, http.StatusInternalServerError},
		{"internal cancellation", func(c echo.Context) error {
			ctx, cancel := context.WithCancel(c.Request().Context())
			cancel()
			return fmt.Errorf("fan-out: %w", ctx.Err())
		}, http.StatusInternalServerError},
		{"canceled sentinel, client still there", func(c echo.Context) error {
			return errors.Join(errors.New("worker stopped"), context.Canceled)
		}, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.Echo.GET("/op", tt.handler)
			rec := s.get("/op")
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if got := testutil.ToFloat64(s.reg.HTTPRequests.WithLabelValues("/op", http.MethodGet, fmt.Sprint(tt.status))); got != 1 {
				t.Fatalf("http_requests_total{status=%d} = %v, want 1", tt.status, got)
			}
			if s.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessage("request failed").Len() != 1 {
				t.Fatalf("no error-level line; logs %v", s.logs.All())
			}
		})
	}
}

package httpx

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/logging"
)

// requestID echoes a well-formed incoming X-Request-Id and generates one otherwise, so a
// client cannot inject log lines or huge values through it.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(rid) {
			rid = uuid.NewString()
		}
		// observe puts it in the request's context, with the logger: one copy of the
		// request for both.
		c.Response().Header()[echo.HeaderXRequestID] = []string{rid}
		return next(c)
	}
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

// SlowRequest is the latency from which a successful request is always access-logged.
const SlowRequest = time.Second

// observe logs requests and records the metrics of every one. Errors (4xx, 5xx) and
// requests slower than SlowRequest are always logged; successes are sampled
// (WithAccessLogSampling), so the hot paths do not pay for a log line each. The path
// logged is the route template, never the raw URL, so nothing secret in a URL can
// reach a log.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		// Lazy: the fields are encoded only if this request logs at all (sampling). The
		// trace ids join the line to the request's trace (traceRequests runs before).
		log := s.log.WithLazy(zap.String("request_id", rid))
		sc := trace.SpanContextFromContext(req.Context())
		if sc.IsValid() {
			log = log.WithLazy(zap.Stringer(logging.TraceIDKey, sc.TraceID()), zap.Stringer(logging.SpanIDKey, sc.SpanID()))
		}
		c.SetRequest(req.WithContext(logging.WithRequestID(logging.WithLogger(req.Context(), log), rid)))
		s.reg.HTTPInFlight.Inc()
		defer s.reg.HTTPInFlight.Dec()

		err := next(c)
		if err != nil {
			c.Error(err) // render now so the status below is the one sent
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		elapsed := time.Since(start)
		s.reg.HTTPRequests.WithLabelValues(route, req.Method, strconv.Itoa(status)).Inc()
		s.reg.ObserveHTTPDuration(route, req.Method, elapsed, sc)
		if route != "/healthz" && route != "/readyz" && route != "/metrics" && s.sampled(status, elapsed) {
			log.Info("request",
				zap.String("method", req.Method), zap.String("route", route),
				zap.Int("status", status), zap.Duration("latency", elapsed),
				zap.String("ip", c.RealIP()), zap.Int64("bytes_out", c.Response().Size))
		}
		return nil
	}
}

// sampled reports whether the access log line of a request is written.
func (s *Server) sampled(status int, elapsed time.Duration) bool {
	if status >= 400 || elapsed >= SlowRequest || s.opts.logEvery <= 1 {
		return true
	}
	return s.logged.Add(1)%s.opts.logEvery == 1
}

func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = &Error{Status: ErrInternal.Status, Code: ErrInternal.Code, Message: ErrInternal.Message,
					Err: fmt.Errorf("panic: %v", r)}
			}
		}()
		return next(c)
	}
}

// securityHeaderValues are securityHeaders' names (canonical) and values.
var securityHeaderValues = []struct{ name, value string }{
	{"X-Content-Type-Options", "nosniff"},
	{"Cache-Control", "no-store"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
	{"X-Frame-Options", "DENY"},
	{"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
}

// securityHeaders are safe defaults for an API: nothing is cached unless a handler says
// so (answers hold tokens and personal data), nothing is sniffed or framed.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		// Canonical names, set in place: no canonicalisation per request. Each value is a
		// new one-element slice, so a handler's Add never shares storage across requests.
		vals := make([]string, len(securityHeaderValues))
		for i, kv := range securityHeaderValues {
			vals[i] = kv.value
			h[kv.name] = vals[i : i+1 : i+1]
		}
		return next(c)
	}
}

// bodyPolicy enforces the 64 KiB limit and JSON-only bodies before any handler reads;
// under formPrefixes HTML form posts are accepted too.
func bodyPolicy(formPrefixes []string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > MaxBodyBytes {
				return ErrTooLarge
			}
			hasBody := req.ContentLength > 0 || (req.ContentLength < 0 && req.Body != nil && req.Body != http.NoBody)
			if hasBody {
				mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
				ok := err == nil && (mt == "application/json" || mt == "application/problem+json" ||
					(mt == "application/x-www-form-urlencoded" && hasPrefix(req.URL.Path, formPrefixes)))
				if !ok {
					return ErrUnsupportedMedia
				}
				req.Body = http.MaxBytesReader(c.Response(), req.Body, MaxBodyBytes)
			}
			return next(c)
		}
	}
}

func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Package httpx is the HTTP plumbing every service shares, on echo: request ids, recovery,
// access logs, metrics, body limits, JSON-only bodies, security headers, one error
// renderer (v1 JSON and RFC 9457 problem+json), health and readiness, and graceful
// shutdown.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/tracing"
)

// MaxBodyBytes bounds every request body (64 KiB).
const MaxBodyBytes = 64 << 10

// Check reports whether one dependency answers.
type Check func(ctx context.Context) error

type options struct {
	trustedProxies  []*net.IPNet
	problemPrefixes []string
	checks          map[string]Check
	mapError        func(error) error
	unavailable     func(error) bool
	corsOrigins     []string
	gzipSkip        []string
	formPrefixes    []string
	gzip            bool
	openAPI         []byte
	readTimeout     time.Duration
	writeTimeout    time.Duration
	maxHeaderBytes  int
	shutdownTimeout time.Duration
	logEvery        uint64 // log 1 in logEvery successful requests
}

// Option configures a Server.
type Option func(*options)

// WithTrustedProxies names the peers whose X-Forwarded-For is believed.
func WithTrustedProxies(nets []*net.IPNet) Option {
	return func(o *options) { o.trustedProxies = nets }
}

// WithProblemJSON renders errors under these path prefixes as application/problem+json.
func WithProblemJSON(prefixes ...string) Option {
	return func(o *options) { o.problemPrefixes = append(o.problemPrefixes, prefixes...) }
}

// WithReadyCheck adds a dependency to /readyz.
func WithReadyCheck(name string, c Check) Option {
	return func(o *options) { o.checks[name] = c }
}

// WithErrorMapper lets a service turn its use-case errors into Errors before they
// are rendered, for every route alike.
func WithErrorMapper(fn func(error) error) Option {
	return func(o *options) { o.mapError = fn }
}

// WithUnavailable recognises the errors of the service's drivers that mean a
// dependency cannot be used now (a closed pool, a failed connect): answered 503, as the
// network errors and deadlines httpx recognises itself.
func WithUnavailable(fn func(error) bool) Option {
	return func(o *options) { o.unavailable = fn }
}

// WithCORS answers browsers from these origins (exact match), with credentials.
// Any other origin, "null" included, gets no Access-Control-Allow-* at all.
func WithCORS(origins []string) Option {
	return func(o *options) { o.corsOrigins = origins }
}

// WithGzip compresses answers of 1 KiB and more, except under the given path prefixes:
// answers that hold secrets are never compressed next to attacker-chosen text (BREACH).
func WithGzip(skipPrefixes ...string) Option {
	return func(o *options) { o.gzip, o.gzipSkip = true, skipPrefixes }
}

// WithForms also accepts HTML form posts (application/x-www-form-urlencoded) under these
// path prefixes: the hosted UI's pages. Every other path stays JSON-only.
func WithForms(prefixes ...string) Option {
	return func(o *options) { o.formPrefixes = append(o.formPrefixes, prefixes...) }
}

// WithShutdownTimeout bounds how long in-flight requests may drain on shutdown.
func WithShutdownTimeout(d time.Duration) Option {
	return func(o *options) { o.shutdownTimeout = d }
}

// WithAccessLogSampling logs 1 in every successes (2xx and 3xx answered within
// SlowRequest); every 4xx, 5xx and slow request is logged whatever the sampling. every
// <= 1 logs every request. Default 100. Metrics count every request either way.
func WithAccessLogSampling(every int) Option {
	return func(o *options) { o.logEvery = uint64(max(1, every)) }
}

// Server is an echo instance with the shared middleware and the probe routes.
type Server struct {
	Echo *echo.Echo
	log  *zap.Logger
	reg  *metrics.Registry
	opts options
	// logged counts the successes seen, for access-log sampling.
	logged atomic.Uint64
}

// New builds a server. Routes are added on s.Echo by the service.
func New(log *zap.Logger, reg *metrics.Registry, opts ...Option) *Server {
	o := options{
		checks:          map[string]Check{},
		readTimeout:     10 * time.Second,
		writeTimeout:    30 * time.Second,
		maxHeaderBytes:  32 << 10,
		shutdownTimeout: 20 * time.Second,
		logEvery:        100,
	}
	for _, opt := range opts {
		opt(&o)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{Echo: e, log: log, reg: reg, opts: o}
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(o.trustedProxies)
	trace := passTraceContext
	if tracing.On() {
		trace = traceRequests
	}
	e.Use(
		requestID,
		trace,     // before observe, so its log line and exemplar carry the trace id
		s.observe, // outermost after the id and span: it sees panics turned into 500s
		s.recoverPanics,
		securityHeaders,
	)
	if len(o.corsOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			// A set lookup, never echo's AllowOrigins: echo reads "*" and "?" inside an
			// entry as wildcards and takes "null" literally, all with credentials.
			AllowOriginFunc:  exactOrigins(o.corsOrigins),
			AllowMethods:     []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders:     []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderXRequestedWith, echo.HeaderXRequestID},
			ExposeHeaders:    []string{echo.HeaderXRequestID, "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"},
			AllowCredentials: true,
			MaxAge:           600,
		}))
	}
	if o.gzip {
		e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
			MinLength: 1024,
			Skipper: func(c echo.Context) bool {
				// promhttp compresses /metrics itself.
				for _, p := range append(o.gzipSkip, "/metrics") {
					if strings.HasPrefix(c.Request().URL.Path, p) {
						return true
					}
				}
				return false
			},
		}))
	}
	e.Use(bodyPolicy(o.formPrefixes))
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.ready)
	e.GET("/metrics", echo.WrapHandler(reg.Handler()))
	if o.openAPI != nil {
		e.GET("/openapi.json", openAPIHandler(o.openAPI))
	}
	return s
}

// exactOrigins allows an Origin header only when it is byte for byte one of origins.
// "null" (sandboxed frames, file: pages, some redirects) is never allowed, even listed.
func exactOrigins(origins []string) func(string) (bool, error) {
	set := make(map[string]struct{}, len(origins))
	for _, o := range origins {
		if o != "null" {
			set[o] = struct{}{}
		}
	}
	return func(origin string) (bool, error) {
		_, ok := set[origin]
		return ok, nil
	}
}

// ipExtractor believes X-Forwarded-For only from configured proxies; echo would
// otherwise trust every private and loopback peer.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(s.opts.checks))
	for name, check := range s.opts.checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	status, body := http.StatusOK, map[string]any{}
	checks := map[string]string{}
	for range s.opts.checks {
		r := <-results
		if r.err != nil {
			status = http.StatusServiceUnavailable
			checks[r.name] = "unavailable"
			s.log.Warn("readiness check failed", zap.String("dependency", r.name), zap.Error(r.err))
			continue
		}
		checks[r.name] = "ok"
	}
	body["checks"] = checks
	body["status"] = "ok"
	if status != http.StatusOK {
		body["status"] = "unavailable"
	}
	return c.JSON(status, body)
}

// Run serves on addr until ctx ends, then drains in-flight requests.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       s.opts.readTimeout,
		WriteTimeout:      s.opts.writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    s.opts.maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining in-flight requests", zap.Duration("timeout", s.opts.shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// BindJSON decodes the body into v. Unknown fields are ignored (the contract says so);
// trailing data, wrong types and syntax errors are invalid_json. An empty body decodes
// as {} so routes with optional bodies work.
func BindJSON(c echo.Context, v any) error {
	body := c.Request().Body
	if body == nil || body == http.NoBody {
		return nil
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return ErrInvalidJSON
	}
	return nil
}

func decodeError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
		return ErrTooLarge
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return ErrTooLarge
	}
	return &Error{Status: ErrInvalidJSON.Status, Code: ErrInvalidJSON.Code, Message: ErrInvalidJSON.Message, Err: err}
}

func jsonEncode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

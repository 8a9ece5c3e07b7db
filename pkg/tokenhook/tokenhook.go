// Package tokenhook calls the access-token hook (ACCESS_TOKEN_HOOK_*): an HTTP endpoint
// of the operator's that is shown every token pair auth and oauth are about to issue or
// refresh, and may answer claims that the access token then carries under its top-level
// claim "ext".
//
// Each call is a POST of a Request, signed as Standard Webhooks sign (webhook-id, a new
// one per call, webhook-timestamp, webhook-signature under ACCESS_TOKEN_HOOK_SECRET),
// bounded by ACCESS_TOKEN_HOOK_TIMEOUT, with no proxy and no redirect followed. The hook
// answers 2xx with {"claims": {...}}: an object of at most MaxClaimsBytes (compact JSON)
// in an answer of at most MaxAnswerBytes; a missing, null or empty claims object adds
// nothing. Anything else (another status, a redirect, no answer in time, a body that is
// not such an object) is a failure. The answer can only ever fill "ext": it never sets,
// changes or removes a top-level claim (iss, sub, aud, exp, iat, jti, sid, roles, amr,
// auth_time).
//
// A circuit breaker stops calling after Failures consecutive failures and, OpenFor
// later, lets one call through to probe. A failure, or a call the breaker refused, is
// either an error wrapping ErrUnavailable (ACCESS_TOKEN_HOOK_FAILURE=closed: the caller
// answers 503 and issues nothing) or, failing open, no claims and a warning.
//
// The hook's URL is the operator's own, usually a cluster-internal address, so it is
// not held to the webhook SSRF policy (pkg/webhook.Policy) of the URLs admins register.
package tokenhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/webhook"
)

// The types of a Request.
const (
	TypeIssued    = "token.issued"    // a sign-in: a new session's first pair
	TypeRefreshed = "token.refreshed" // a refresh of a session
)

// Bounds of the hook's answer.
const (
	// MaxAnswerBytes bounds the answer's body.
	MaxAnswerBytes = 16 << 10
	// MaxClaimsBytes bounds the claims object as compact JSON, so that an access token
	// carrying it stays well under token.MaxTokenSize (8 KiB) once base64url-encoded.
	MaxClaimsBytes = 4 << 10
)

// Defaults of the circuit breaker.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 30 * time.Second
)

// ErrUnavailable: the hook failed (or its breaker is open) and the hook fails closed.
var ErrUnavailable = errors.New("tokenhook: the access-token hook gave no usable answer")

// Request is the body of a call.
type Request struct {
	// Type is TypeIssued or TypeRefreshed.
	Type string `json:"type"`
	// User is the account as the API shows it (accounts.UserView: never a hash, a
	// secret or a token).
	User any `json:"user"`
	// Session is the session the pair belongs to.
	Session Session `json:"session"`
	// Claims are the draft claims of the access token (token.AccessClaims), exactly as
	// they will be signed, ext aside.
	Claims any `json:"claims"`
}

// Session is the session of a Request.
type Session struct {
	ID  string   `json:"id"`
	AMR []string `json:"amr"`
	// CreatedAt is when the session signed in (the token's auth_time).
	CreatedAt time.Time `json:"created_at"`
}

// Config configures a Hook.
type Config struct {
	URL string
	// Secret is the Standard Webhooks secret ("whsec_" + base64) that signs each call.
	Secret  string
	Timeout time.Duration
	// FailOpen issues tokens without the hook's claims when it fails
	// (ACCESS_TOKEN_HOOK_FAILURE=open); false fails closed.
	FailOpen bool
	// Failures is how many consecutive failures open the breaker (0: DefaultFailures);
	// OpenFor how long it stays open before one call probes (0: DefaultOpenFor).
	Failures uint32
	OpenFor  time.Duration
	// Metrics registers the hook's metrics (nil: counted, not exported).
	Metrics prometheus.Registerer
	// Log receives the warnings of failing open and the breaker's changes (nil: none).
	// It never gets claims, the secret or the URL.
	Log *zap.Logger
	// Transport replaces the hook's own HTTP transport (tests).
	Transport http.RoundTripper
}

// Hook calls the access-token hook. It is safe for concurrent use.
type Hook struct {
	url      string
	secrets  []string
	client   *http.Client
	failOpen bool
	breaker  *gobreaker.CircuitBreaker[map[string]any]
	log      *zap.Logger
	m        *hookMetrics
}

// FromConfig is the hook of ACCESS_TOKEN_HOOK_*, or nil (no error) when
// ACCESS_TOKEN_HOOK_URL is empty.
func FromConfig(c config.AccessTokenHook, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	if c.URL == "" {
		return nil, nil
	}
	h, err := New(Config{URL: c.URL, Secret: c.Secret, Timeout: c.Timeout, FailOpen: c.Failure == "open",
		Metrics: reg, Log: log})
	if err != nil {
		return nil, fmt.Errorf("ACCESS_TOKEN_HOOK_URL: %w", err)
	}
	return h, nil
}

// New returns the hook of cfg.
func New(cfg Config) (*Hook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("tokenhook: the URL must be an absolute http(s) URL")
	}
	if err := webhook.CheckSecret(cfg.Secret); err != nil {
		return nil, errors.New("tokenhook: the secret is not whsec_ + base64 of 24 to 64 bytes")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Failures == 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultOpenFor
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 nil, // the operator's address, reached directly
			DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
		}
	}
	h := &Hook{
		url:      u.String(),
		secrets:  []string{cfg.Secret},
		failOpen: cfg.FailOpen,
		log:      cfg.Log,
		m:        newMetrics(cfg.Metrics),
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	failures := cfg.Failures
	h.breaker = gobreaker.NewCircuitBreaker[map[string]any](gobreaker.Settings{
		Name:        "access-token-hook",
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A caller that went away says nothing about the hook.
		IsExcluded: func(err error) bool { return outcomeOf(err) == OutcomeCanceled },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			h.m.breaker.Set(float64(to))
			h.log.Warn("access-token hook breaker", zap.String("from", from.String()), zap.String("to", to.String()))
		},
	})
	return h, nil
}

// FailsOpen reports whether a failure issues tokens without the hook's claims.
func (h *Hook) FailsOpen() bool { return h.failOpen }

// Rejecting reports whether a call now would fail closed at once: the breaker is open
// and the hook fails closed. A caller may then refuse before doing any work.
func (h *Hook) Rejecting() bool {
	return !h.failOpen && h.breaker.State() == gobreaker.StateOpen
}

// Outcomes of a call: the label of access_token_hook_calls_total.
const (
	OutcomeOK          = "ok"
	OutcomeTimeout     = "timeout"      // no answer within ACCESS_TOKEN_HOOK_TIMEOUT
	OutcomeError       = "error"        // no connection, or it broke
	OutcomeStatus      = "bad_status"   // not 2xx (a redirect included)
	OutcomeAnswer      = "bad_answer"   // 2xx, but not {"claims": {...}} within the bounds
	OutcomeBreakerOpen = "breaker_open" // not called: the breaker is open
	OutcomeCanceled    = "canceled"     // the caller's request ended first
)

// failure is a failed call: its outcome and a cause that never holds the URL, the
// body or the claims.
type failure struct {
	outcome string
	err     error
}

func (f *failure) Error() string { return f.outcome + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func outcomeOf(err error) string {
	var f *failure
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &f):
		return f.outcome
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return OutcomeBreakerOpen
	}
	return OutcomeError
}

// Extend calls the hook with req and returns the claims to put under "ext" (nil:
// none). When the hook fails or its breaker is open, it returns an error wrapping
// ErrUnavailable, or, failing open, nil claims and no error (a warning and
// access_token_hook_fallbacks_total). A caller's context that ends first is an error
// in either mode.
func (h *Hook) Extend(ctx context.Context, req Request) (map[string]any, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("tokenhook: encode the request: %w", err)
	}
	start := time.Now()
	claims, err := h.breaker.Execute(func() (map[string]any, error) { return h.call(ctx, body) })
	outcome := outcomeOf(err)
	h.m.calls.WithLabelValues(outcome).Inc()
	if outcome != OutcomeBreakerOpen {
		h.m.duration.Observe(time.Since(start).Seconds())
	}
	if err == nil {
		return claims, nil
	}
	if h.failOpen && outcome != OutcomeCanceled {
		h.m.fallbacks.Inc()
		h.log.Warn("access-token hook failed: tokens issued without its claims (ACCESS_TOKEN_HOOK_FAILURE=open)",
			zap.String("type", req.Type), zap.String("outcome", outcome), zap.Error(err))
		return nil, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (h *Hook) call(ctx context.Context, body []byte) (map[string]any, error) {
	id := "msg_" + uuid.NewString()
	ts := time.Now()
	sig, err := webhook.Sign(h.secrets, id, ts, body)
	if err != nil {
		return nil, &failure{OutcomeError, err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, &failure{OutcomeError, errors.New("cannot build the request")}
	}
	webhook.SetHeaders(req.Header, id, ts, sig)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "talentforge-access-token-hook/1")
	res, err := h.client.Do(req)
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, MaxAnswerBytes))
		return nil, &failure{OutcomeStatus, fmt.Errorf("answered %d", res.StatusCode)}
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxAnswerBytes+1))
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	if len(raw) > MaxAnswerBytes {
		return nil, &failure{OutcomeAnswer, fmt.Errorf("the answer is over %d bytes", MaxAnswerBytes)}
	}
	claims, err := parseAnswer(raw)
	if err != nil {
		return nil, &failure{OutcomeAnswer, err}
	}
	return claims, nil
}

// transportFailure classifies a failed exchange without quoting the URL (which may hold
// credentials): *url.Error is unwrapped to its cause.
func transportFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &failure{OutcomeCanceled, ctx.Err()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return &failure{OutcomeTimeout, errors.New("no answer in time (ACCESS_TOKEN_HOOK_TIMEOUT)")}
	}
	return &failure{OutcomeError, err}
}

// parseAnswer reads {"claims": {...}}: one JSON object and nothing after it, whose
// claims member, when present and not null, is an object of at most MaxClaimsBytes.
// Numbers stay as written (json.Number), so large integers survive signing.
func parseAnswer(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil || top == nil {
		return nil, errors.New(`the answer is not a JSON object ({"claims": {...}})`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("the answer has data after its JSON object")
	}
	member, ok := top["claims"]
	if !ok || string(bytes.TrimSpace(member)) == "null" {
		return nil, nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, member); err != nil {
		return nil, errors.New("claims is not JSON")
	}
	if compact.Len() > MaxClaimsBytes {
		return nil, fmt.Errorf("claims is over %d bytes of compact JSON", MaxClaimsBytes)
	}
	cd := json.NewDecoder(&compact)
	cd.UseNumber()
	var claims map[string]any
	if err := cd.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("claims is not a JSON object")
	}
	if len(claims) == 0 {
		return nil, nil
	}
	return claims, nil
}

type hookMetrics struct {
	calls     *prometheus.CounterVec
	duration  prometheus.Histogram
	breaker   prometheus.Gauge
	fallbacks prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *hookMetrics {
	m := &hookMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "access_token_hook_calls_total",
			Help: "Access-token hook calls by outcome (ok, timeout, error, bad_status, bad_answer, breaker_open, canceled)."},
			[]string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "access_token_hook_duration_seconds",
			Help:    "Duration of the access-token hook calls made (not those the breaker refused).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5}}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{Name: "access_token_hook_breaker_state",
			Help: "The access-token hook's circuit breaker: 0 closed, 1 half-open, 2 open."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "access_token_hook_fallbacks_total",
			Help: "Token pairs issued without the hook's claims because it failed (ACCESS_TOKEN_HOOK_FAILURE=open)."}),
	}
	if reg != nil {
		m.calls = metrics.Register(reg, m.calls)
		m.duration = metrics.Register(reg, m.duration)
		m.breaker = metrics.Register(reg, m.breaker)
		m.fallbacks = metrics.Register(reg, m.fallbacks)
	}
	return m
}

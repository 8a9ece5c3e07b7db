// Package mailer renders the worker's emails from embedded templates and sends them over
// SMTP through go-mail, behind a circuit breaker so a dead relay is not hammered.
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	gomail "github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// TLS modes of SMTP_TLS.
const (
	TLSNone     = "none"     // plain SMTP (a local relay)
	TLSStartTLS = "starttls" // STARTTLS required, usually port 587
	TLSImplicit = "tls"      // TLS from the first byte, usually port 465
)

// Config is the relay (SMTP_* in API.md).
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
	TLS      string
}

// Email is one message to send.
type Email struct {
	// ID identifies the message for good: the Message-ID is derived from it, so a
	// message sent twice in the at-least-once window is recognisably the same.
	ID   string
	To   string
	Kind Kind
	Data Data
}

type options struct {
	tlsConfig       *tls.Config
	timeout         time.Duration
	breakerFailures uint32
	breakerTimeout  time.Duration
	poll            time.Duration
	log             *zap.Logger
	reg             prometheus.Registerer
	now             func() time.Time
}

// Option configures a Mailer.
type Option func(*options)

// WithTLSConfig replaces the TLS configuration (tests trust their own CA with it).
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c } }

// WithTimeout bounds one SMTP conversation (default 15 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithBreaker opens the breaker after failures consecutive relay failures and probes the
// relay again after timeout (defaults 5 and 30 s).
func WithBreaker(failures int, timeout time.Duration) Option {
	return func(o *options) { o.breakerFailures, o.breakerTimeout = uint32(failures), timeout }
}

// WithLogger logs breaker changes.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics registers the mailer's metrics.
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithClock sets the clock the templates use to say when a link expires.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Mailer sends emails; it is safe for concurrent use.
type Mailer struct {
	tracer    trace.Tracer
	host      string
	port      int
	client    *gomail.Client
	from      string
	fromHost  string
	templates *Templates
	cb        *gobreaker.CircuitBreaker[struct{}]
	o         options

	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	breaker prometheus.Gauge
}

// New builds a Mailer; it does not dial.
func New(cfg Config, opts ...Option) (*Mailer, error) {
	o := options{timeout: 15 * time.Second, breakerFailures: 5, breakerTimeout: 30 * time.Second, log: zap.NewNop(), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.poll == 0 {
		o.poll = min(o.breakerTimeout/4, time.Second)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("SMTP_FROM: %q is not an email address", cfg.From)
	}
	_, fromHost, _ := strings.Cut(from.Address, "@")
	copts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(o.timeout)}
	switch cfg.TLS {
	case TLSNone:
		copts = append(copts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		copts = append(copts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		copts = append(copts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("SMTP_TLS: %q must be one of none, starttls, tls", cfg.TLS)
	}
	if o.tlsConfig != nil {
		copts = append(copts, gomail.WithTLSConfig(o.tlsConfig))
	}
	if cfg.Username != "" {
		copts = append(copts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	client, err := gomail.NewClient(cfg.Host, copts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP_HOST: %w", err)
	}
	tpl, err := ParseTemplates()
	if err != nil {
		return nil, err
	}
	m := &Mailer{tracer: otel.Tracer("github.com/talentforge/auth/services/token-worker/internal/mailer"),
		host: cfg.Host, port: cfg.Port, client: client, from: cfg.From, fromHost: fromHost, templates: tpl, o: o}
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_worker_emails_sent_total", Help: "Emails the relay accepted, by kind.",
	}, []string{"kind"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_worker_emails_failed_total", Help: "Email attempts that failed, by kind and reason (relay, rejected, breaker_open).",
	}, []string{"kind", "reason"})
	m.breaker = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "token_worker_smtp_breaker_state", Help: "The SMTP relay's circuit breaker: 0 closed, 1 half-open, 2 open.",
	})
	for _, k := range Kinds {
		m.sent.WithLabelValues(string(k))
	}
	if o.reg != nil {
		o.reg.MustRegister(m.sent, m.failed, m.breaker)
	}
	m.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "smtp",
		MaxRequests: 1,
		Timeout:     o.breakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= o.breakerFailures },
		// A recipient the relay refuses for good says nothing about the relay's health.
		IsSuccessful: func(err error) bool { return err == nil || rejected(err) },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.Set(float64(to))
			m.o.log.Warn("smtp circuit breaker", zap.String("from", from.String()), zap.String("to", to.String()))
		},
	})
	return m, nil
}

// rejected reports a permanent refusal of the recipient (5xx to RCPT TO).
func rejected(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp()
}

// State is the breaker's state.
func (m *Mailer) State() gobreaker.State { return m.cb.State() }

// Send renders e and sends it. A failure while the breaker is open wraps
// retry.ErrUnavailable; a recipient the relay refuses for good is a plain error like
// any other relay failure (the event is retried a bounded number of times).
func (m *Mailer) Send(ctx context.Context, e Email) error {
	subject, text, html, err := m.templates.Render(e.Kind, e.Data, m.o.now())
	if err != nil {
		return retry.Permanent(err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return retry.Permanent(fmt.Errorf("from address: %w", err))
	}
	if err := msg.To(e.To); err != nil {
		return retry.Permanent(fmt.Errorf("recipient address: %w", err))
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(e.ID + "@" + m.fromHost)
	msg.SetDate()
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, text)
	msg.AddAlternativeString(gomail.TypeTextHTML, html)

	// One client span per send, the recipient left out (personal data).
	ctx, span := m.tracer.Start(ctx, "smtp send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("email.kind", string(e.Kind)),
			semconv.ServerAddress(m.host), semconv.ServerPort(m.port)))
	defer span.End()
	_, err = m.cb.Execute(func() (struct{}, error) {
		return struct{}{}, m.client.DialAndSendWithContext(ctx, msg)
	})
	result := "sent"
	switch {
	case err == nil:
		m.sent.WithLabelValues(string(e.Kind)).Inc()
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		result = "breaker_open"
		m.failed.WithLabelValues(string(e.Kind), result).Inc()
		err = retry.Unavailable(fmt.Errorf("smtp relay: %w", err))
	case rejected(err):
		result = "rejected"
		m.failed.WithLabelValues(string(e.Kind), result).Inc()
		err = fmt.Errorf("smtp relay refused the recipient: %w", err)
	default:
		result = "relay"
		m.failed.WithLabelValues(string(e.Kind), result).Inc()
		err = fmt.Errorf("smtp relay: %w", err)
	}
	span.SetAttributes(attribute.String("email.result", result))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, result)
	}
	return err
}

// Wait returns once the breaker lets emails through: at once while it is closed;
// while it is open it waits, and once its timeout has passed it probes the relay
// (connect, greet, quit) instead of risking an event on it.
func (m *Mailer) Wait(ctx context.Context) error {
	for {
		switch m.cb.State() {
		case gobreaker.StateClosed:
			return nil
		case gobreaker.StateHalfOpen:
			if _, err := m.cb.Execute(func() (struct{}, error) { return struct{}{}, m.probe(ctx) }); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.o.poll):
		}
	}
}

func (m *Mailer) probe(ctx context.Context) error {
	c, err := m.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("probe smtp relay: %w", err)
	}
	return m.client.CloseWithSMTPClient(c)
}

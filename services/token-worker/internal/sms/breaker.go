package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// BreakerConfig configures a Breaker.
type BreakerConfig struct {
	// Failures in a row open the breaker (default 5); Timeout later it lets one message
	// through as a trial (default 30 s).
	Failures int
	Timeout  time.Duration
	// Log gets the breaker's changes; Metrics, when set, gets its metrics.
	Log     *zap.Logger
	Metrics prometheus.Registerer
}

// Breaker is a Provider behind a circuit breaker, so a provider that is down or refuses
// the account is not hammered, and counts every message: token_worker_sms_sent_total,
// token_worker_sms_failed_total{reason} and token_worker_sms_breaker_state.
type Breaker struct {
	p    Provider
	cb   *gobreaker.CircuitBreaker[struct{}]
	log  *zap.Logger
	poll time.Duration

	sent   prometheus.Counter
	failed *prometheus.CounterVec
	state  prometheus.Gauge
}

// NewBreaker wraps p.
func NewBreaker(p Provider, cfg BreakerConfig) *Breaker {
	if cfg.Failures < 1 {
		cfg.Failures = 5
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	b := &Breaker{p: p, log: cfg.Log, poll: min(cfg.Timeout/4, time.Second)}
	b.sent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "token_worker_sms_sent_total", Help: "SMS the provider accepted.",
	})
	b.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_worker_sms_failed_total",
		Help: "SMS attempts that failed, by reason (provider, rate_limited, rejected, account, breaker_open).",
	}, []string{"reason"})
	b.state = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "token_worker_sms_breaker_state", Help: "The SMS provider's circuit breaker: 0 closed, 1 half-open, 2 open.",
	})
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(b.sent, b.failed, b.state)
	}
	failures := uint32(cfg.Failures)
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "sms",
		MaxRequests: 1,
		Timeout:     cfg.Timeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A number the provider refuses for good says nothing about the provider's health;
		// refused credentials or sender do: every message would fail alike.
		IsSuccessful: func(err error) bool { return err == nil || reason(err) == ReasonRejected },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.state.Set(float64(to))
			b.log.Warn("sms circuit breaker", zap.String("from", from.String()), zap.String("to", to.String()))
		},
	})
	return b
}

// reason classifies a failed send for the metrics and the breaker.
func reason(err error) string {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ReasonBreakerOpen
	}
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	if errors.Is(err, retry.ErrPermanent) {
		return ReasonRejected
	}
	return ReasonProvider
}

// State is the breaker's state.
func (b *Breaker) State() gobreaker.State { return b.cb.State() }

// DropsAll forwards to the provider (None drops every SMS).
func (b *Breaker) DropsAll() bool { return dropsAll(b.p) }

// Send sends through the breaker. While it is open nothing is tried and the error wraps
// retry.ErrUnavailable; so does a retriable failure of the half-open trial, since the
// provider, not the event, is at fault. Otherwise the provider's classification stands.
func (b *Breaker) Send(ctx context.Context, to, body string) error {
	trial := b.cb.State() == gobreaker.StateHalfOpen
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, b.p.Send(ctx, to, body) })
	if err == nil {
		b.sent.Inc()
		return nil
	}
	r := reason(err)
	b.failed.WithLabelValues(r).Inc()
	switch {
	case r == ReasonBreakerOpen:
		return retry.Unavailable(fmt.Errorf("sms provider: %w", err))
	case trial && !errors.Is(err, retry.ErrPermanent):
		return retry.Unavailable(fmt.Errorf("sms provider still failing: %w", err))
	}
	return err
}

// Wait returns once the breaker lets messages through: at once while it is closed or
// half-open (the next message is the trial: the Messages API has no call that proves it
// would send without sending); while it is open it waits.
func (b *Breaker) Wait(ctx context.Context) error {
	for b.cb.State() == gobreaker.StateOpen {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.poll):
		}
	}
	return nil
}

package sms_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sony/gobreaker/v2"

	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sms"
)

// scripted answers each Send with the next error of its script (nil once it runs out).
type scripted struct {
	errs  []error
	calls atomic.Int32
}

func (s *scripted) Send(context.Context, string, string) error {
	n := int(s.calls.Add(1)) - 1
	if n < len(s.errs) {
		return s.errs[n]
	}
	return nil
}

func TestBreaker(t *testing.T) {
	rejected := retry.Permanent(&sms.TwilioError{Status: 400, Code: 21211, Message: "invalid To"})
	account := retry.Permanent(&sms.TwilioError{Status: 401, Code: 20003, Message: "Authenticate"})
	down := &sms.TwilioError{Status: 503}
	p := &scripted{errs: []error{rejected, rejected, rejected, down, account, down, down}}
	reg := prometheus.NewPedanticRegistry()
	b := sms.NewBreaker(p, sms.BreakerConfig{Failures: 3, Timeout: 150 * time.Millisecond, Metrics: reg})
	ctx := context.Background()

	// Refused numbers say nothing about the provider; a 503 and refused credentials do.
	for range 3 {
		if err := b.Send(ctx, "+14155550167", "x"); !errors.Is(err, retry.ErrPermanent) {
			t.Fatalf("Send = %v, want the permanent refusal", err)
		}
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("breaker %s after refused numbers, want closed", b.State())
	}
	for range 3 {
		_ = b.Send(ctx, "+14155550167", "x")
	}
	if b.State() != gobreaker.StateOpen {
		t.Fatalf("breaker %s after 3 provider failures, want open", b.State())
	}
	before := p.calls.Load()
	if err := b.Send(ctx, "+14155550167", "x"); !errors.Is(err, retry.ErrUnavailable) || p.calls.Load() != before {
		t.Fatalf("Send with the breaker open = %v (provider called %d more times), want ErrUnavailable and no call", err, p.calls.Load()-before)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if err := b.Wait(wctx); err == nil {
		t.Fatal("Wait returned while the breaker is open")
	}
	cancel()

	// After the timeout one message is the trial; its retriable failure is the
	// provider's, not the event's.
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "+14155550167", "x"); !errors.Is(err, retry.ErrUnavailable) {
		t.Fatalf("a failed trial = %v, want ErrUnavailable", err)
	}
	if b.State() != gobreaker.StateOpen {
		t.Fatalf("breaker %s after a failed trial, want open", b.State())
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "+14155550167", "x"); err != nil {
		t.Fatalf("a good trial = %v", err)
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("breaker %s after a good trial, want closed", b.State())
	}

	for reason, want := range map[string]float64{sms.ReasonRejected: 3, sms.ReasonProvider: 3, sms.ReasonAccount: 1, sms.ReasonBreakerOpen: 1} {
		if got := failed(t, reg, reason); got != want {
			t.Errorf("token_worker_sms_failed_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "token_worker_sms_sent_total", "token_worker_sms_breaker_state"); err != nil || n != 2 {
		t.Errorf("metrics: %d series, %v", n, err)
	}
}

func failed(t *testing.T, reg prometheus.Gatherer, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "token_worker_sms_failed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

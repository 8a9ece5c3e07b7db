// Package sms turns the auth service's SMS events into text messages: it opens the
// sealed code, claims the message in the sent_emails ledger (so it is sent once), sends
// it through a Provider (Twilio, or none) behind a circuit breaker and records it. It
// knows nothing of JetStream.
package sms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
)

// Provider delivers one text message to an E.164 number.
type Provider interface {
	Send(ctx context.Context, to, body string) error
}

// Outcomes of Handle that end the event (the consumer counts them).
const (
	OutcomeSent      = "sent"
	OutcomeDuplicate = "duplicate" // sent before: a redelivery
	OutcomeCapped    = "capped"    // over the per-number cap
	OutcomeExpired   = "expired"   // the code expired before it could be sent
	OutcomeDropped   = "dropped"   // SMS_PROVIDER=none: nothing can send it
	OutcomeIgnored   = "ignored"   // not an SMS event
)

// E164 is the form of every number the worker texts (the users.phone check too).
var E164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// bodies are the texts per purpose: the code, then the minutes it has left.
var bodies = map[string]string{
	events.SMSPurposeSignIn:            "Your sign-in code is %s. It expires in %s. Do not share it.",
	events.SMSPurposePhoneVerification: "Your verification code is %s. It expires in %s.",
}

// Ledger records messages so each is sent once (sentmail.Ledger).
type Ledger interface {
	Claim(ctx context.Context, c sentmail.Claim) (sentmail.Result, error)
	MarkSent(ctx context.Context, eventID string) error
	Release(ctx context.Context, eventID, attempt string) error
}

// Opener opens sealed fields (the events keyring).
type Opener interface {
	Open(s keyring.Sealed, eventID string) ([]byte, error)
}

var (
	_ Ledger = (*sentmail.Ledger)(nil)
	_ Opener = (*keyring.Keyring)(nil)
)

type options struct {
	cap int
	now func() time.Time
	log *zap.Logger
}

// Option configures a Service.
type Option func(*options)

// WithCap sets the most messages per number per hour (0: no cap).
func WithCap(n int) Option { return func(o *options) { o.cap = n } }

// WithClock sets the clock that decides whether a code has expired.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// Service is the SMS use case.
type Service struct {
	ledger   Ledger
	provider Provider
	keys     Opener
	o        options
}

// New returns the service sending through provider.
func New(ledger Ledger, provider Provider, keys Opener, opts ...Option) *Service {
	o := options{now: time.Now, log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	return &Service{ledger: ledger, provider: provider, keys: keys, o: o}
}

// Types returns the event types that make an SMS (events.ReaderSMS in the catalog).
func Types() []string { return []string{events.SubjectSMSCodeRequested} }

// Handle sends the SMS an event asks for, once. It returns the outcome, or an error
// classified for the consumer as notify.Service.Handle's: retry.ErrPermanent for an
// event no retry can fix (a bad number, one the provider refuses for good),
// retry.ErrUnavailable when the provider's breaker is open or the database is away,
// anything else for a failure retried a bounded number of times.
func (s *Service) Handle(ctx context.Context, ev events.Envelope) (string, error) {
	if ev.Type != events.SubjectSMSCodeRequested {
		return OutcomeIgnored, nil
	}
	decoded, err := ev.DecodePayload()
	if err != nil {
		return "", retry.Permanent(err)
	}
	p, ok := decoded.(*events.SMSCodeRequested)
	if !ok {
		return "", retry.Permanent(fmt.Errorf("%s: the payload is not an SMS code's", ev.Type))
	}
	if !E164.MatchString(p.Phone) {
		return "", retry.Permanent(fmt.Errorf("%s: the payload has no E.164 phone number", ev.Type))
	}
	format, ok := bodies[p.Purpose]
	if !ok {
		return "", retry.Permanent(fmt.Errorf("%s: unknown purpose %q", ev.Type, p.Purpose))
	}
	if p.ExpiresAt.IsZero() {
		return "", retry.Permanent(fmt.Errorf("%s: the payload has no expires_at", ev.Type))
	}
	now := s.o.now()
	if !now.Before(p.ExpiresAt) {
		// The code would not work: the user asks again and gets a fresh one.
		return OutcomeExpired, nil
	}
	if dropsAll(s.provider) {
		s.o.log.Warn("SMS dropped: SMS_PROVIDER is none", zap.String("event_id", ev.ID), zap.String("purpose", p.Purpose))
		return OutcomeDropped, nil
	}
	code, err := s.openCode(ev, p)
	if err != nil {
		return "", err
	}
	body := fmt.Sprintf(format, code, minutesLeft(p.ExpiresAt.Sub(now)))

	attempt := uuid.NewString()
	res, err := s.ledger.Claim(ctx, sentmail.Claim{EventID: ev.ID, Kind: "sms_" + p.Purpose, Recipient: p.Phone, Attempt: attempt, Cap: s.o.cap})
	if err != nil {
		return "", err
	}
	switch res {
	case sentmail.Done:
		return OutcomeDuplicate, nil
	case sentmail.Capped:
		s.o.log.Warn("SMS suppressed: the number reached its hourly cap",
			zap.String("event_id", ev.ID), zap.String("purpose", p.Purpose), zap.Int("cap", s.o.cap))
		return OutcomeCapped, nil
	case sentmail.Busy:
		return "", retry.Unavailable(errors.New("another attempt is sending this SMS"))
	}
	if err := s.send(ctx, ev.ID, p, body, attempt); err != nil {
		return "", err
	}
	return OutcomeSent, nil
}

// openCode opens the code sealed in the payload: ASCII digits only, since it goes into
// a text message verbatim.
func (s *Service) openCode(ev events.Envelope, p *events.SMSCodeRequested) (string, error) {
	if p.CodeSealed == nil {
		return "", retry.Permanent(fmt.Errorf("%s: the payload has no code_sealed", ev.Type))
	}
	raw, err := s.keys.Open(*p.CodeSealed, ev.ID)
	if err != nil {
		// An unknown key may arrive with the next deploy: retried, then dead-lettered.
		return "", fmt.Errorf("open the code of %s %s: %w", ev.Type, ev.ID, err)
	}
	if !Digits(string(raw)) {
		return "", retry.Permanent(fmt.Errorf("%s: the opened code is not 4 to 10 digits", ev.Type))
	}
	return string(raw), nil
}

// Digits reports whether code is a one-time code fit to show: 4 to 10 ASCII digits.
func Digits(code string) bool {
	if len(code) < 4 || len(code) > 10 {
		return false
	}
	for _, c := range []byte(code) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// minutesLeft says how long a code lives, rounded up to the minute.
func minutesLeft(left time.Duration) string {
	m := int((left + time.Minute - 1) / time.Minute)
	if m <= 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// send hands the claimed message to the provider and records it in the ledger.
func (s *Service) send(ctx context.Context, eventID string, p *events.SMSCodeRequested, body, attempt string) error {
	return sentmail.Deliver(ctx, s.ledger, eventID, attempt, s.o.log, func(ctx context.Context) error {
		if err := s.provider.Send(ctx, p.Phone, body); err != nil {
			return fmt.Errorf("send %s SMS for %s: %w", p.Purpose, eventID, err)
		}
		return nil
	})
}

// Package notify turns the auth service's email events into emails: it opens the sealed
// token, builds the link from APP_URL, claims the email in the ledger (so it is sent
// once), sends it and records it. It knows nothing of JetStream or SMTP.
package notify

import (
	"context"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"maps"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/mailer"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
	"github.com/talentforge/auth/services/token-worker/internal/sms"
)

// kinds are the event types that make an email (events.ReaderEmail in the catalog)
// and the email each makes.
var kinds = map[string]mailer.Kind{
	events.SubjectVerificationRequested:  mailer.KindVerification,
	events.SubjectPasswordResetRequested: mailer.KindPasswordReset,
	events.SubjectRegisterExisting:       mailer.KindRegisterExisting,
	events.SubjectPasswordChanged:        mailer.KindPasswordChanged,
	events.SubjectEmailVerified:          mailer.KindEmailVerified,
	events.SubjectMFAEnabled:             mailer.KindMFAEnabled,
	events.SubjectMFADisabled:            mailer.KindMFADisabled,
	events.SubjectPasskeyAdded:           mailer.KindPasskeyAdded,
	events.SubjectPasskeyRemoved:         mailer.KindPasskeyRemoved,
	events.SubjectOTPRequested:           mailer.KindOTP,
	events.SubjectPhoneVerified:          mailer.KindPhoneVerified,
	// The token-worker's own event (its webhook dispatcher disables an endpoint), which
	// auth's relay publishes from the outbox.
	events.SubjectWebhookDisabled: mailer.KindWebhookDisabled,
}

// Types returns the event types that make an email, sorted.
func Types() []string { return slices.Sorted(maps.Keys(kinds)) }

// Paths of the web app that take a token (API.md, Emails).
var linkPaths = map[mailer.Kind]string{
	mailer.KindVerification:  "/verify-email",
	mailer.KindPasswordReset: "/reset-password",
	mailer.KindOTP:           "/magic-link",
}

// codeKinds are the emails that show a one-time code beside their link.
var codeKinds = map[mailer.Kind]bool{mailer.KindOTP: true}

// Outcomes of Handle that end the event (the consumer counts them).
const (
	OutcomeSent      = "sent"
	OutcomeDuplicate = "duplicate" // sent before: a redelivery
	OutcomeCapped    = "capped"    // over the per-address cap
	OutcomeExpired   = "expired"   // the link or code expired before it could be sent
	OutcomeIgnored   = "ignored"   // not an email event
)

// Ledger records emails so each is sent once.
type Ledger interface {
	Claim(ctx context.Context, c sentmail.Claim) (sentmail.Result, error)
	MarkSent(ctx context.Context, eventID string) error
	Release(ctx context.Context, eventID, attempt string) error
}

// Sender delivers an email.
type Sender interface {
	Send(ctx context.Context, e mailer.Email) error
}

// Opener opens sealed fields (the events keyring).
type Opener interface {
	Open(s keyring.Sealed, eventID string) ([]byte, error)
}

var (
	_ Ledger = (*sentmail.Ledger)(nil)
	_ Sender = (*mailer.Mailer)(nil)
	_ Opener = (*keyring.Keyring)(nil)
)

type options struct {
	cap int
	now func() time.Time
	log *zap.Logger
}

// Option configures a Service.
type Option func(*options)

// WithCap sets the most emails per address per hour (0: no cap).
func WithCap(n int) Option { return func(o *options) { o.cap = n } }

// WithClock sets the clock that decides whether a link has expired.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// Service is the email use case.
type Service struct {
	ledger Ledger
	sender Sender
	keys   Opener
	appURL string
	o      options
}

// New returns the service; appURL (APP_URL) is the only base of every link.
func New(ledger Ledger, sender Sender, keys Opener, appURL string, opts ...Option) *Service {
	o := options{now: time.Now, log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	return &Service{ledger: ledger, sender: sender, keys: keys, appURL: strings.TrimRight(appURL, "/"), o: o}
}

// Handle sends the email an event asks for, once. It returns the outcome, or an error
// classified for the consumer: retry.ErrPermanent for an event no retry can fix,
// retry.ErrUnavailable when the relay or the database is away, anything else for a
// failure retried a bounded number of times (a sealed token under an unknown key).
func (s *Service) Handle(ctx context.Context, ev events.Envelope) (string, error) {
	kind, ok := kinds[ev.Type]
	if !ok {
		return OutcomeIgnored, nil
	}
	email, outcome, err := s.compose(ev, kind)
	if err != nil || outcome != "" {
		return outcome, err
	}
	attempt := uuid.NewString()
	res, err := s.ledger.Claim(ctx, sentmail.Claim{EventID: ev.ID, Kind: string(kind), Recipient: email.To, Attempt: attempt, Cap: s.o.cap})
	if err != nil {
		return "", err
	}
	switch res {
	case sentmail.Done:
		return OutcomeDuplicate, nil
	case sentmail.Capped:
		s.o.log.Warn("email suppressed: the address reached its hourly cap",
			zap.String("event_id", ev.ID), zap.String("type", ev.Type), zap.Int("cap", s.o.cap))
		return OutcomeCapped, nil
	case sentmail.Busy:
		return "", retry.Unavailable(errors.New("another attempt is sending this email"))
	}
	if err := s.send(ctx, email, attempt); err != nil {
		return "", err
	}
	return OutcomeSent, nil
}

// compose makes the email of ev from its payload, or says why there is none: an
// outcome (a link already expired) or an error classified as Handle's.
func (s *Service) compose(ev events.Envelope, kind mailer.Kind) (mailer.Email, string, error) {
	decoded, err := ev.DecodePayload()
	if err != nil {
		return mailer.Email{}, "", retry.Permanent(err)
	}
	mailed, ok := decoded.(events.Mailed)
	if !ok {
		return mailer.Email{}, "", retry.Permanent(fmt.Errorf("%s: the payload is not an email's", ev.Type))
	}
	p := mailed.Mail()
	addr, err := mail.ParseAddress(p.Email)
	if err != nil || addr.Address != strings.TrimSpace(p.Email) {
		return mailer.Email{}, "", retry.Permanent(fmt.Errorf("%s: the payload has no valid email address", ev.Type))
	}
	data := mailer.Data{Name: cleanName(p.Name), AppURL: s.appURL, ExpiresAt: p.ExpiresAt, How: p.How, OccurredAt: ev.OccurredAt}
	if path, ok := linkPaths[kind]; ok {
		if !p.ExpiresAt.IsZero() && p.TokenSealed != nil && !s.o.now().Before(p.ExpiresAt) {
			// The link would not work: the user asks again and gets a fresh one.
			return mailer.Email{}, OutcomeExpired, nil
		}
		tok, err := s.openToken(ev, p)
		if err != nil {
			return mailer.Email{}, "", err
		}
		data.Link = s.appURL + path + "?token=" + url.QueryEscape(tok)
	}
	if codeKinds[kind] {
		if data.Code, err = s.openCode(ev, p); err != nil {
			return mailer.Email{}, "", err
		}
	}
	if kind == mailer.KindPhoneVerified {
		if data.Phone, err = maskPhone(ev.Type, p.Phone); err != nil {
			return mailer.Email{}, "", err
		}
		if p.PreviousPhone != "" {
			if data.PreviousPhone, err = maskPhone(ev.Type, p.PreviousPhone); err != nil {
				return mailer.Email{}, "", err
			}
		}
	}
	if kind == mailer.KindWebhookDisabled {
		w, ok := decoded.(*events.WebhookDisabled)
		if !ok {
			return mailer.Email{}, "", retry.Permanent(fmt.Errorf("%s: the payload is not a webhook's", ev.Type))
		}
		if _, err := uuid.Parse(w.WebhookID); err != nil || p.WebhookURL == "" {
			return mailer.Email{}, "", retry.Permanent(fmt.Errorf("%s: the payload names no webhook id and URL", ev.Type))
		}
		data.WebhookID, data.WebhookURL, data.LastError, data.FailingSince = w.WebhookID, oneLine(p.WebhookURL, 2048),
			oneLine(p.LastError, 200), w.FailingSince
	}
	return mailer.Email{ID: ev.ID, To: addr.Address, Kind: kind, Data: data}, "", nil
}

// oneLine keeps s fit for one line of an email: no control characters, at most n runes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	if r := []rune(strings.TrimSpace(s)); len(r) > n {
		s = string(r[:n])
	}
	return strings.TrimSpace(s)
}

// openToken opens the link token sealed in the payload.
func (s *Service) openToken(ev events.Envelope, p events.Mail) (string, error) {
	if p.TokenSealed == nil {
		return "", retry.Permanent(fmt.Errorf("%s: the payload has no token_sealed", ev.Type))
	}
	raw, err := s.keys.Open(*p.TokenSealed, ev.ID)
	if err != nil {
		// An unknown key may arrive with the next deploy: retried, then dead-lettered.
		return "", fmt.Errorf("open the token of %s %s: %w", ev.Type, ev.ID, err)
	}
	tok := string(raw)
	if tok == "" || strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", retry.Permanent(fmt.Errorf("%s: the opened token is not printable", ev.Type))
	}
	return tok, nil
}

// openCode opens the one-time code sealed in the payload, as openToken the token: only
// ASCII digits go into the email.
func (s *Service) openCode(ev events.Envelope, p events.Mail) (string, error) {
	if p.CodeSealed == nil {
		return "", retry.Permanent(fmt.Errorf("%s: the payload has no code_sealed", ev.Type))
	}
	raw, err := s.keys.Open(*p.CodeSealed, ev.ID)
	if err != nil {
		return "", fmt.Errorf("open the code of %s %s: %w", ev.Type, ev.ID, err)
	}
	code := string(raw)
	if !sms.Digits(code) {
		return "", retry.Permanent(fmt.Errorf("%s: the opened code is not 4 to 10 digits", ev.Type))
	}
	return code, nil
}

// maskPhone shows a number by its last two digits only ("+•••••••••67"): enough for
// the owner to recognise it, too little to give it away to whoever reads the mailbox.
func maskPhone(typ, phone string) (string, error) {
	if !sms.E164.MatchString(phone) {
		return "", retry.Permanent(fmt.Errorf("%s: a phone number of the payload is not E.164", typ))
	}
	digits := phone[1:]
	return "+" + strings.Repeat("•", len(digits)-2) + digits[len(digits)-2:], nil
}

// send hands the claimed email to the relay and records it in the ledger.
func (s *Service) send(ctx context.Context, email mailer.Email, attempt string) error {
	return sentmail.Deliver(ctx, s.ledger, email.ID, attempt, s.o.log, func(ctx context.Context) error {
		if err := s.sender.Send(ctx, email); err != nil {
			return fmt.Errorf("send %s email for %s: %w", email.Kind, email.ID, err)
		}
		return nil
	})
}

// cleanName keeps a name fit for a greeting: no control characters, at most 100 runes.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if r := []rune(name); len(r) > 100 {
		name = string(r[:100])
	}
	return name
}

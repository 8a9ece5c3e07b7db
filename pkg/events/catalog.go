package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"reflect"
	"slices"
	"time"
)

// The services that publish events (Spec.Publishers).
const (
	PublisherAuth  = "auth"
	PublisherOAuth = "oauth"
	// PublisherTokenWorker writes its own events (a webhook it disabled) to the outbox,
	// which auth's relay publishes.
	PublisherTokenWorker = "token-worker"
)

// The token-worker's readers of events (Spec.Readers).
const (
	// ReaderEmail sends one email per event (services/token-worker/internal/notify).
	ReaderEmail = "email"
	// ReaderAudit writes every event to the audit log (internal/audit).
	ReaderAudit = "audit"
	// ReaderSMS sends one SMS per event (services/token-worker/internal/sms).
	ReaderSMS = "sms"
)

// Spec is one event type: its subject, its payload struct, who publishes it and who
// reads it. docs/events.md documents the same, and a test holds the two together.
type Spec struct {
	Subject string
	// Payload is the payload's struct type (not a pointer).
	Payload reflect.Type
	// Publishers are the services that write it (PublisherAuth, PublisherOAuth).
	Publishers []string
	// Readers are the token-worker consumers that act on it (ReaderEmail, ReaderAudit).
	Readers []string
}

// New returns a pointer to a new zero payload of the spec's type.
func (s Spec) New() any { return reflect.New(s.Payload).Interface() }

// Publishes reports whether service publishes the event.
func (s Spec) Publishes(service string) bool { return slices.Contains(s.Publishers, service) }

// ReadBy reports whether the worker's reader acts on the event.
func (s Spec) ReadBy(reader string) bool { return slices.Contains(s.Readers, reader) }

func spec[P any](subject string, publishers []string, readers ...string) Spec {
	return Spec{Subject: subject, Payload: reflect.TypeFor[P](), Publishers: publishers,
		Readers: append([]string{ReaderAudit}, readers...)}
}

var (
	byAuth     = []string{PublisherAuth}
	byOAuth    = []string{PublisherOAuth}
	byBoth     = []string{PublisherAuth, PublisherOAuth}
	byWorker   = []string{PublisherTokenWorker}
	catalog    = buildCatalog()
	bySubjects = indexCatalog(catalog)
)

// buildCatalog lists every event type, in the order of docs/events.md.
func buildCatalog() []Spec {
	return []Spec{
		spec[VerificationRequested](SubjectVerificationRequested, byBoth, ReaderEmail),
		spec[PasswordResetRequested](SubjectPasswordResetRequested, byAuth, ReaderEmail),
		spec[RegisterExisting](SubjectRegisterExisting, byBoth, ReaderEmail),
		spec[OTPRequested](SubjectOTPRequested, byAuth, ReaderEmail),
		spec[SMSCodeRequested](SubjectSMSCodeRequested, byAuth, ReaderSMS),

		spec[Registered](SubjectRegistered, byBoth),
		spec[EmailVerified](SubjectEmailVerified, byAuth, ReaderEmail),
		spec[PasswordChanged](SubjectPasswordChanged, byAuth, ReaderEmail),
		spec[LoginSucceeded](SubjectLoginSucceeded, byAuth),
		spec[LoginFailed](SubjectLoginFailed, byAuth),
		spec[MFAEnabled](SubjectMFAEnabled, byAuth, ReaderEmail),
		spec[MFADisabled](SubjectMFADisabled, byAuth, ReaderEmail),
		spec[PasskeyAdded](SubjectPasskeyAdded, byAuth, ReaderEmail),
		spec[PasskeyRemoved](SubjectPasskeyRemoved, byAuth, ReaderEmail),
		spec[PhoneVerified](SubjectPhoneVerified, byAuth, ReaderEmail),

		spec[SignedIn](SubjectSignedIn, byOAuth),
		// auth writes the identity events too, when proving an address links or
		// unlinks an identity.
		spec[IdentityLinked](SubjectIdentityLinked, byBoth),
		spec[IdentityUnlinked](SubjectIdentityUnlinked, byBoth),
		spec[UnverifiedAccountReplaced](SubjectUnverifiedAccountReplaced, byOAuth),

		spec[RefreshReused](SubjectRefreshReused, byAuth),
		spec[LoggedOut](SubjectLoggedOut, byAuth),
		spec[LoggedOutAll](SubjectLoggedOutAll, byAuth),

		spec[UserRolesSet](SubjectUserRolesSet, byAuth),
		spec[UserDisabled](SubjectUserDisabled, byAuth),
		spec[UserEnabled](SubjectUserEnabled, byAuth),
		spec[RoleCreated](SubjectRoleCreated, byAuth),
		spec[RoleDeleted](SubjectRoleDeleted, byAuth),
		spec[WebhookCreated](SubjectWebhookCreated, byAuth),
		spec[WebhookDeleted](SubjectWebhookDeleted, byAuth),
		spec[WebhookSecretRotated](SubjectWebhookSecretRotated, byAuth),
		spec[WebhookEnabled](SubjectWebhookEnabled, byAuth),
		spec[FlagChanged](SubjectFlagChanged, byAuth),

		spec[WebhookDisabled](SubjectWebhookDisabled, byWorker, ReaderEmail),
	}
}

func indexCatalog(specs []Spec) map[string]Spec {
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		if _, dup := m[s.Subject]; dup {
			panic("events: subject " + s.Subject + " is in the catalog twice")
		}
		m[s.Subject] = s
	}
	return m
}

// Catalog returns every event type (a copy: changing it changes nothing).
func Catalog() []Spec {
	out := make([]Spec, len(catalog))
	for i, s := range catalog {
		s.Publishers = append([]string(nil), s.Publishers...)
		s.Readers = append([]string(nil), s.Readers...)
		out[i] = s
	}
	return out
}

// Lookup returns the spec of an event type (a subject without namespace).
func Lookup(subject string) (Spec, bool) {
	s, ok := bySubjects[subject]
	return s, ok
}

// ErrUnknownType is returned by DecodePayload for a type the catalog lacks.
var ErrUnknownType = errors.New("events: unknown event type")

// DecodePayload decodes the envelope's payload into its type's struct and returns a
// pointer to it (e.g. *VerificationRequested); a sealed token stays sealed in its
// TokenSealed field. Unknown fields are ignored.
func (e Envelope) DecodePayload() (any, error) {
	s, ok := Lookup(e.Type)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, e.Type)
	}
	p := s.New()
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return nil, fmt.Errorf("events: decode %s payload: %w", e.Type, err)
	}
	return p, nil
}

// Mail is what an emailed event (ReaderEmail) tells the mailer.
type Mail struct {
	UserID, Email, Name string
	// TokenSealed is the link's token, in the events whose email has a link.
	TokenSealed *keyring.Sealed
	// CodeSealed is the one-time code, in the events whose email has one.
	CodeSealed *keyring.Sealed
	// ExpiresAt is when the link stops working (zero without a link).
	ExpiresAt time.Time
	// How says how the password changed (PasswordChanged).
	How string
	// Phone is the number set, PreviousPhone the one it replaced (PhoneVerified).
	Phone, PreviousPhone string
	// WebhookURL is the endpoint disabled (WebhookDisabled), LastError its last failure.
	WebhookURL, LastError string
}

// Mailed is the payload of an event the token-worker mails: every catalog entry read
// by ReaderEmail, and no other.
type Mailed interface {
	Mail() Mail
}

// Mail implements Mailed.
func (p VerificationRequested) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, TokenSealed: p.TokenSealed, ExpiresAt: p.ExpiresAt}
}

// Mail implements Mailed.
func (p PasswordResetRequested) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, TokenSealed: p.TokenSealed, ExpiresAt: p.ExpiresAt}
}

// Mail implements Mailed.
func (p RegisterExisting) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p EmailVerified) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p PasswordChanged) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, How: p.How}
}

// Mail implements Mailed.
func (p MFAEnabled) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p MFADisabled) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p PasskeyAdded) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p PasskeyRemoved) Mail() Mail { return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name} }

// Mail implements Mailed.
func (p OTPRequested) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, TokenSealed: p.TokenSealed, CodeSealed: p.CodeSealed,
		ExpiresAt: p.ExpiresAt}
}

// Mail implements Mailed.
func (p WebhookDisabled) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, WebhookURL: p.URL, LastError: p.LastError}
}

// Mail implements Mailed.
func (p PhoneVerified) Mail() Mail {
	return Mail{UserID: p.UserID, Email: p.Email, Name: p.Name, Phone: p.Phone, PreviousPhone: p.PreviousPhone}
}

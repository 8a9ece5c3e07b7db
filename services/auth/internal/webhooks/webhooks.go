// Package webhooks holds the admin use cases of webhook endpoints: add one (its secret
// shown once, stored sealed), list, delete, rotate the secret with an overlap, enable
// one the token-worker disabled, and list its deliveries. The token-worker delivers
// (services/token-worker/internal/webhooks); both meet in the webhook_endpoints and
// webhook_deliveries tables. Every change is an audit event, in its transaction.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
)

// Limits of what an admin may configure.
const (
	// MaxEndpoints bounds the live endpoints: each event costs the worker a delivery
	// row per subscribed endpoint.
	MaxEndpoints   = 100
	maxDescription = 500
	// RotationOverlap is how long the previous secret still signs after a rotation, so
	// receivers can switch to the new one without dropping a delivery.
	RotationOverlap = 24 * time.Hour
)

// Errors the HTTP layer maps to codes.
var (
	ErrInvalidURL         = errors.New("invalid webhook url")
	ErrUnknownEvent       = errors.New("unknown event type")
	ErrInvalidDescription = errors.New("invalid description")
	ErrTooManyEndpoints   = errors.New("too many webhook endpoints")
)

// Endpoint is a webhook endpoint as admins see it (never its secret).
type Endpoint struct {
	ID          string
	URL         string
	Events      []string
	Description string
	CreatedAt   time.Time
	// DisabledAt is when the token-worker disabled it for failing; FailingSince the
	// first failure since its last success; LastError the last failure.
	DisabledAt, FailingSince *time.Time
	LastError                string
	// PreviousExpiresAt is when the secret before the last rotation stops signing.
	PreviousExpiresAt *time.Time
}

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	ID, EventID, EventType string
	// Status is pending, succeeded, dead (every attempt failed, or the endpoint was
	// disabled: dead-lettered) or cancelled (the endpoint was deleted).
	Status         string
	Attempts       int
	LastStatusCode *int
	LastError      string
	// NextAttemptAt is when a pending delivery is tried next (nil otherwise).
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	FinishedAt    *time.Time
}

// Store is what the use cases need from PostgreSQL. Each write records its event in
// the same transaction; account.ErrNotFound names no live endpoint.
type Store interface {
	// Create inserts e with its sealed secret; ErrTooManyEndpoints past max live ones.
	Create(ctx context.Context, e Endpoint, secret json.RawMessage, max int, ev account.Event) (Endpoint, error)
	List(ctx context.Context) ([]Endpoint, error)
	// Delete marks the endpoint deleted and cancels its pending deliveries; ev is made
	// from the endpoint deleted.
	Delete(ctx context.Context, id string, ev func(Endpoint) account.Event) error
	// Rotate makes secret the signing one and the current one the previous, signing
	// too until expires.
	Rotate(ctx context.Context, id string, secret json.RawMessage, expires time.Time, ev account.Event) (Endpoint, error)
	// Enable clears disabled_at and failing_since.
	Enable(ctx context.Context, id string, ev account.Event) (Endpoint, error)
	Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error)
}

// Service implements the use cases.
type Service struct {
	store  Store
	keys   *keyring.Keyring
	policy webhook.Policy
}

// New returns the use cases; keys (EVENT_KEYS, which the token-worker has too) seal
// the secrets; policy is the URL policy (WEBHOOK_ALLOW_PRIVATE_NETWORKS).
func New(store Store, keys *keyring.Keyring, policy webhook.Policy) *Service {
	return &Service{store: store, keys: keys, policy: policy}
}

// Created is a new endpoint and its secret, shown only in this answer.
type Created struct {
	Endpoint
	Secret string
}

// Create adds an endpoint for the event types named; the URL is checked (and
// resolved) under the policy.
func (s *Service) Create(ctx context.Context, actor account.Principal, rawURL string, types []string, description string) (Created, error) {
	u, err := s.policy.CheckURL(ctx, strings.TrimSpace(rawURL))
	if err != nil {
		return Created{}, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	set, err := eventTypes(types)
	if err != nil {
		return Created{}, err
	}
	description = strings.TrimSpace(description)
	if len([]rune(description)) > maxDescription || strings.IndexFunc(description, unicode.IsControl) >= 0 {
		return Created{}, ErrInvalidDescription
	}
	id := uuid.Must(uuid.NewV7()).String()
	secret := webhook.NewSecret()
	sealed, err := s.seal(id, secret)
	if err != nil {
		return Created{}, err
	}
	e, err := s.store.Create(ctx, Endpoint{ID: id, URL: u.String(), Events: set, Description: description}, sealed, MaxEndpoints,
		admin.Audit(events.SubjectWebhookCreated, events.WebhookCreated{WebhookID: id, URL: u.String(), Events: set, Actor: admin.ActorOf(actor)}))
	if err != nil {
		return Created{}, err
	}
	return Created{Endpoint: e, Secret: secret}, nil
}

// eventTypes checks that every type is in the event catalog and returns them sorted,
// without duplicates.
func eventTypes(types []string) ([]string, error) {
	if len(types) == 0 {
		return nil, ErrUnknownEvent
	}
	set := make([]string, 0, len(types))
	for _, t := range types {
		if _, ok := events.Lookup(t); !ok {
			return nil, ErrUnknownEvent
		}
		set = append(set, t)
	}
	slices.Sort(set)
	return slices.Compact(set), nil
}

func (s *Service) seal(id, secret string) (json.RawMessage, error) {
	sealed, err := s.keys.Seal([]byte(secret), id)
	if err != nil {
		return nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return json.Marshal(sealed)
}

// List returns the live endpoints, oldest first.
func (s *Service) List(ctx context.Context) ([]Endpoint, error) { return s.store.List(ctx) }

// Delete removes an endpoint: nothing more is delivered to it, pending deliveries
// included.
func (s *Service) Delete(ctx context.Context, actor account.Principal, id string) error {
	if !validID(id) {
		return account.ErrNotFound
	}
	return s.store.Delete(ctx, id, func(e Endpoint) account.Event {
		return admin.Audit(events.SubjectWebhookDeleted, events.WebhookDeleted{WebhookID: e.ID, URL: e.URL, Actor: admin.ActorOf(actor)})
	})
}

// Rotate gives the endpoint a new secret, returned once; the old one signs too for
// RotationOverlap (both signatures sent, space-separated).
func (s *Service) Rotate(ctx context.Context, actor account.Principal, id string) (Created, error) {
	if !validID(id) {
		return Created{}, account.ErrNotFound
	}
	secret := webhook.NewSecret()
	sealed, err := s.seal(id, secret)
	if err != nil {
		return Created{}, err
	}
	expires := time.Now().Add(RotationOverlap).UTC()
	e, err := s.store.Rotate(ctx, id, sealed, expires, admin.Audit(events.SubjectWebhookSecretRotated,
		events.WebhookSecretRotated{WebhookID: id, PreviousExpiresAt: expires, Actor: admin.ActorOf(actor)}))
	if err != nil {
		return Created{}, err
	}
	return Created{Endpoint: e, Secret: secret}, nil
}

// Enable lets a disabled endpoint receive events again (those from now on; what was
// dead-lettered stays in AUTH_DEADLETTER).
func (s *Service) Enable(ctx context.Context, actor account.Principal, id string) (Endpoint, error) {
	if !validID(id) {
		return Endpoint{}, account.ErrNotFound
	}
	return s.store.Enable(ctx, id, admin.Audit(events.SubjectWebhookEnabled, events.WebhookEnabled{WebhookID: id, Actor: admin.ActorOf(actor)}))
}

// Deliveries lists an endpoint's newest deliveries (limit 0: the default, 50).
func (s *Service) Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	limit, err := admin.PageSize(limit)
	if err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, account.ErrNotFound
	}
	return s.store.Deliveries(ctx, id, limit)
}

func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

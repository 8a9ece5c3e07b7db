// Package signin holds the oauth service's use cases: starting and finishing a social
// sign-in, choosing the account an identity signs in to, linking and unlinking, and
// turning a one-time code into the same session and tokens that auth issues.
package signin

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/redirect"
	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/providers"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

// Errors answered as HTTP errors (the rest become a redirect with ?error=).
var (
	ErrUnknownProvider = errors.New("unknown provider")
	ErrInvalidRedirect = errors.New("invalid redirect")
	ErrInvalidState    = errors.New("invalid state")
	ErrInvalidCode     = errors.New("invalid code")
	ErrUnauthorized    = accounts.ErrUnauthenticated
	ErrAccountDisabled = accounts.ErrAccountDisabled
	ErrIdentityTaken   = store.ErrIdentityTaken
	ErrLastLoginMethod = store.ErrLastLoginMethod
	ErrNotFound        = store.ErrNotFound
)

// Callback error codes, sent back to the app as ?error=.
const (
	CodeAccessDenied        = "access_denied"        // the person declined at the provider
	CodeProviderError       = "provider_error"       // the provider answered an error
	CodeProviderUnavailable = "provider_unavailable" // timeout, 5xx or open breaker
	CodeInvalidState        = "invalid_state"        // state of another provider
	CodeBrowserMismatch     = "browser_mismatch"     // the callback reached another browser
	CodeInvalidRequest      = "invalid_request"      // no code
	CodeExchangeFailed      = "exchange_failed"      // the provider refused the code (PKCE, reuse, injection)
	CodeInvalidIDToken      = "invalid_id_token"     // signature, issuer, audience, expiry or nonce
	CodeEmailTaken          = "email_taken"          // the address has an account: sign in and link
	// CodeEmailNotVerified: verification is required and the provider did not vouch for
	// the address; we emailed it (a link that proves it, or a notice to its owner).
	CodeEmailNotVerified = "email_not_verified"
	CodeEmailRequired    = "email_required" // the provider gave no address
	CodeIdentityTaken    = "identity_taken" // linked to another account
	CodeAccountDisabled  = "account_disabled"
	CodeSessionEnded     = "session_ended"
	CodeServerError      = "server_error"
)

// Client is who made the request.
type Client struct{ IP, UserAgent string }

// Config holds the settings the use cases obey.
type Config struct {
	// RedirectAllowlist: prefixes (scheme, host, path) a redirect_to must start with.
	RedirectAllowlist []string
	AdminEmails       accounts.Admins
	// EmailVerificationRequired (EMAIL_VERIFICATION_REQUIRED): an address the provider
	// does not vouch for signs in only once our own email proved it.
	EmailVerificationRequired bool
	VerificationTTL           time.Duration // of the proving link; 24h as auth's
}

// Budget is the per-address email budget shared with auth (ratelimit.Guard).
type Budget interface {
	Allow(ctx context.Context, purpose, key string) (ratelimit.Decision, error)
}

// Metrics counts outcomes; nil-safe.
type Metrics interface {
	SignIn(provider, result string)
	ProviderError(provider, reason string)
}

// Service is the use cases.
type Service struct {
	providers map[string]*providers.Provider
	order     []*providers.Provider
	flow      *flow.Store
	store     *store.Store
	core      *accounts.Sessions
	cfg       Config
	allow     redirect.Allowlist
	metrics   Metrics
	budget    Budget
	log       *zap.Logger
}

// New returns the service; the allowlist's entries must be absolute http(s) URLs.
func New(ps []*providers.Provider, fl *flow.Store, st *store.Store, core *accounts.Sessions, cfg Config, m Metrics,
	budget Budget, log *zap.Logger) (*Service, error) {
	if cfg.VerificationTTL <= 0 {
		cfg.VerificationTTL = 24 * time.Hour
	}
	s := &Service{providers: map[string]*providers.Provider{}, order: ps, flow: fl, store: st, core: core,
		cfg: cfg, metrics: m, budget: budget, log: log}
	for _, p := range ps {
		s.providers[p.Name] = p
	}
	var err error
	if s.allow, err = redirect.Parse(cfg.RedirectAllowlist); err != nil {
		return nil, err
	}
	return s, nil
}

// Providers lists the configured providers.
func (s *Service) Providers() []*providers.Provider { return s.order }

// Principal is the caller of a Bearer route (the account core's).
type Principal = accounts.Principal

// Authenticate checks an access token the way auth does (the account core's check):
// signature and claims, a live session, an enabled account.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	return s.core.Authenticate(ctx, raw)
}

func (s *Service) providerError(provider string, err error) {
	reason := "unavailable"
	switch {
	case errors.Is(err, providers.ErrRejected):
		reason = "rejected"
	case errors.Is(err, providers.ErrInvalidIDToken):
		reason = "invalid_id_token"
	}
	s.metricsProviderError(provider, reason)
	s.log.Warn("oauth provider", zap.String("provider", provider), zap.String("reason", reason), zap.Error(err))
}

func (s *Service) metricsProviderError(provider, reason string) {
	if s.metrics != nil {
		s.metrics.ProviderError(provider, reason)
	}
}

func (s *Service) count(provider, result string) {
	if s.metrics != nil {
		s.metrics.SignIn(provider, result)
	}
}

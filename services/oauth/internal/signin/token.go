package signin

import (
	"context"
	"errors"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

// Pair is a token pair, or the MFA token of an account with MFA on, as auth's login
// answers it (the account core's).
type Pair = accounts.Pair

// Token exchanges a one-time code for a session and its tokens (amr "oauth").
func (s *Service) Token(ctx context.Context, code string) (Pair, error) {
	if len(code) != 43 {
		return Pair{}, ErrInvalidCode
	}
	rec, err := s.flow.TakeCode(ctx, code)
	if errors.Is(err, flow.ErrNotFound) {
		return Pair{}, ErrInvalidCode
	}
	if err != nil {
		return Pair{}, err
	}
	// The identity must still sign in to the account (proving the address at auth
	// may have unlinked it since the code was issued).
	u, err := s.store.UserByIdentity(ctx, rec.Provider, rec.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != rec.UserID) {
		return Pair{}, ErrInvalidCode
	}
	if err != nil {
		return Pair{}, err
	}
	if u.DisabledAt != nil {
		return Pair{}, ErrAccountDisabled
	}
	if s.cfg.EmailVerificationRequired && !u.Verified() {
		return Pair{}, ErrInvalidCode
	}
	// A provider's sign-in is one factor: an account with MFA on is entered only with
	// its second, at auth's /v1/auth/login/mfa (amr then oauth + otp).
	pair, err := s.core.SignIn(ctx, u, []string{"oauth"}, session.Meta{IP: rec.IP, UserAgent: rec.UserAgent})
	if err == nil && pair.MFARequired {
		// A failure to read them only leaves them out of the answer.
		pair.MFAFactors, _ = s.store.SecondFactors(ctx, u.ID)
	}
	return pair, err
}

// Identities lists the caller's identities.
func (s *Service) Identities(ctx context.Context, p Principal) ([]store.Identity, error) {
	return s.store.Identities(ctx, p.UserID)
}

// Unlink removes the caller's identity of provider, unless it is their last way in.
func (s *Service) Unlink(ctx context.Context, p Principal, provider string, c Client) error {
	return s.store.Unlink(ctx, p.UserID, provider, events.Event{Subject: events.SubjectIdentityUnlinked,
		Payload: events.IdentityUnlinked{Provider: provider, SessionID: p.SessionID, Client: &events.Client{IP: c.IP, UserAgent: c.UserAgent}}})
}

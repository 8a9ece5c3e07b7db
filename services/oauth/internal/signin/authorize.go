package signin

import (
	"context"
	"slices"

	"golang.org/x/oauth2"

	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/providers"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

// Started is an authorization request: where to send the browser and the cookie that
// binds the flow to it.
type Started struct {
	URL     string
	Binding string
	// Failed is set when the provider cannot be reached: the URL is then redirect_to
	// with ?error=, not the provider.
	Failed bool
}

// Authorize starts a sign-in (link nil) or a link of the caller's account.
func (s *Service) Authorize(ctx context.Context, providerName, redirectTo string, link *Principal) (Started, error) {
	p, ok := s.providers[providerName]
	if !ok {
		return Started{}, ErrUnknownProvider
	}
	if !s.allow.Allows(redirectTo) {
		return Started{}, ErrInvalidRedirect
	}
	st := flow.State{Provider: p.Name, Verifier: oauth2.GenerateVerifier(), Nonce: flow.Random(), RedirectTo: redirectTo}
	state, binding := flow.Random(), flow.Random()
	st.Binding = flow.Hash(binding)
	if link != nil {
		st.LinkUserID, st.LinkSessionID = link.UserID, link.SessionID
	}
	to, err := p.AuthCodeURL(ctx, state, st.Verifier, st.Nonce)
	if err != nil {
		s.providerError(p.Name, err)
		return Started{URL: withParam(redirectTo, "error", CodeProviderUnavailable), Failed: true}, nil
	}
	if err := s.flow.PutState(ctx, state, st); err != nil {
		return Started{}, err
	}
	return Started{URL: to, Binding: binding}, nil
}

// StartLink starts linking a provider to the caller's account; ErrIdentityTaken when
// the account already has an identity of that provider.
func (s *Service) StartLink(ctx context.Context, p Principal, providerName, redirectTo string) (Started, error) {
	if _, ok := s.providers[providerName]; !ok {
		return Started{}, ErrUnknownProvider
	}
	if redirectTo == "" && len(s.cfg.RedirectAllowlist) > 0 {
		redirectTo = s.cfg.RedirectAllowlist[0]
	}
	ids, err := s.store.Identities(ctx, p.UserID)
	if err != nil {
		return Started{}, err
	}
	if slices.ContainsFunc(ids, func(id store.Identity) bool { return id.Provider == providerName }) {
		return Started{}, ErrIdentityTaken
	}
	st, err := s.Authorize(ctx, providerName, redirectTo, &p)
	if err == nil && st.Failed {
		return Started{}, providers.ErrUnavailable
	}
	return st, err
}

package signin

import (
	"context"
	"errors"
	"net/url"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/providers"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

// Callback finishes the flow that state started and returns where to send the
// browser: redirect_to with ?code= (sign-in), ?linked= (link) or ?error=. Only an
// unknown state is an error (ErrInvalidState): without it there is nowhere safe to go.
func (s *Service) Callback(ctx context.Context, providerName string, q url.Values, binding string, c Client) (string, error) {
	raw := q.Get("state")
	if raw == "" || len(raw) > 128 {
		return "", ErrInvalidState
	}
	st, err := s.flow.TakeState(ctx, raw) // single use, even when what follows fails
	if errors.Is(err, flow.ErrNotFound) {
		return "", ErrInvalidState
	}
	if err != nil {
		return "", err
	}
	fail := func(code string) (string, error) {
		s.count(st.Provider, code) // the state's provider: the path's is the caller's to choose
		return withParam(st.RedirectTo, "error", code), nil
	}
	p, code := s.checkCallback(st, providerName, q, binding)
	if code != "" {
		return fail(code)
	}
	ident, code := s.exchange(ctx, p, st, q.Get("code"))
	if code != "" {
		return fail(code)
	}
	if st.LinkUserID != "" {
		return s.finishLink(ctx, st, ident, c, fail)
	}
	u, err := s.resolve(ctx, ident, c)
	if code := signInCode(err, u); code != "" {
		if code == CodeServerError {
			s.log.Error("oauth sign-in", zap.String("provider", providerName), zap.Error(err))
		}
		return fail(code)
	}
	code = flow.Random()
	if err := s.flow.PutCode(ctx, code, flow.Code{UserID: u.ID, Provider: p.Name, Subject: ident.Subject,
		IP: c.IP, UserAgent: c.UserAgent}); err != nil {
		s.log.Error("store one-time code", zap.Error(err))
		return fail(CodeServerError)
	}
	s.count(p.Name, "success")
	return withParam(st.RedirectTo, "code", code), nil
}

// checkCallback checks the callback against its state: the provider, the browser's
// binding and the provider's answer. It returns the provider, or the ?error= code.
func (s *Service) checkCallback(st flow.State, providerName string, q url.Values, binding string) (*providers.Provider, string) {
	p, ok := s.providers[providerName]
	switch {
	case !ok || st.Provider != providerName:
		return nil, CodeInvalidState
	case !st.BoundTo(binding):
		return nil, CodeBrowserMismatch
	case q.Get("error") == "access_denied":
		return nil, CodeAccessDenied
	case q.Get("error") != "":
		s.metricsProviderError(p.Name, "authorize_error")
		return nil, CodeProviderError
	case q.Get("code") == "" || len(q.Get("code")) > 2048:
		return nil, CodeInvalidRequest
	}
	return p, ""
}

// exchange redeems the provider's code for the identity it proves (its address
// normalised, or none), or returns the ?error= code.
func (s *Service) exchange(ctx context.Context, p *providers.Provider, st flow.State, code string) (store.Identity, string) {
	id, err := p.Exchange(ctx, code, st.Verifier, st.Nonce)
	if err != nil {
		s.providerError(p.Name, err)
		switch {
		case errors.Is(err, providers.ErrRejected):
			return store.Identity{}, CodeExchangeFailed
		case errors.Is(err, providers.ErrInvalidIDToken):
			return store.Identity{}, CodeInvalidIDToken
		default:
			return store.Identity{}, CodeProviderUnavailable
		}
	}
	ident := store.Identity{Provider: id.Provider, Subject: id.Subject, Name: id.Name}
	if e, err := emailaddr.Normalize(id.Email); err == nil {
		ident.Email, ident.EmailVerified = e, id.EmailVerified
	}
	return ident, ""
}

// signInCode is the ?error= code of resolve's answer ("" when u may sign in).
func signInCode(err error, u store.User) string {
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return CodeEmailTaken
	case errors.Is(err, errUnproven):
		return CodeEmailNotVerified
	case errors.Is(err, errNoEmail):
		return CodeEmailRequired
	case errors.Is(err, store.ErrIdentityTaken):
		return CodeIdentityTaken
	case err != nil:
		return CodeServerError
	case u.DisabledAt != nil:
		return CodeAccountDisabled
	}
	return ""
}

func (s *Service) finishLink(ctx context.Context, st flow.State, id store.Identity, c Client, fail func(string) (string, error)) (string, error) {
	// The session that asked may have ended since: linking needs it alive.
	if _, err := s.core.Store().Get(ctx, st.LinkUserID, st.LinkSessionID); err != nil {
		return fail(CodeSessionEnded)
	}
	id.UserID = st.LinkUserID
	err := s.store.Link(ctx, id, events.Event{Subject: events.SubjectIdentityLinked, Payload: events.IdentityLinked{
		Provider: id.Provider, Subject: id.Subject, How: "signed_in_user", SessionID: st.LinkSessionID,
		Client: &events.Client{IP: c.IP, UserAgent: c.UserAgent}}})
	switch {
	case errors.Is(err, store.ErrIdentityTaken):
		return fail(CodeIdentityTaken)
	case err != nil:
		s.log.Error("oauth link", zap.Error(err))
		return fail(CodeServerError)
	}
	s.count(id.Provider, "linked")
	return withParam(st.RedirectTo, "linked", id.Provider), nil
}

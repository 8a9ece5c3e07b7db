package signin

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

var (
	errNoEmail = errors.New("no email")
	// errUnproven: verification is required and the address is not proven yet; the
	// answer is the same whether or not the address has an account.
	errUnproven = errors.New("address not proven")
)

// resolve picks the account the identity signs in to:
//   - the identity's own account when it is linked;
//   - else, for a provider-verified address: the verified account of that address
//     (the identity is linked to it), or, when that account never verified its
//     address, a fresh account in its place (pre-hijack: whoever registered the
//     address without proving it keeps nothing, password included);
//   - else, with EMAIL_VERIFICATION_REQUIRED, no account and no session until our own
//     email proves the address (proveAddress): errUnproven, whatever the address has;
//   - else a new account (unverified unless the provider verified it), or
//     ErrEmailTaken when the address has an account: the owner must sign in and link.
//
// An identity linked to an account whose address is unproven signs in only when
// verification is not required, and proving the address (at auth) unlinks it.
func (s *Service) resolve(ctx context.Context, id store.Identity, c Client) (store.User, error) {
	for attempt := 0; ; attempt++ {
		u, err := s.resolveOnce(ctx, id, c)
		var r raced
		if errors.As(err, &r) {
			if attempt < 2 {
				continue // a concurrent sign-in or registration changed the picture: decide again
			}
			err = r.final
		}
		return u, err
	}
}

// raced is a decision that a concurrent change overtook: resolve decides again, and
// answers final when it has tried enough.
type raced struct{ final error }

func (r raced) Error() string { return "raced: " + r.final.Error() }

func (s *Service) resolveOnce(ctx context.Context, id store.Identity, c Client) (store.User, error) {
	u, err := s.store.UserByIdentity(ctx, id.Provider, id.Subject)
	if err == nil {
		if s.cfg.EmailVerificationRequired && !u.Verified() {
			return store.User{}, errUnproven
		}
		id.UserID = u.ID
		return u, s.store.SignedIn(ctx, id, signedIn(id, c, "identity"))
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if id.Email == "" {
		return store.User{}, errNoEmail
	}
	nu := store.NewUser{Email: id.Email, Name: clip(id.Name, 200), Verified: id.EmailVerified,
		Roles: s.cfg.AdminEmails.Roles(id.Email, id.EmailVerified)}
	existing, err := s.store.UserByEmail(ctx, id.Email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	var owner *store.User
	if err == nil {
		owner = &existing
	}
	if !id.EmailVerified && s.cfg.EmailVerificationRequired {
		err := s.proveAddress(ctx, owner, nu, id, c)
		if errors.Is(err, store.ErrChanged) || errors.Is(err, store.ErrEmailTaken) {
			return store.User{}, raced{final: errUnproven} // created or verified meanwhile
		}
		if err == nil {
			err = errUnproven
		}
		return store.User{}, err
	}
	u, err = s.join(ctx, owner, nu, id, c)
	if errors.Is(err, store.ErrChanged) || errors.Is(err, store.ErrEmailTaken) || errors.Is(err, store.ErrIdentityTaken) {
		return u, raced{final: err}
	}
	return u, err
}

// join signs the identity in to the account of its address, owner (nil: none): a new
// account; for a provider-verified address the verified owner's account (linked) or a
// fresh one in place of an owner that never proved the address; else ErrEmailTaken.
func (s *Service) join(ctx context.Context, owner *store.User, nu store.NewUser, id store.Identity, c Client) (store.User, error) {
	switch {
	case owner == nil:
		return s.store.CreateUser(ctx, nu, id,
			events.Event{Subject: events.SubjectRegistered, Payload: events.Registered{Method: "oauth",
				Provider: id.Provider, IP: c.IP, UserAgent: c.UserAgent}},
			signedIn(id, c, "new_account"))
	case !id.EmailVerified:
		return store.User{}, store.ErrEmailTaken
	case owner.Verified():
		id.UserID = owner.ID
		err := s.store.Link(ctx, id,
			events.Event{Subject: events.SubjectIdentityLinked, Payload: events.IdentityLinked{Provider: id.Provider,
				Subject: id.Subject, How: "verified_email", Client: &events.Client{IP: c.IP, UserAgent: c.UserAgent}}},
			signedIn(id, c, "verified_email"))
		return *owner, err
	}
	// The old account's sessions end in the transaction and again after the commit.
	// Neither is what stops its tokens: the store removes the account from auth's cache
	// too, so auth and this service answer them "user not found" even if Redis failed
	// both revocations (logged, not fatal).
	revoke := func(ctx context.Context) {
		if _, err := s.core.Store().RevokeAll(ctx, owner.ID, ""); err != nil {
			s.log.Error("revoke replaced account's sessions", zap.String("user_id", owner.ID), zap.Error(err))
		}
	}
	u, err := s.store.ReplaceUnverified(ctx, owner.ID, nu, id,
		func(ctx context.Context) error { revoke(ctx); return nil },
		events.Event{Subject: events.SubjectUnverifiedAccountReplaced, Payload: events.UnverifiedAccountReplaced{
			ReplacedUserID: owner.ID, Provider: id.Provider, IP: c.IP, UserAgent: c.UserAgent}},
		signedIn(id, c, "replaced_unverified"))
	if err == nil {
		revoke(ctx)
	}
	return u, err
}

func signedIn(id store.Identity, c Client, how string) events.Event {
	return events.Event{Subject: events.SubjectSignedIn, Payload: events.SignedIn{Provider: id.Provider,
		Subject: id.Subject, How: how, IP: c.IP, UserAgent: c.UserAgent}}
}

// proveAddress answers a sign-in whose provider did not vouch for the address, when
// verification is required, the way auth's sign-up answers a register: nothing that
// tells a stranger whether the address has an account, and an email to the address.
//   - No account: an unverified one with nothing linked, and a verification email whose
//     link proves the address and links this identity (a password sign-up's link does
//     the same for its password).
//   - An unverified account: a new such link (the account has proven nothing either).
//   - A verified account: a notice to its owner; nothing is linked (sign in and link).
//
// Emails spend the address's budget (RATE_LIMIT_EMAILS_PER_ADDRESS, shared with auth);
// a spent budget sends nothing and answers the same.
func (s *Service) proveAddress(ctx context.Context, owner *store.User, nu store.NewUser, id store.Identity, c Client) error {
	bucket := ratelimit.BucketLinks
	if owner != nil && owner.Verified() {
		bucket = ratelimit.BucketNotices
	}
	if d, err := s.budget.Allow(ctx, ratelimit.PurposeEmails, ratelimit.AddressKey(bucket, id.Email)); err != nil {
		return err
	} else if !d.Allowed {
		return nil
	}
	if owner != nil && owner.Verified() {
		return s.store.Notify(ctx, owner.ID, events.Event{Subject: events.SubjectRegisterExisting, Payload: events.RegisterExisting{
			Email: owner.Email, Name: owner.Name, Provider: id.Provider}})
	}
	// A link like auth's own, which auth's /v1/auth/email/verify redeems.
	raw, tok := accounts.NewToken("", accounts.PurposeEmailVerification, time.Now().Add(s.cfg.VerificationTTL))
	p := store.Proof{Hash: tok.Hash, ExpiresAt: tok.ExpiresAt, Identity: id}
	mail := func(email, name string) events.Event {
		return events.Event{Subject: events.SubjectVerificationRequested, Payload: events.VerificationRequested{Email: email, Name: name,
			Token: raw, ExpiresAt: p.ExpiresAt, Provider: id.Provider}}
	}
	if owner != nil {
		return s.store.SendProof(ctx, owner.ID, p, mail(owner.Email, owner.Name))
	}
	nu.Verified, nu.Roles = false, []string{"user"}
	_, err := s.store.CreatePending(ctx, nu, p,
		events.Event{Subject: events.SubjectRegistered, Payload: events.Registered{Method: "oauth",
			Provider: id.Provider, IP: c.IP, UserAgent: c.UserAgent}},
		mail(nu.Email, nu.Name))
	return err
}

func clip(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
)

// RegisterResult tells the HTTP layer which of the two contract answers to give.
type RegisterResult struct {
	// Pending: verification is required; the same answer for a new and a taken address.
	Pending bool
	User    User
}

// Register creates an account. With verification required it answers the same for a
// taken address and mails the owner a notice instead, so nobody learns who has one.
// The address's email budget is spent only once the request is valid and just before
// an email is written: a refused request (400, 422, 409) sends nothing and spends
// nothing, and a spent budget still answers as usual, with no email.
func (s *Service) Register(ctx context.Context, rawEmail, pw, name string, c Client) (RegisterResult, error) {
	if err := s.allow(ctx, LimitRegister, c.IP, "rate_limited"); err != nil {
		return RegisterResult{}, err
	}
	email, err := emailaddr.Normalize(rawEmail)
	if err != nil {
		return RegisterResult{}, ErrInvalidEmail
	}
	name, err = cleanName(name)
	if err != nil {
		return RegisterResult{}, err
	}
	if err := s.checkPolicy(ctx, pw, email); err != nil {
		return RegisterResult{}, err
	}
	// Hash before looking anything up: a taken address costs the same time.
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return RegisterResult{}, s.hashError(err)
	}
	// Known before spending: a taken address gets a notice from the notices' budget,
	// or a 409 that sends nothing, never a spend of the links' budget.
	owner, err := s.users.UserByEmail(ctx, email)
	switch {
	case err == nil:
		return s.registerTaken(ctx, owner)
	case !errors.Is(err, ErrNotFound):
		return RegisterResult{}, fmt.Errorf("load user: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	u := User{ID: uuid.NewString(), Email: email, Name: name, PasswordHash: hash, Roles: []string{"user"}, CreatedAt: now}
	evs := []Event{{Subject: events.SubjectRegistered, Payload: events.Registered{UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent}}}
	send, err := s.spendEmail(ctx, ratelimit.BucketLinks, email)
	if err != nil {
		return RegisterResult{}, err
	}
	var tok *OneTimeToken
	if send { // else the account is made without a link; resend mails one later
		raw, t := accounts.NewToken(u.ID, PurposeEmailVerification, now.Add(s.cfg.VerificationTTL))
		tok = &t
		evs = append(evs, Event{Subject: events.SubjectVerificationRequested, Payload: emailPayload(events.SubjectVerificationRequested, u, raw, t.ExpiresAt)})
	}
	err = s.users.CreateUser(ctx, u, tok, evs)
	switch {
	case errors.Is(err, ErrEmailTaken): // registered in between
		owner, err := s.users.UserByEmail(ctx, email)
		if errors.Is(err, ErrNotFound) { // deleted in between: nothing to tell anyone
			if !s.cfg.EmailVerificationRequired {
				return RegisterResult{}, ErrEmailTaken
			}
			return RegisterResult{Pending: true}, nil
		}
		if err != nil {
			return RegisterResult{}, fmt.Errorf("load existing user: %w", err)
		}
		return s.registerTaken(ctx, owner)
	case err != nil:
		return RegisterResult{}, fmt.Errorf("create user: %w", err)
	}
	return RegisterResult{Pending: s.cfg.EmailVerificationRequired, User: u}, nil
}

// registerTaken answers a register for owner's address: 409 when verification is not
// required (nothing sent, nothing spent), else the usual 202 and a notice to the owner
// while the notices' budget lasts.
func (s *Service) registerTaken(ctx context.Context, owner User) (RegisterResult, error) {
	if !s.cfg.EmailVerificationRequired {
		return RegisterResult{}, ErrEmailTaken
	}
	send, err := s.spendEmail(ctx, ratelimit.BucketNotices, owner.Email)
	if err != nil || !send {
		return RegisterResult{Pending: err == nil}, err
	}
	err = s.users.Enqueue(ctx, Event{Subject: events.SubjectRegisterExisting, Payload: events.RegisterExisting{
		UserID: owner.ID, Email: owner.Email, Name: owner.Name,
	}})
	if err != nil {
		return RegisterResult{}, fmt.Errorf("notice existing user: %w", err)
	}
	return RegisterResult{Pending: true}, nil
}

// VerifyEmail uses a verification token.
func (s *Service) VerifyEmail(ctx context.Context, raw string, c Client) (User, error) {
	if err := s.allow(ctx, LimitEmailVerify, c.IP, "rate_limited"); err != nil {
		return User{}, err
	}
	hash, ok := accounts.HashToken(raw)
	if !ok {
		return User{}, ErrInvalidToken
	}
	u, err := s.users.VerifyEmail(ctx, hash, nil, func(u User, p Proof) []Event {
		return append([]Event{{Subject: events.SubjectEmailVerified, Payload: events.EmailVerified{UserID: u.ID, Email: u.Email, Name: u.Name}}},
			proofEvents(u, p)...)
	}, func(ctx context.Context, u User, p Proof) error {
		// The stamp moved too (proveAddress); this clears the sessions from Redis.
		if p.WasUnverified || len(p.Unlinked) > 0 {
			_, err := s.sessions.RevokeAll(ctx, u.ID, "")
			return err
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrInvalidToken
	}
	if err != nil {
		return User{}, fmt.Errorf("verify email: %w", err)
	}
	return s.grantConfiguredAdmin(ctx, u)
}

// grantConfiguredAdmin gives ADMIN_EMAILS accounts the admin role once verified.
func (s *Service) grantConfiguredAdmin(ctx context.Context, u User) (User, error) {
	return s.users.GrantOwedAdmin(ctx, u, s.cfg.AdminEmails)
}

// ResendVerification accepts a request for a new verification link and answers nothing
// either way: the same work for every address (requestEmail); ProcessEmailRequest mails
// the link afterwards when the address has an unverified account.
func (s *Service) ResendVerification(ctx context.Context, rawEmail string, c Client) error {
	return s.requestEmail(ctx, LimitResend, EmailResend, rawEmail, c)
}

// ForgotPassword accepts a request for a reset link and answers nothing either way: the
// same work for every address (requestEmail); ProcessEmailRequest mails the link
// afterwards when the address has an account. The link is built by the worker from
// APP_URL, never from the request's Host.
func (s *Service) ForgotPassword(ctx context.Context, rawEmail string, c Client) error {
	return s.requestEmail(ctx, LimitForgot, EmailForgot, rawEmail, c)
}

// ResetPassword sets a new password with a reset token and ends every session of the
// user. It does not sign the user in. A reset proves the mailbox, so it verifies it.
func (s *Service) ResetPassword(ctx context.Context, raw, pw string) error {
	hash, ok := accounts.HashToken(raw)
	if !ok {
		return ErrInvalidToken
	}
	owner, err := s.users.TokenUser(ctx, hash, PurposePasswordReset)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("look up reset token: %w", err)
	}
	if err := s.checkPolicy(ctx, pw, owner.Email); err != nil {
		return err
	}
	pwHash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return s.hashError(err)
	}
	_, err = s.users.ResetPassword(ctx, hash, pwHash,
		func(u User, p Proof) []Event {
			return append([]Event{passwordChanged(u, "reset")}, proofEvents(u, p)...)
		},
		func(ctx context.Context, u User) error {
			_, err := s.sessions.RevokeAll(ctx, u.ID, "")
			return err
		})
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken // used by a parallel request in between
	}
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return nil
}

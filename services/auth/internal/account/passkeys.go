package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/passkey"
)

// Passkey errors the HTTP layer maps to codes.
var (
	// ErrInvalidFlow: a ceremony's flow id unknown, used, expired, of another purpose,
	// or of another account or session (400 invalid_flow).
	ErrInvalidFlow = errors.New("invalid passkey flow")
	// ErrInvalidPasskey: a sign-in assertion refused (401 invalid_passkey).
	ErrInvalidPasskey = errors.New("invalid passkey")
	// ErrPasskeyRefused: a registration response refused (400 invalid_passkey).
	ErrPasskeyRefused = errors.New("passkey refused")
	// ErrTooManyPasskeys: the account holds MaxPasskeys already (409).
	ErrTooManyPasskeys = errors.New("too many passkeys")
	// ErrNoPasskeys: a passkey second factor for an account without one (400).
	ErrNoPasskeys = errors.New("no passkeys")
	// ErrInvalidPasskeyName: a name of 1 to 64 characters without control characters.
	ErrInvalidPasskeyName = errors.New("invalid passkey name")
	// ErrPasskeysOff: the service has no relying party (404 feature_disabled).
	ErrPasskeysOff = errors.New("passkeys are off")
)

// MaxPasskeys bounds the passkeys of an account (and the ceremony's exclude list).
const MaxPasskeys = 20

// Passkey is a WebAuthn credential as stored (passkey.Credential).
type Passkey = passkey.Credential

// PasskeyStore keeps the passkeys in PostgreSQL.
type PasskeyStore interface {
	Passkeys(ctx context.Context, userID string) ([]Passkey, error)
	// PasskeyByCredentialID finds a passkey by its authenticator's id; ErrNotFound.
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error)
	// AddPasskey stores p and ev in one transaction: ErrTooManyPasskeys when the account
	// holds max already, ErrPasskeyRefused when the credential is registered.
	AddPasskey(ctx context.Context, p Passkey, max int, ev Event) (Passkey, error)
	RenamePasskey(ctx context.Context, userID, id, name string) (Passkey, error)
	// DeletePasskey deletes the user's passkey and writes ev(it); ErrNotFound.
	DeletePasskey(ctx context.Context, userID, id string, ev func(Passkey) Event) (Passkey, error)
	// UsePasskey records a sign-in (counter, backup state, last use) only if p's counter
	// is newer than the stored one, or both are zero; false otherwise (a clone, a race).
	UsePasskey(ctx context.Context, p Passkey) (bool, error)
}

// PasskeyFlows keeps the ceremonies between begin and finish (passkey.Flows).
type PasskeyFlows interface {
	Start(ctx context.Context, f passkey.Flow) (string, error)
	Take(ctx context.Context, id, purpose string) (passkey.Flow, error)
}

// WithPasskeys enables passkeys: the store, the relying party and the flows.
func WithPasskeys(store PasskeyStore, rp *passkey.RP, flows PasskeyFlows) Option {
	return func(s *Service) { s.passkeys, s.rp, s.flows = store, rp, flows }
}

// Ceremony is what a begin answers: the flow to finish and the options for the
// browser's navigator.credentials.create or .get (WebAuthn's JSON form).
type Ceremony struct {
	FlowID  string
	Options json.RawMessage
}

func (s *Service) passkeysReady() error {
	if s.passkeys == nil || s.rp == nil || s.flows == nil {
		return ErrPasskeysOff
	}
	return nil
}

// rpUser is u as the relying party sees it, holding creds.
func rpUser(u User, creds []Passkey) passkey.User {
	display := u.Name
	if display == "" {
		display = u.Email
	}
	return passkey.User{ID: u.ID, Email: u.Email, DisplayName: display, Credentials: creds}
}

// passkeyUser is u with all its passkeys.
func (s *Service) passkeyUser(ctx context.Context, u User) (passkey.User, error) {
	creds, err := s.passkeys.Passkeys(ctx, u.ID)
	if err != nil {
		return passkey.User{}, err
	}
	return rpUser(u, creds), nil
}

// changer loads the caller of a credential change, after the per-user budget of such
// changes and once ready (the feature's store is configured).
func (s *Service) changer(ctx context.Context, p Principal, ready func() error) (User, error) {
	if err := s.allow(ctx, LimitMFA, p.UserID, "rate_limited"); err != nil {
		return User{}, err
	}
	if err := ready(); err != nil {
		return User{}, err
	}
	u, err := s.users.UserByID(ctx, p.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrUnauthenticated
	}
	if err != nil {
		return User{}, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// BeginPasskeyRegistration starts adding a passkey to the caller's account: a
// credential change, so it needs a recent sign-in or the current password.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p Principal, currentPassword string) (Ceremony, error) {
	u, err := s.changer(ctx, p, s.passkeysReady)
	if err != nil {
		return Ceremony{}, err
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return Ceremony{}, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return Ceremony{}, err
	}
	if len(pu.Credentials) >= MaxPasskeys {
		return Ceremony{}, ErrTooManyPasskeys
	}
	opts, cer, err := s.rp.BeginRegistration(pu)
	if err != nil {
		return Ceremony{}, err
	}
	id, err := s.flows.Start(ctx, passkey.Flow{Purpose: passkey.PurposeRegister, UserID: u.ID, SessionID: p.SessionID, Ceremony: cer})
	if err != nil {
		return Ceremony{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Ceremony{FlowID: id, Options: opts}, nil
}

// FinishPasskeyRegistration checks the browser's answer to the flow's options and
// stores the passkey. Only the session that began the flow may finish it, once.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p Principal, flowID, name string, response []byte) (Passkey, error) {
	u, err := s.changer(ctx, p, s.passkeysReady)
	if err != nil {
		return Passkey{}, err
	}
	if name, err = cleanPasskeyName(name, "Passkey"); err != nil {
		return Passkey{}, err
	}
	f, err := s.takeFlow(ctx, flowID, passkey.PurposeRegister)
	if err != nil {
		return Passkey{}, err
	}
	if f.UserID != u.ID || f.SessionID != p.SessionID {
		return Passkey{}, ErrInvalidFlow
	}
	cred, err := s.rp.FinishRegistration(rpUser(u, nil), f.Ceremony, response)
	if err != nil {
		var r *passkey.Refusal
		if errors.As(err, &r) {
			return Passkey{}, ErrPasskeyRefused
		}
		return Passkey{}, err
	}
	cred.ID, cred.Name = uuid.NewString(), name
	ev := Event{Subject: events.SubjectPasskeyAdded, Payload: events.PasskeyAdded{UserID: u.ID, Email: u.Email, Name: u.Name,
		PasskeyID: cred.ID, PasskeyName: name}}
	return s.passkeys.AddPasskey(ctx, cred, MaxPasskeys, ev)
}

// ListPasskeys lists the caller's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, p Principal) ([]Passkey, error) {
	if err := s.passkeysReady(); err != nil {
		return nil, err
	}
	return s.passkeys.Passkeys(ctx, p.UserID)
}

// RenamePasskey renames one of the caller's passkeys (no credential change).
func (s *Service) RenamePasskey(ctx context.Context, p Principal, id, name string) (Passkey, error) {
	if err := s.passkeysReady(); err != nil {
		return Passkey{}, err
	}
	name, err := cleanPasskeyName(name, "")
	if err != nil {
		return Passkey{}, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return Passkey{}, ErrNotFound
	}
	return s.passkeys.RenamePasskey(ctx, p.UserID, id, name)
}

// DeletePasskey removes one of the caller's passkeys, a credential change, and ends
// the account's other sessions: one the passkey opened (a lost or stolen device) ends
// with it.
func (s *Service) DeletePasskey(ctx context.Context, p Principal, id, currentPassword string) error {
	u, err := s.changer(ctx, p, s.passkeysReady)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return err
	}
	if _, err := s.passkeys.DeletePasskey(ctx, u.ID, id, func(pk Passkey) Event {
		return Event{Subject: events.SubjectPasskeyRemoved, Payload: events.PasskeyRemoved{UserID: u.ID, Email: u.Email,
			Name: u.Name, PasskeyID: pk.ID, PasskeyName: pk.Name}}
	}); err != nil {
		return err
	}
	if _, err := s.sessions.RevokeAll(ctx, u.ID, p.SessionID); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	return nil
}

// BeginPasskeyLogin starts a sign-in with a discoverable passkey: no account is named,
// so the answer is the same for everyone.
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Client) (Ceremony, error) {
	if err := s.allow(ctx, LimitLogin, c.IP, "too_many_attempts"); err != nil {
		return Ceremony{}, err
	}
	if err := s.passkeysReady(); err != nil {
		return Ceremony{}, err
	}
	opts, cer, err := s.rp.BeginLogin(nil)
	if err != nil {
		return Ceremony{}, err
	}
	id, err := s.flows.Start(ctx, passkey.Flow{Purpose: passkey.PurposeLogin, Ceremony: cer})
	if err != nil {
		return Ceremony{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Ceremony{FlowID: id, Options: opts}, nil
}

// FinishPasskeyLogin signs in with a passkey alone (amr webauthn: the authenticator
// verified the user, so no second factor is asked for). Every refusal is counted in the
// login throttle like a wrong password: the account's when the credential is known.
func (s *Service) FinishPasskeyLogin(ctx context.Context, flowID string, response []byte, c Client) (TokenPair, error) {
	if err := s.allow(ctx, LimitLogin, c.IP, "too_many_attempts"); err != nil {
		return TokenPair{}, err
	}
	if err := s.passkeysReady(); err != nil {
		return TokenPair{}, err
	}
	f, err := s.takeFlow(ctx, flowID, passkey.PurposeLogin)
	if err != nil {
		return TokenPair{}, err
	}
	a, err := passkey.ParseAssertion(response)
	if err != nil {
		return TokenPair{}, s.passkeyUnknown(ctx, nil, passkey.ReasonInvalid, c)
	}
	pk, err := s.passkeys.PasskeyByCredentialID(ctx, a.CredentialID())
	if errors.Is(err, ErrNotFound) {
		return TokenPair{}, s.passkeyUnknown(ctx, a.CredentialID(), passkey.ReasonUnknown, c)
	}
	if err != nil {
		return TokenPair{}, err
	}
	u, err := s.users.UserByID(ctx, pk.UserID)
	if errors.Is(err, ErrNotFound) {
		return TokenPair{}, s.passkeyUnknown(ctx, a.CredentialID(), passkey.ReasonUnknown, c)
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("load user: %w", err)
	}
	if err := s.loginAttempt(ctx, u.Email, c.IP); err != nil {
		return TokenPair{}, err
	}
	if reason, err := s.checkPasskey(ctx, rpUser(u, []Passkey{pk}), f.Ceremony, a); err != nil {
		return TokenPair{}, err
	} else if reason != "" {
		s.loginFailed(ctx, &u, u.Email, reason, c)
		return TokenPair{}, ErrInvalidPasskey
	}
	if err := s.limits.LoginSucceeded(ctx, u.Email, c.IP); err != nil {
		return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if u.DisabledAt != nil {
		s.loginFailed(ctx, &u, u.Email, "account_disabled", c)
		return TokenPair{}, ErrAccountDisabled
	}
	if s.cfg.EmailVerificationRequired && !u.Verified() {
		s.loginFailed(ctx, &u, u.Email, "email_not_verified", c)
		return TokenPair{}, ErrEmailNotVerified
	}
	if u, err = s.grantConfiguredAdmin(ctx, u); err != nil {
		return TokenPair{}, err
	}
	amr := []string{"webauthn"}
	pair, err := s.core.Open(ctx, u, amr, c)
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, events.SubjectLoginSucceeded, events.LoginSucceeded{UserID: u.ID, SessionID: pair.SessionID,
		AMR: amr, IP: c.IP, UserAgent: c.UserAgent})
	return pair, nil
}

// passkeyUnknown refuses an assertion of no account's passkey: the client's throttle
// counts it (under the credential, there being no account), the audit log records it
// without a user.
func (s *Service) passkeyUnknown(ctx context.Context, credentialID []byte, reason string, c Client) error {
	sum := sha256.Sum256(credentialID)
	if err := s.loginAttempt(ctx, "passkey:"+hex.EncodeToString(sum[:]), c.IP); err != nil {
		return err
	}
	s.loginFailed(ctx, nil, "", reason, c)
	return ErrInvalidPasskey
}

// checkPasskey checks an assertion by one of pu's passkeys against its ceremony and
// records the use; it returns the reason of a refusal ("" when it passed).
func (s *Service) checkPasskey(ctx context.Context, pu passkey.User, cer passkey.State, a passkey.Assertion) (string, error) {
	cred, err := s.rp.FinishLogin(pu, cer, a)
	var r *passkey.Refusal
	if errors.As(err, &r) {
		return r.Reason, nil
	}
	if err != nil {
		return "", err
	}
	// One statement: of two parallel sign-ins with the same counter only one passes.
	if ok, err := s.passkeys.UsePasskey(ctx, cred); err != nil {
		return "", err
	} else if !ok {
		return passkey.ReasonSignCount, nil
	}
	return "", nil
}

// BeginPasskeyMFA starts a passkey as the second factor of a pending login (the
// mfa_token of a right password, or of a provider sign-in at oauth).
func (s *Service) BeginPasskeyMFA(ctx context.Context, mfaToken string, c Client) (Ceremony, error) {
	if err := s.allow(ctx, LimitMFA, c.IP, "too_many_attempts"); err != nil {
		return Ceremony{}, err
	}
	if err := s.passkeysReady(); err != nil {
		return Ceremony{}, err
	}
	hash, _, u, err := s.pendingLogin(ctx, mfaToken)
	if err != nil {
		return Ceremony{}, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return Ceremony{}, err
	}
	if len(pu.Credentials) == 0 {
		return Ceremony{}, ErrNoPasskeys
	}
	opts, cer, err := s.rp.BeginLogin(&pu)
	if err != nil {
		return Ceremony{}, err
	}
	id, err := s.flows.Start(ctx, passkey.Flow{Purpose: passkey.PurposeMFA, UserID: u.ID, MFATokenHash: hash, Ceremony: cer})
	if err != nil {
		return Ceremony{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Ceremony{FlowID: id, Options: opts}, nil
}

// LoginMFAPasskey finishes a pending login with a passkey (amr gains webauthn), with
// the rules of LoginMFA: wrong answers count in the throttle and burn the mfa_token.
func (s *Service) LoginMFAPasskey(ctx context.Context, mfaToken, flowID string, response []byte, c Client) (TokenPair, error) {
	if err := s.passkeysReady(); err != nil {
		return TokenPair{}, err
	}
	return s.secondFactor(ctx, mfaToken, c, "webauthn", ErrInvalidPasskey, func(u User, hash []byte) (string, error) {
		f, err := s.takeFlow(ctx, flowID, passkey.PurposeMFA)
		if err != nil {
			return "", err
		}
		if f.UserID != u.ID || !bytes.Equal(f.MFATokenHash, hash) {
			return "", ErrInvalidFlow
		}
		a, err := passkey.ParseAssertion(response)
		if err != nil {
			return passkey.ReasonInvalid, nil
		}
		// All of them: the ceremony allowed every passkey of the account.
		pu, err := s.passkeyUser(ctx, u)
		if err != nil {
			return "", err
		}
		return s.checkPasskey(ctx, pu, f.Ceremony, a)
	})
}

func (s *Service) takeFlow(ctx context.Context, id, purpose string) (passkey.Flow, error) {
	f, err := s.flows.Take(ctx, id, purpose)
	if errors.Is(err, passkey.ErrFlowNotFound) {
		return passkey.Flow{}, ErrInvalidFlow
	}
	if err != nil {
		return passkey.Flow{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return f, nil
}

// mfaFactors are the second factors an account with MFA on may answer with (the
// account core's, less passkeys while they are off here). A failure to read them only
// leaves them out of the answer.
func (s *Service) mfaFactors(ctx context.Context, u User) []string {
	factors, err := s.users.SecondFactors(ctx, u.ID)
	if err != nil {
		return nil
	}
	if s.passkeysReady() != nil {
		factors = slices.DeleteFunc(factors, func(f string) bool { return f == "webauthn" })
	}
	return factors
}

// cleanPasskeyName accepts 1 to 64 characters without control characters; an empty
// name is def (none when def is empty).
func cleanPasskeyName(name, def string) (string, error) {
	name, err := cleanName(name)
	if err != nil || utf8.RuneCountInString(name) > 64 {
		return "", ErrInvalidPasskeyName
	}
	if name == "" {
		if def == "" {
			return "", ErrInvalidPasskeyName
		}
		name = def
	}
	return name, nil
}

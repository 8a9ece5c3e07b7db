package account

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/mfachallenge"
)

// MFA errors the HTTP layer maps to codes.
var (
	// ErrInvalidMFACode is a wrong, used or expired code or mfa_token at login (401).
	ErrInvalidMFACode = errors.New("invalid mfa code")
	// ErrWrongMFACode is a wrong code when turning MFA on or off (400).
	ErrWrongMFACode      = errors.New("wrong mfa code")
	ErrMFAAlreadyEnabled = errors.New("mfa already enabled")
	ErrMFANotEnabled     = errors.New("mfa not enabled")
)

// TOTP parameters (RFC 6238): SHA1, 6 digits, 30 s steps, one step of skew.
const (
	totpIssuer = "TalentForge"
	totpPeriod = 30
	totpSkew   = 1
	// RecoveryCodes is how many recovery codes a confirmation hands out.
	RecoveryCodes = 10
	// MFATokenTTL is how long a password-checked login waits for its second factor.
	MFATokenTTL = mfachallenge.TTL
	// MFAMaxFailures wrong codes burn an mfa_token.
	MFAMaxFailures = 5
)

// TOTPSecret is a user's TOTP secret as the store returns it (opened).
type TOTPSecret struct {
	Secret    string // base32
	Confirmed bool
}

// MFAStore keeps TOTP secrets (sealed at rest by the store) and recovery codes.
type MFAStore interface {
	// TOTP returns the user's secret; ErrNotFound when none.
	TOTP(ctx context.Context, userID string) (TOTPSecret, error)
	// SavePendingTOTP stores or replaces an unconfirmed secret; ErrMFAAlreadyEnabled
	// when a confirmed one exists.
	SavePendingTOTP(ctx context.Context, userID, secret string) error
	// ConfirmTOTP marks the pending secret confirmed with step used, turns MFA on,
	// replaces the recovery codes and writes ev, in one transaction; ErrInvalidMFACode
	// when the secret changed, was confirmed meanwhile or the step was used.
	ConfirmTOTP(ctx context.Context, userID, secret string, step int64, codeHashes [][]byte, ev Event) error
	// UseTOTPStep records step as used if it is newer than the last one; false if not.
	UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// UseRecoveryCode marks an unused code used; false when there is none.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error)
	// DisableTOTP removes the secret and the codes, turns MFA off and writes ev.
	DisableTOTP(ctx context.Context, userID string, ev Event) error
}

// MFAChallenge is a login whose first factor was right (a password here, a provider at
// oauth), waiting for its second.
type MFAChallenge = mfachallenge.Challenge

// MFAChallenges holds pending challenges under the hash of their token.
type MFAChallenges interface {
	Create(ctx context.Context, hash []byte, ch MFAChallenge, ttl time.Duration) error
	Get(ctx context.Context, hash []byte) (MFAChallenge, error) // ErrNotFound
	// Fail counts a wrong code and deletes the challenge at max failures.
	Fail(ctx context.Context, hash []byte, max int) error
	// Take deletes the challenge; false when it was already gone.
	Take(ctx context.Context, hash []byte) (bool, error)
}

// WithMFA enables TOTP: the secret store and the pending-login store.
func WithMFA(store MFAStore, challenges MFAChallenges) Option {
	return func(s *Service) { s.mfa, s.challenges = store, challenges }
}

// TOTPEnrolment is what enrolment answers; the secret is shown this once.
type TOTPEnrolment struct {
	Secret      string
	URL         string
	QRPNGBase64 string
}

func (s *Service) mfaReady() error {
	if s.mfa == nil || s.challenges == nil {
		return fmt.Errorf("%w: MFA is not configured", ErrUnavailable)
	}
	return nil
}

// startMFA answers a right first factor (amr: a password, a one-time code) for an
// account with MFA on: the core's pending challenge (accounts.Sessions.SignIn), redeemed
// by LoginMFA.
func (s *Service) startMFA(ctx context.Context, u User, amr []string, c Client) (TokenPair, error) {
	if err := s.mfaReady(); err != nil {
		return TokenPair{}, err
	}
	pair, err := s.core.SignIn(ctx, u, amr, c)
	if err == nil && pair.MFARequired {
		pair.MFAFactors = s.mfaFactors(ctx, u)
	}
	return pair, err
}

// LoginMFA finishes a login with a TOTP or a recovery code. Wrong codes count toward
// the login throttle and burn the token after MFAMaxFailures.
func (s *Service) LoginMFA(ctx context.Context, mfaToken, code string, c Client) (TokenPair, error) {
	return s.secondFactor(ctx, mfaToken, c, "otp", ErrInvalidMFACode, func(u User, _ []byte) (string, error) {
		ok, err := s.checkCode(ctx, u.ID, code, true)
		if err != nil || ok {
			return "", err
		}
		return "invalid_mfa_code", nil
	})
}

// secondFactor finishes the pending login of mfaToken when check (given the account and
// the token's hash) finds its second factor right, and opens the session with factor
// added to the first factor's amr. A wrong factor (check's reason of refusal) counts in
// the account's login throttle, burns the token after MFAMaxFailures and answers wrong.
func (s *Service) secondFactor(ctx context.Context, mfaToken string, c Client, factor string, wrong error,
	check func(u User, hash []byte) (string, error)) (TokenPair, error) {
	if err := s.allow(ctx, LimitMFA, c.IP, "too_many_attempts"); err != nil {
		return TokenPair{}, err
	}
	hash, ch, u, err := s.pendingLogin(ctx, mfaToken)
	if err != nil {
		return TokenPair{}, err
	}
	if err := s.loginAttempt(ctx, u.Email, c.IP); err != nil {
		return TokenPair{}, err
	}
	reason, err := check(u, hash)
	if err != nil {
		return TokenPair{}, err
	}
	if reason != "" {
		if err := s.challenges.Fail(ctx, hash, MFAMaxFailures); err != nil {
			return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s.loginFailed(ctx, &u, u.Email, reason, c)
		return TokenPair{}, wrong
	}
	// Single use: of parallel requests with one token only the one that deletes it wins.
	if taken, err := s.challenges.Take(ctx, hash); err != nil {
		return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if !taken {
		return TokenPair{}, ErrInvalidMFACode
	}
	// A password changed since the first step: that step proved the old one.
	if u.DisabledAt != nil || !u.MFAEnabled || (ch.Stamp != "" && ch.Stamp != u.CredentialStamp) {
		return TokenPair{}, ErrInvalidMFACode
	}
	if err := s.limits.LoginSucceeded(ctx, u.Email, c.IP); err != nil {
		return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	amr := withFactor(ch.FirstFactor(), factor)
	pair, err := s.core.Open(ctx, u, amr, c)
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, events.SubjectLoginSucceeded, events.LoginSucceeded{UserID: u.ID, SessionID: pair.SessionID,
		AMR: amr, IP: c.IP, UserAgent: c.UserAgent})
	return pair, nil
}

// pendingLogin returns the challenge of a live mfa_token, its hash and its account;
// ErrInvalidMFACode when there is none.
func (s *Service) pendingLogin(ctx context.Context, mfaToken string) ([]byte, MFAChallenge, User, error) {
	if err := s.mfaReady(); err != nil {
		return nil, MFAChallenge{}, User{}, err
	}
	hash, ok := accounts.HashToken(mfaToken)
	if !ok {
		return nil, MFAChallenge{}, User{}, ErrInvalidMFACode
	}
	ch, err := s.challenges.Get(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, MFAChallenge{}, User{}, ErrInvalidMFACode
	}
	if err != nil {
		return nil, MFAChallenge{}, User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	u, err := s.users.UserByID(ctx, ch.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, MFAChallenge{}, User{}, ErrInvalidMFACode
	}
	if err != nil {
		return nil, MFAChallenge{}, User{}, fmt.Errorf("load user: %w", err)
	}
	return hash, ch, u, nil
}

// EnrolTOTP creates (or replaces) the caller's pending TOTP secret. Like every
// credential change it needs a recent sign-in or the current password (reauth).
func (s *Service) EnrolTOTP(ctx context.Context, p Principal, currentPassword string) (TOTPEnrolment, error) {
	u, err := s.changer(ctx, p, s.mfaReady)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if u.MFAEnabled {
		return TOTPEnrolment{}, ErrMFAAlreadyEnabled
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: u.Email, Period: totpPeriod,
		SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate totp: %w", err)
	}
	if err := s.mfa.SavePendingTOTP(ctx, u.ID, key.Secret()); err != nil {
		return TOTPEnrolment{}, err
	}
	out := TOTPEnrolment{Secret: key.Secret(), URL: key.URL()}
	if img, err := key.Image(256, 256); err == nil {
		var buf bytes.Buffer
		if png.Encode(&buf, img) == nil {
			out.QRPNGBase64 = base64.StdEncoding.EncodeToString(buf.Bytes())
		}
	}
	return out, nil
}

// ConfirmTOTP turns MFA on with a code of the pending secret and hands out the
// recovery codes, shown this once and stored hashed. The factor is added here, so
// the re-authentication rule of EnrolTOTP holds here too.
func (s *Service) ConfirmTOTP(ctx context.Context, p Principal, code, currentPassword string) ([]string, error) {
	u, err := s.changer(ctx, p, s.mfaReady)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled {
		return nil, ErrMFAAlreadyEnabled
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return nil, err
	}
	sec, err := s.mfa.TOTP(ctx, u.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrWrongMFACode // nothing enrolled
	}
	if err != nil {
		return nil, err
	}
	if sec.Confirmed {
		return nil, ErrMFAAlreadyEnabled
	}
	step, ok := s.matchTOTP(sec.Secret, code)
	if !ok {
		return nil, ErrWrongMFACode
	}
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
		hashes[i] = recoveryHash(codes[i])
	}
	ev := Event{Subject: events.SubjectMFAEnabled, Payload: events.MFAEnabled{UserID: u.ID, Email: u.Email, Name: u.Name}}
	if err := s.mfa.ConfirmTOTP(ctx, u.ID, sec.Secret, step, hashes, ev); errors.Is(err, ErrInvalidMFACode) {
		return nil, ErrWrongMFACode
	} else if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableTOTP turns MFA off with a current TOTP or a recovery code, after the
// re-authentication of every credential change. Each code counts in the account's
// login throttle as at /v1/auth/login/mfa: while it waits even a right code gets
// login's 429 too_many_attempts, and a right code resets it.
func (s *Service) DisableTOTP(ctx context.Context, p Principal, code, currentPassword string) error {
	u, err := s.changer(ctx, p, s.mfaReady)
	if err != nil {
		return err
	}
	if !u.MFAEnabled {
		return ErrMFANotEnabled
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return err
	}
	ip, err := s.credentialAttempt(ctx, p, u)
	if err != nil {
		return err
	}
	ok, err := s.checkCode(ctx, u.ID, code, true)
	if err != nil {
		return err
	}
	if !ok {
		return ErrWrongMFACode
	}
	if err := s.limits.LoginSucceeded(ctx, u.Email, ip); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ev := Event{Subject: events.SubjectMFADisabled, Payload: events.MFADisabled{UserID: u.ID, Email: u.Email, Name: u.Name}}
	return s.mfa.DisableTOTP(ctx, u.ID, ev)
}

// checkCode accepts a TOTP of the confirmed secret (once per step, never an older
// step) or, when allowed, an unused recovery code, which it spends.
func (s *Service) checkCode(ctx context.Context, userID, code string, recovery bool) (bool, error) {
	code = normalizeCode(code)
	if len(code) == 6 && isDigits(code) {
		sec, err := s.mfa.TOTP(ctx, userID)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !sec.Confirmed {
			return false, nil
		}
		step, ok := s.matchTOTP(sec.Secret, code)
		if !ok {
			return false, nil
		}
		return s.mfa.UseTOTPStep(ctx, userID, step)
	}
	if recovery && len(code) == recoveryLen {
		return s.mfa.UseRecoveryCode(ctx, userID, recoveryHash(code))
	}
	return false, nil
}

// matchTOTP returns the newest step within ±skew of now whose code is code.
func (s *Service) matchTOTP(secret, code string) (int64, bool) {
	code = normalizeCode(code)
	if len(code) != 6 || !isDigits(code) {
		return 0, false
	}
	now := s.now().Unix() / totpPeriod
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for d := int64(totpSkew); d >= -totpSkew; d-- {
		step := now + d
		if step < 1 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// Recovery codes: 10 characters of Crockford's base32 (50 bits), shown as XXXXX-XXXXX.
const (
	recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	recoveryLen      = 10
)

func newRecoveryCode() string {
	var b [recoveryLen]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, recoveryLen+1)
	for i, c := range b {
		if i == recoveryLen/2 {
			out = append(out, '-')
		}
		out = append(out, recoveryAlphabet[c&31])
	}
	return string(out)
}

func recoveryHash(code string) []byte {
	sum := sha256.Sum256([]byte(normalizeCode(code)))
	return sum[:]
}

func normalizeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	code = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(code))
	return code
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

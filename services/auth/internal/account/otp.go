package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/services/auth/internal/phone"
)

// One-time codes: 6 digits sent by email (with a sign-in link) or SMS, to sign in, and
// the SMS code that proves a phone number before it is set. A code is stored as the
// SHA-256 of its purpose, its address or account and its digits, lives CodeTTL, is
// used once, and the CodeMaxAttempts-th wrong guess burns it; a new one retires the
// older. Requests for sign-in codes wait in email_requests like a reset, so a known and
// an unknown address or number cost the same work before the 202.

// The rules of one-time codes (API.md).
const (
	CodeTTL         = 10 * time.Minute
	CodeMaxAttempts = 5
	codeDigits      = 6
)

// Budget purposes of one-time codes: per IP (RATE_LIMIT_OTP) and per number
// (RATE_LIMIT_SMS_PER_NUMBER).
const (
	LimitOTP = "otp"
	LimitSMS = "sms_per_number"
)

// The buckets of a number's SMS budget: sign-in codes and phone verifications count
// apart, so whoever types a stranger's number into their own account cannot use up the
// SMS the owner signs in with.
const (
	bucketSMSSignIn = ""
	bucketSMSVerify = "verify:"
)

// Errors of one-time codes.
var (
	// ErrInvalidCode: a sign-in code or link that is wrong, used, burnt or expired, or
	// an address without one (401 invalid_code: the same answer for every address).
	ErrInvalidCode = errors.New("invalid code")
	// ErrWrongPhoneCode: the caller's phone verification code is wrong, used or expired.
	ErrWrongPhoneCode = errors.New("wrong phone code")
	ErrInvalidPhone   = errors.New("invalid phone")
	// ErrPhoneCountry: a valid number of a country outside SMS_ALLOWED_COUNTRIES.
	ErrPhoneCountry = errors.New("phone country not allowed")
	// ErrPhoneTaken: the number is another account's (told only to whoever proved it).
	ErrPhoneTaken = errors.New("phone taken")
	// ErrSMSOff: no SMS provider (SMS_PROVIDER=none), so no phone features.
	ErrSMSOff = errors.New("sms off")
)

// CodeResult is what a guess at a code found.
type CodeResult int

// The results of a guess.
const (
	CodeNone  CodeResult = iota // no live code: unknown address, none asked, used, burnt or expired
	CodeWrong                   // a live code, not this one (counted; the last allowed guess burns it)
	CodeRight                   // used now
)

// CodeUse is a guess's result and, for a right one, the account.
type CodeUse struct {
	Result CodeResult
	User   User
	// Proof: an emailed code or link proves the address, as a verification link does.
	Proof Proof
	// PreviousPhone is the number a phone verification replaced ("" when none).
	PreviousPhone string
}

// CodeStore keeps the one-time codes (the one_time_tokens table).
type CodeStore interface {
	// UseCode spends one guess at the live code of purpose (PurposeOTPEmail or
	// PurposeOTPSMS) of the account whose address or number is addr, in one statement
	// whatever addr is. A right emailed code proves the address, and events are written,
	// in the same transaction.
	UseCode(ctx context.Context, purpose Purpose, addr string, codeHash []byte, maxAttempts int,
		events func(User, Proof) []Event) (CodeUse, error)
	// UseOTPLink uses a live emailed sign-in link, proving the address as UseCode does.
	UseOTPLink(ctx context.Context, hash []byte, events func(User, Proof) []Event) (CodeUse, error)
	// IssueCode retires the user's live tokens of t's purpose and stores t and ev, in one
	// transaction.
	IssueCode(ctx context.Context, t OneTimeToken, ev Event) error
	// VerifyPhone spends one guess at userID's phone verification code; a right one sets
	// its number, with events, in the same transaction (ErrPhoneTaken: another account's).
	VerifyPhone(ctx context.Context, userID string, codeHash []byte, maxAttempts int,
		events func(u User, previous string) []Event) (CodeUse, error)
}

// WithCodes gives the service its one-time codes; phones, nil without an SMS provider
// (SMS_PROVIDER=none), turns the phone routes and SMS sign-in on.
func WithCodes(store CodeStore, phones *phone.Policy) Option {
	return func(s *Service) { s.codes, s.phones = store, phones }
}

var errNoCodes = errors.New("no one-time code store (WithCodes)")

func (s *Service) codesReady() error {
	if s.codes == nil {
		return errNoCodes
	}
	return nil
}

func (s *Service) smsReady() error {
	if err := s.codesReady(); err != nil {
		return err
	}
	if s.phones == nil {
		return ErrSMSOff
	}
	return nil
}

// newCode is 6 digits from the CSPRNG, uniform.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return fmt.Sprintf("%0*d", codeDigits, n.Int64())
}

// codeShaped reports whether code can be one of ours: nothing else is looked up.
func codeShaped(code string) bool {
	if len(code) != codeDigits {
		return false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CodeHash binds a code to its purpose and its owner (an address, a number or an
// account id), so one code's hash matches nowhere else.
func CodeHash(purpose Purpose, owner, code string) []byte {
	sum := sha256.Sum256([]byte(string(purpose) + "\x00" + owner + "\x00" + code))
	return sum[:]
}

// parsePhone reads a number with SMS_DEFAULT_REGION and SMS_ALLOWED_COUNTRIES.
func (s *Service) parsePhone(raw string) (string, error) {
	e164, err := s.phones.Parse(raw)
	switch {
	case errors.Is(err, phone.ErrCountry):
		return "", ErrPhoneCountry
	case err != nil:
		return "", ErrInvalidPhone
	}
	return e164, nil
}

// spendSMS spends one SMS of number's budget in bucket, only when an SMS is about to
// be written; a refusal is the budget's RateLimitedError.
func (s *Service) spendSMS(ctx context.Context, bucket, number string) error {
	return s.allow(ctx, LimitSMS, ratelimit.AddressKey(bucket, number), "rate_limited")
}

// RequestOTP accepts a request for a sign-in code, by email (rawEmail) or SMS
// (rawPhone), and answers nothing either way: the per-IP budget, one INSERT, 202, the
// same work for every address (requestEmail). ProcessEmailRequest sends the code
// afterwards when the address or the verified number has an account. A number that is
// no valid one, or of a refused country, is told at once: that says nothing of accounts.
func (s *Service) RequestOTP(ctx context.Context, rawEmail, rawPhone string, c Client) error {
	if (rawEmail == "") == (rawPhone == "") {
		return ErrInvalidRequest
	}
	if err := s.codesReady(); err != nil {
		return err
	}
	if rawEmail != "" {
		return s.requestEmail(ctx, LimitOTP, EmailOTP, rawEmail, c)
	}
	if err := s.smsReady(); err != nil {
		return err
	}
	if err := s.allow(ctx, LimitOTP, c.IP, "rate_limited"); err != nil {
		return err
	}
	number, err := s.parsePhone(rawPhone)
	if err != nil {
		return err
	}
	return s.queueRequest(ctx, SMSOTP, number, c)
}

// otpMessage decides what an accepted sign-in code request sends (linkEmail's part):
// a code and link to an account that is not disabled and whose address is proven or has
// no password (or, with OTP_SIGNUP, to a new account of an address that has none), an SMS
// code to the account of a verified number, each while the address's or number's budget
// lasts.
func (s *Service) otpMessage(ctx context.Context, r EmailRequest, u *User) (*LinkEmail, EmailOutcome, error) {
	if u != nil && (u.DisabledAt != nil || (!u.Verified() && u.PasswordHash != "")) {
		// An unproven address with a password may be anyone's sign-up: a code proving
		// it would hand its owner an account whose password a stranger set (the
		// pre-hijack of an account). Its owner verifies it, or resets the password.
		return nil, EmailNotNeeded, nil
	}
	expires := s.now().Add(CodeTTL).UTC()
	code := newCode()
	if r.Kind == SMSOTP {
		if u == nil {
			return nil, EmailNoAccount, nil
		}
		var limited *RateLimitedError
		if err := s.spendSMS(ctx, bucketSMSSignIn, u.Phone); errors.As(err, &limited) {
			return nil, EmailBudgetSpent, nil
		} else if err != nil {
			return nil, "", err
		}
		// The row's token is never sent: an SMS sign-in has only its code.
		_, tok := accounts.NewToken(u.ID, PurposeOTPSMS, expires)
		tok.CodeHash = CodeHash(PurposeOTPSMS, u.Phone, code)
		return &LinkEmail{Token: tok, Event: Event{Subject: events.SubjectSMSCodeRequested, Payload: events.SMSCodeRequested{
			UserID: u.ID, Phone: u.Phone, Purpose: events.SMSPurposeSignIn, Code: code, ExpiresAt: expires}}}, EmailSent, nil
	}
	var created *User
	if u == nil {
		if !s.cfg.OTPSignup {
			return nil, EmailNoAccount, nil
		}
		created = &User{ID: uuid.Must(uuid.NewV7()).String(), Email: r.Email, Roles: s.cfg.AdminEmails.Roles(r.Email, false)}
		u = created
	}
	if send, err := s.spendEmail(ctx, ratelimit.BucketLinks, u.Email); err != nil {
		return nil, "", err
	} else if !send {
		return nil, EmailBudgetSpent, nil
	}
	raw, tok := accounts.NewToken(u.ID, PurposeOTPEmail, expires)
	tok.CodeHash = CodeHash(PurposeOTPEmail, u.Email, code)
	mail := &LinkEmail{Token: tok, NewUser: created, Event: Event{Subject: events.SubjectOTPRequested, Payload: events.OTPRequested{
		UserID: u.ID, Email: u.Email, Name: u.Name, Code: code, Token: raw, ExpiresAt: expires}}}
	if created != nil {
		mail.More = []Event{{Subject: events.SubjectRegistered, Payload: events.Registered{UserID: u.ID, Method: "otp",
			IP: r.IP, UserAgent: r.UserAgent}}}
	}
	return mail, EmailSent, nil
}

// OTPAttempt is a sign-in with a one-time code: Email and Code, Phone and Code, or
// Token (the emailed link's).
type OTPAttempt struct {
	Email, Phone, Code, Token string
}

// VerifyOTP signs in with an emailed code or link (amr otp) or an SMS code (amr sms).
// Every refusal is the same ErrInvalidCode for every address, after the same work: one
// statement that spends the guess. Code guesses count in the login throttle of the
// address or number (as passwords do, unknown ones too) and the CodeMaxAttempts-th wrong
// one burns the code; a link's 256 bits need no throttle but the per-IP budget. An emailed code proves the address. With MFA on the answer is the second
// factor's challenge.
func (s *Service) VerifyOTP(ctx context.Context, a OTPAttempt, c Client) (TokenPair, error) {
	if err := s.allow(ctx, LimitLogin, c.IP, "too_many_attempts"); err != nil {
		return TokenPair{}, err
	}
	if err := s.codesReady(); err != nil {
		return TokenPair{}, err
	}
	proven := func(u User, p Proof) []Event {
		if !p.WasUnverified {
			return proofEvents(u, p)
		}
		return append([]Event{{Subject: events.SubjectEmailVerified, Payload: events.EmailVerified{UserID: u.ID,
			Email: u.Email, Name: u.Name}}}, proofEvents(u, p)...)
	}
	var (
		use  CodeUse
		amr  = "otp"
		key  string // the login throttle's account
		err  error
		fail = func(reason string) (TokenPair, error) {
			var known *User
			if use.User.ID != "" {
				known = &use.User
			}
			s.loginFailed(ctx, known, key, reason, c)
			return TokenPair{}, ErrInvalidCode
		}
	)
	switch {
	case a.Token != "" && a.Email == "" && a.Phone == "" && a.Code == "":
		hash, ok := accounts.HashToken(a.Token)
		if !ok {
			return TokenPair{}, ErrInvalidCode
		}
		if use, err = s.codes.UseOTPLink(ctx, hash, proven); err != nil {
			return TokenPair{}, err
		}
		key = use.User.Email
	case a.Code != "" && a.Token == "" && (a.Email == "") != (a.Phone == ""):
		if a.Phone != "" {
			if err := s.smsReady(); err != nil {
				return TokenPair{}, err
			}
			amr = "sms"
			if key, err = s.parsePhone(a.Phone); err != nil {
				return TokenPair{}, ErrInvalidCode // no account has such a number
			}
		} else if key, err = emailaddr.Normalize(a.Email); err != nil {
			return TokenPair{}, ErrInvalidCode
		}
		if !codeShaped(a.Code) {
			return TokenPair{}, ErrInvalidCode
		}
		// Counted before the code is checked, for unknown addresses exactly as for
		// real ones; while throttled even the right code only learns the wait.
		if err := s.loginAttempt(ctx, key, c.IP); err != nil {
			return TokenPair{}, err
		}
		purpose := PurposeOTPEmail
		if amr == "sms" {
			purpose = PurposeOTPSMS
		}
		if use, err = s.codes.UseCode(ctx, purpose, key, CodeHash(purpose, key, a.Code), CodeMaxAttempts, proven); err != nil {
			return TokenPair{}, err
		}
	default:
		return TokenPair{}, ErrInvalidRequest
	}
	if use.Result != CodeRight {
		return fail("invalid_code")
	}
	u := use.User
	if use.Proof.WasUnverified || len(use.Proof.Unlinked) > 0 {
		// The credential stamp moved (proveAddress): the sessions opened before end.
		if _, err := s.sessions.RevokeAll(ctx, u.ID, ""); err != nil {
			return TokenPair{}, fmt.Errorf("revoke sessions: %w", err)
		}
	}
	if err := s.admit(ctx, u, key, c); err != nil {
		return TokenPair{}, err
	}
	if u, err = s.grantConfiguredAdmin(ctx, u); err != nil {
		return TokenPair{}, err
	}
	if u.MFAEnabled {
		return s.startMFA(ctx, u, []string{amr}, c)
	}
	pair, err := s.core.Open(ctx, u, []string{amr}, c)
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, events.SubjectLoginSucceeded, events.LoginSucceeded{UserID: u.ID, SessionID: pair.SessionID,
		AMR: []string{amr}, IP: c.IP, UserAgent: c.UserAgent})
	return pair, nil
}

// StartPhoneVerification sends a 6-digit code by SMS to a number the caller wants on
// the account: a credential change (SMS signs in), so it needs a recent sign-in or the
// current password. The number is set only once the code comes back (VerifyPhone);
// whether it is another account's is not told here, to someone who has not proven it.
func (s *Service) StartPhoneVerification(ctx context.Context, p Principal, rawPhone, currentPassword string, c Client) error {
	u, err := s.changer(ctx, p, s.smsReady)
	if err != nil {
		return err
	}
	if rawPhone == "" {
		return ErrInvalidRequest
	}
	if err := s.allow(ctx, LimitOTP, c.IP, "rate_limited"); err != nil {
		return err
	}
	number, err := s.parsePhone(rawPhone)
	if err != nil {
		return err
	}
	if err := s.reauth(ctx, p, u, currentPassword); err != nil {
		return err
	}
	if err := s.spendSMS(ctx, bucketSMSVerify, number); err != nil {
		return err
	}
	expires := s.now().Add(CodeTTL).UTC()
	code := newCode()
	_, tok := accounts.NewToken(u.ID, PurposePhoneVerification, expires)
	tok.CodeHash, tok.Phone = CodeHash(PurposePhoneVerification, u.ID, code), number
	return s.codes.IssueCode(ctx, tok, Event{Subject: events.SubjectSMSCodeRequested, Payload: events.SMSCodeRequested{
		UserID: u.ID, Phone: number, Purpose: events.SMSPurposePhoneVerification, Code: code, ExpiresAt: expires}})
}

// VerifyPhone sets the number of the caller's pending phone verification when code is
// its code; the account's address is told (a notice email).
func (s *Service) VerifyPhone(ctx context.Context, p Principal, code string) (User, error) {
	u, err := s.changer(ctx, p, s.smsReady)
	if err != nil {
		return User{}, err
	}
	if code == "" {
		return User{}, ErrInvalidRequest
	}
	if !codeShaped(code) {
		return User{}, ErrWrongPhoneCode
	}
	use, err := s.codes.VerifyPhone(ctx, u.ID, CodeHash(PurposePhoneVerification, u.ID, code), CodeMaxAttempts,
		func(u User, previous string) []Event {
			return []Event{{Subject: events.SubjectPhoneVerified, Payload: events.PhoneVerified{UserID: u.ID, Email: u.Email,
				Name: u.Name, Phone: u.Phone, PreviousPhone: previous}}}
		})
	if err != nil {
		return User{}, err
	}
	if use.Result != CodeRight {
		return User{}, ErrWrongPhoneCode
	}
	return use.User, nil
}

// withFactor adds a second factor to a first factor's amr: a factor of the same kind
// twice (an emailed code, then a TOTP: both "otp") is said once, with "mfa".
func withFactor(first []string, factor string) []string {
	amr := slices.Clone(first)
	if !slices.Contains(amr, factor) {
		return append(amr, factor)
	}
	if !slices.Contains(amr, "mfa") {
		amr = append(amr, "mfa")
	}
	return amr
}

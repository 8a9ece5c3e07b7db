// Package signin holds the oauth service's use cases: starting and finishing a social
// sign-in, choosing the account an identity signs in to, linking and unlinking, and
// turning a one-time code into the same session and tokens that auth issues.
package signin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
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
	ErrUnauthorized    = errors.New("unauthorized")
	ErrAccountDisabled = errors.New("account disabled")
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

// Event subjects of the oauth service (docs/events.md).
const (
	SubjectSignedIn        = "auth.oauth.signed_in"
	SubjectIdentityLinked  = "auth.oauth.identity_linked"
	SubjectIdentityUnlink  = "auth.oauth.identity_unlinked"
	SubjectAccountReplaced = "auth.oauth.unverified_account_replaced"
	SubjectUserRegistered  = "auth.user.registered"
	// The emails of auth's sign-up, sent for a provider that did not vouch for an address.
	SubjectVerificationRequested = "auth.email.verification_requested"
	SubjectRegisterExisting      = "auth.email.register_existing"
)

// Client is who made the request.
type Client struct{ IP, UserAgent string }

// Config holds the settings the use cases obey.
type Config struct {
	// RedirectAllowlist: prefixes (scheme, host, path) a redirect_to must start with.
	RedirectAllowlist []string
	AdminEmails       []string
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
	providers  map[string]*providers.Provider
	order      []*providers.Provider
	flow       *flow.Store
	store      *store.Store
	sessions   *session.Store
	challenges *mfachallenge.Store
	issuer     *token.Issuer
	verifier   *token.Verifier
	cfg        Config
	allow      []*url.URL
	metrics    Metrics
	budget     Budget
	log        *zap.Logger
}

// New returns the service; the allowlist's entries must be absolute http(s) URLs.
func New(ps []*providers.Provider, fl *flow.Store, st *store.Store, sessions *session.Store, challenges *mfachallenge.Store,
	issuer *token.Issuer, verifier *token.Verifier, cfg Config, m Metrics, budget Budget, log *zap.Logger) (*Service, error) {
	if cfg.VerificationTTL <= 0 {
		cfg.VerificationTTL = 24 * time.Hour
	}
	s := &Service{providers: map[string]*providers.Provider{}, order: ps, flow: fl, store: st, sessions: sessions,
		challenges: challenges,
		issuer:     issuer, verifier: verifier, cfg: cfg, metrics: m, budget: budget, log: log}
	for _, p := range ps {
		s.providers[p.Name] = p
	}
	for _, raw := range cfg.RedirectAllowlist {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("OAUTH_REDIRECT_ALLOWLIST: %q is not an absolute http(s) URL", raw)
		}
		s.allow = append(s.allow, u)
	}
	return s, nil
}

// Providers lists the configured providers.
func (s *Service) Providers() []*providers.Provider { return s.order }

// Principal is the caller of a Bearer route.
type Principal struct {
	UserID, SessionID string
	User              store.User
}

// Authenticate checks an access token the way auth does: signature and claims, a live
// session, an enabled account.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.verifier.Verify(raw)
	if err != nil {
		return Principal{}, ErrUnauthorized
	}
	sess, err := s.sessions.Get(ctx, claims.Subject, claims.SessionID)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return Principal{}, ErrUnauthorized
		}
		return Principal{}, err
	}
	u, err := s.store.UserByID(ctx, claims.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.DisabledAt != nil || !sess.Stamped(u.CredentialStamp))) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{UserID: u.ID, SessionID: claims.SessionID, User: u}, nil
}

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
	if err := s.checkRedirect(redirectTo); err != nil {
		return Started{}, err
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

// checkRedirect accepts a redirect_to only when it is an absolute http(s) URL without
// user info or fragment, its scheme and host (with port) equal an allowlist entry's,
// and its path is already clean and starts with the entry's path at a segment boundary.
//
// The path is judged as the browser will read it: percent-decoded, it may hold no
// "." or ".." segment (browsers resolve "%2e%2e" like ".."), no empty segment, no
// encoded "/" or "\" and no "%" left over (double encoding such as "%252e"), and
// resolving dot segments must leave it unchanged. The comparison with the entry is
// made on that decoded, clean path.
func (s *Service) checkRedirect(raw string) error {
	if raw == "" || len(raw) > 2048 || strings.ContainsFunc(raw, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\\' || r == '#'
	}) {
		return ErrInvalidRedirect
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" ||
		u.Opaque != "" || u.Fragment != "" || strings.Contains(u.Host, "%") {
		return ErrInvalidRedirect
	}
	p, ok := cleanPath(u)
	if !ok {
		return ErrInvalidRedirect
	}
	for _, a := range s.allow {
		if u.Scheme != a.Scheme || !strings.EqualFold(u.Host, a.Host) {
			continue
		}
		prefix := strings.TrimSuffix(a.Path, "/")
		if prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") {
			return nil
		}
	}
	return ErrInvalidRedirect
}

// cleanPath returns u's percent-decoded path ("/" when empty), or false when the path
// holds a dot segment, an empty segment (a trailing "/" aside), an encoded slash or
// backslash, a leftover "%" (double encoding) or a control character.
func cleanPath(u *url.URL) (string, bool) {
	escaped := strings.ToLower(u.EscapedPath())
	if strings.Contains(escaped, "%2f") || strings.Contains(escaped, "%5c") || strings.Contains(escaped, "%25") {
		return "", false
	}
	p := u.Path // url.Parse has percent-decoded it once
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsFunc(p, func(r rune) bool {
		return r < ' ' || r == 0x7f || r == '\\' || r == '%'
	}) {
		return "", false
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && !(i == 0 && len(segs) == 1)) {
			return "", false
		}
	}
	// Belt and braces: resolving dot segments changes nothing.
	if c := path.Clean(p); c != strings.TrimSuffix(p, "/") && c != p {
		return "", false
	}
	return p, true
}

func withParam(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

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
	p, ok := s.providers[providerName]
	switch {
	case !ok || st.Provider != providerName:
		return fail(CodeInvalidState)
	case !st.BoundTo(binding):
		return fail(CodeBrowserMismatch)
	case q.Get("error") == "access_denied":
		return fail(CodeAccessDenied)
	case q.Get("error") != "":
		s.metricsProviderError(p.Name, "authorize_error")
		return fail(CodeProviderError)
	case q.Get("code") == "" || len(q.Get("code")) > 2048:
		return fail(CodeInvalidRequest)
	}
	id, err := p.Exchange(ctx, q.Get("code"), st.Verifier, st.Nonce)
	if err != nil {
		s.providerError(p.Name, err)
		switch {
		case errors.Is(err, providers.ErrRejected):
			return fail(CodeExchangeFailed)
		case errors.Is(err, providers.ErrInvalidIDToken):
			return fail(CodeInvalidIDToken)
		default:
			return fail(CodeProviderUnavailable)
		}
	}
	ident := store.Identity{Provider: id.Provider, Subject: id.Subject, Name: id.Name}
	if e, err := emailaddr.Normalize(id.Email); err == nil {
		ident.Email, ident.EmailVerified = e, id.EmailVerified
	}
	if st.LinkUserID != "" {
		return s.finishLink(ctx, st, ident, c, fail)
	}
	u, err := s.resolve(ctx, ident, c)
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return fail(CodeEmailTaken)
	case errors.Is(err, errUnproven):
		return fail(CodeEmailNotVerified)
	case errors.Is(err, errNoEmail):
		return fail(CodeEmailRequired)
	case errors.Is(err, store.ErrIdentityTaken):
		return fail(CodeIdentityTaken)
	case err != nil:
		s.log.Error("oauth sign-in", zap.String("provider", providerName), zap.Error(err))
		return fail(CodeServerError)
	case u.DisabledAt != nil:
		return fail(CodeAccountDisabled)
	}
	code := flow.Random()
	if err := s.flow.PutCode(ctx, code, flow.Code{UserID: u.ID, Provider: p.Name, Subject: ident.Subject,
		IP: c.IP, UserAgent: c.UserAgent}); err != nil {
		s.log.Error("store one-time code", zap.Error(err))
		return fail(CodeServerError)
	}
	s.count(p.Name, "success")
	return withParam(st.RedirectTo, "code", code), nil
}

func (s *Service) finishLink(ctx context.Context, st flow.State, id store.Identity, c Client, fail func(string) (string, error)) (string, error) {
	// The session that asked may have ended since: linking needs it alive.
	if _, err := s.sessions.Get(ctx, st.LinkUserID, st.LinkSessionID); err != nil {
		return fail(CodeSessionEnded)
	}
	id.UserID = st.LinkUserID
	err := s.store.Link(ctx, id, events.Event{Subject: SubjectIdentityLinked, Payload: map[string]any{
		"provider": id.Provider, "subject": id.Subject, "how": "signed_in_user", "session_id": st.LinkSessionID,
		"ip": c.IP, "user_agent": c.UserAgent}})
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
	signedIn := func(how string) events.Event {
		return events.Event{Subject: SubjectSignedIn, Payload: map[string]any{"provider": id.Provider,
			"subject": id.Subject, "how": how, "ip": c.IP, "user_agent": c.UserAgent}}
	}
	for attempt := 0; ; attempt++ {
		u, err := s.store.UserByIdentity(ctx, id.Provider, id.Subject)
		if err == nil {
			if s.cfg.EmailVerificationRequired && !u.Verified() {
				return store.User{}, errUnproven
			}
			id.UserID = u.ID
			return u, s.store.SignedIn(ctx, id, signedIn("identity"))
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.User{}, err
		}
		if id.Email == "" {
			return store.User{}, errNoEmail
		}
		nu := store.NewUser{Email: id.Email, Name: clip(id.Name, 200), Verified: id.EmailVerified, Roles: []string{"user"}}
		if nu.Verified && slices.Contains(s.cfg.AdminEmails, nu.Email) {
			nu.Roles = []string{"admin", "user"}
		}
		existing, err := s.store.UserByEmail(ctx, id.Email)
		if !id.EmailVerified && s.cfg.EmailVerificationRequired && (err == nil || errors.Is(err, store.ErrNotFound)) {
			var owner *store.User
			if err == nil {
				owner = &existing
			}
			err = s.proveAddress(ctx, owner, nu, id, c)
			raced := errors.Is(err, store.ErrChanged) || errors.Is(err, store.ErrEmailTaken)
			if raced && attempt < 2 {
				continue // created or verified meanwhile: decide again
			}
			if err == nil || raced {
				err = errUnproven
			}
			return store.User{}, err
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			u, err = s.store.CreateUser(ctx, nu, id,
				events.Event{Subject: SubjectUserRegistered, Payload: map[string]any{"method": "oauth",
					"provider": id.Provider, "ip": c.IP, "user_agent": c.UserAgent}},
				signedIn("new_account"))
		case err != nil:
			return store.User{}, err
		case !id.EmailVerified:
			return store.User{}, store.ErrEmailTaken
		case existing.Verified():
			id.UserID = existing.ID
			err = s.store.Link(ctx, id,
				events.Event{Subject: SubjectIdentityLinked, Payload: map[string]any{"provider": id.Provider,
					"subject": id.Subject, "how": "verified_email", "ip": c.IP, "user_agent": c.UserAgent}},
				signedIn("verified_email"))
			u = existing
		default:
			// The old account's sessions end in the transaction and again after the
			// commit. Neither is what stops its tokens: the store removes the account
			// from auth's cache too, so auth and this service answer them "user not
			// found" even if Redis failed both revocations (logged, not fatal).
			revoke := func(ctx context.Context) {
				if _, err := s.sessions.RevokeAll(ctx, existing.ID, ""); err != nil {
					s.log.Error("revoke replaced account's sessions", zap.String("user_id", existing.ID), zap.Error(err))
				}
			}
			u, err = s.store.ReplaceUnverified(ctx, existing.ID, nu, id,
				func(ctx context.Context) error { revoke(ctx); return nil },
				events.Event{Subject: SubjectAccountReplaced, Payload: map[string]any{"replaced_user_id": existing.ID,
					"provider": id.Provider, "ip": c.IP, "user_agent": c.UserAgent}},
				signedIn("replaced_unverified"))
			if err == nil {
				revoke(ctx)
			}
		}
		// A concurrent sign-in or registration changed the picture: decide again.
		retry := errors.Is(err, store.ErrChanged) || errors.Is(err, store.ErrEmailTaken) ||
			errors.Is(err, store.ErrIdentityTaken)
		if retry && attempt < 2 {
			continue
		}
		return u, err
	}
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
		return s.store.Notify(ctx, owner.ID, events.Event{Subject: SubjectRegisterExisting, Payload: map[string]any{
			"email": owner.Email, "name": owner.Name, "provider": id.Provider}})
	}
	raw := flow.Random()
	sum := sha256.Sum256([]byte(raw))
	p := store.Proof{Hash: sum[:], ExpiresAt: time.Now().Add(s.cfg.VerificationTTL).UTC(), Identity: id}
	mail := func(email, name string) events.Event {
		return events.Event{Subject: SubjectVerificationRequested, Payload: map[string]any{"email": email, "name": name,
			"token": raw, "expires_at": p.ExpiresAt, "provider": id.Provider}}
	}
	if owner != nil {
		return s.store.SendProof(ctx, owner.ID, p, mail(owner.Email, owner.Name))
	}
	nu.Verified, nu.Roles = false, []string{"user"}
	_, err := s.store.CreatePending(ctx, nu, p,
		events.Event{Subject: SubjectUserRegistered, Payload: map[string]any{"method": "oauth",
			"provider": id.Provider, "ip": c.IP, "user_agent": c.UserAgent}},
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

// Pair is a token pair, as auth answers it.
type Pair struct {
	// MFARequired: the account has MFA on; MFAToken finishes the login at auth.
	MFARequired  bool
	MFAToken     string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	User         store.User
}

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
	amr := []string{"oauth"}
	if u.MFAEnabled {
		// A provider's sign-in is one factor: an account with MFA on is entered only
		// with its second, at auth's /v1/auth/login/mfa (amr then oauth + otp).
		raw, hash := mfachallenge.NewToken()
		if err := s.challenges.Create(ctx, hash, mfachallenge.Challenge{UserID: u.ID, IP: rec.IP,
			UserAgent: rec.UserAgent, AMR: amr, Stamp: u.CredentialStamp}, mfachallenge.TTL); err != nil {
			return Pair{}, err
		}
		return Pair{MFARequired: true, MFAToken: raw, User: u}, nil
	}
	sess, rt, err := s.sessions.Create(ctx, u.ID, u.Email, amr, u.CredentialStamp, session.Meta{IP: rec.IP, UserAgent: rec.UserAgent})
	if err != nil {
		return Pair{}, err
	}
	at, _, err := s.issuer.Issue(u.ID, sess.ID, sess.CreatedAt, u.Roles, amr)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: at, RefreshToken: rt, ExpiresIn: s.issuer.TTL(), User: u}, nil
}

// Identities lists the caller's identities.
func (s *Service) Identities(ctx context.Context, p Principal) ([]store.Identity, error) {
	return s.store.Identities(ctx, p.UserID)
}

// Unlink removes the caller's identity of provider, unless it is their last way in.
func (s *Service) Unlink(ctx context.Context, p Principal, provider string, c Client) error {
	return s.store.Unlink(ctx, p.UserID, provider, events.Event{Subject: SubjectIdentityUnlink,
		Payload: map[string]any{"provider": provider, "session_id": p.SessionID, "ip": c.IP, "user_agent": c.UserAgent}})
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

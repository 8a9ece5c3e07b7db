// Package providers talks to the social-login providers: GitHub (and GitHub Enterprise)
// and OpenID Connect issuers. goth knows each provider's endpoints and user documents;
// this package adds what goth leaves out: PKCE on the code exchange, ID token
// verification (signature, issuer, audience, expiry, nonce) with go-oidc, GitHub's
// verified primary address, timeouts and a circuit breaker per provider.
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/markbates/goth"
	"github.com/markbates/goth/providers/github"
	"github.com/markbates/goth/providers/openidConnect"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"

	"github.com/talentforge/auth/pkg/config"
)

// Errors, each a different ?error= on the redirect back to the app.
var (
	// ErrUnavailable: the provider did not answer in time, answered 5xx, or its
	// breaker is open.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRejected: the provider refused the code exchange (a forged, reused or
	// injected code, or a PKCE verifier that does not match).
	ErrRejected = errors.New("provider rejected the code")
	// ErrInvalidIDToken: the ID token failed verification or its nonce is not ours.
	ErrInvalidIDToken = errors.New("invalid id token")
)

// Identity is what a provider vouches for about the person who signed in.
type Identity struct {
	Provider, Subject, Email, Name string
	// EmailVerified is true only when the provider says it verified Email.
	EmailVerified bool
}

// Kind tells GitHub's protocol from OpenID Connect.
type Kind int

const (
	KindGitHub Kind = iota
	KindOIDC
)

// Provider is one configured provider.
type Provider struct {
	Name, DisplayName string
	Kind              Kind

	reg      config.OAuthProvider
	callback string
	client   *http.Client
	breaker  *gobreaker.CircuitBreaker[any]

	mu       sync.Mutex
	ready    bool
	oauth    oauth2.Config
	goth     goth.Provider
	verifier *oidc.IDTokenVerifier
	emails   string // GitHub's /user/emails
}

// Options tune every provider.
type Options struct {
	// Timeout bounds each call to a provider.
	Timeout time.Duration
	// CallbackBase is OAUTH_CALLBACK_BASE_URL: the callback is {base}/v1/oauth/{name}/callback.
	CallbackBase string
	// OnStateChange reports breaker transitions (metrics, logs).
	OnStateChange func(provider string, to gobreaker.State)
}

// New returns the enabled providers of cfg, in a stable order. OIDC discovery happens
// on first use and is retried while it fails, so a provider that is down at start does
// not stop the service.
func New(ps config.OAuthProviders, o Options) []*Provider {
	var out []*Provider
	add := func(reg config.OAuthProvider, display string, kind Kind) {
		if !reg.Enabled() {
			return
		}
		p := &Provider{Name: reg.Name, DisplayName: display, Kind: kind, reg: reg,
			callback: o.CallbackBase + "/v1/oauth/" + reg.Name + "/callback",
			client:   &http.Client{Timeout: o.Timeout}}
		p.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
			Name:    reg.Name,
			Timeout: 30 * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= 5
			},
			// Only the provider's own failures trip it; a bad code is the caller's.
			IsSuccessful: func(err error) bool { return err == nil || !errors.Is(err, ErrUnavailable) },
			OnStateChange: func(name string, _, to gobreaker.State) {
				if o.OnStateChange != nil {
					o.OnStateChange(name, to)
				}
			},
		})
		out = append(out, p)
	}
	add(ps.Google, "Google", KindOIDC)
	add(ps.GitHub, "GitHub", KindGitHub)
	if ps.OIDC.Enabled() {
		add(ps.OIDC, displayName(ps.OIDC.Name), KindOIDC)
	}
	return out
}

func displayName(name string) string {
	parts := strings.Split(name, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, " ")
}

// init resolves the endpoints (OIDC discovery) once it succeeds.
func (p *Provider) init(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return nil
	}
	switch p.Kind {
	case KindGitHub:
		base, api := p.reg.BaseURL, p.reg.APIURL
		gh := github.NewCustomisedURL(p.reg.ClientID, p.reg.ClientSecret, p.callback,
			base+"/login/oauth/authorize", base+"/login/oauth/access_token", api+"/user", api+"/user/emails",
			"read:user", "user:email")
		gh.HTTPClient = p.client
		p.goth, p.emails = gh, api+"/user/emails"
		p.oauth = oauth2.Config{ClientID: p.reg.ClientID, ClientSecret: p.reg.ClientSecret, RedirectURL: p.callback,
			Endpoint: oauth2.Endpoint{AuthURL: base + "/login/oauth/authorize", TokenURL: base + "/login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams},
			Scopes: []string{"read:user", "user:email"}}
	case KindOIDC:
		dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.client), p.client.Timeout)
		defer cancel()
		op, err := oidc.NewProvider(dctx, p.reg.Issuer)
		if err != nil {
			return fmt.Errorf("%w: discovery at %s: %w", ErrUnavailable, p.reg.Issuer, err)
		}
		var meta struct {
			UserInfo string `json:"userinfo_endpoint"`
		}
		_ = op.Claims(&meta)
		ep := op.Endpoint()
		scopes := []string{oidc.ScopeOpenID, "email", "profile"}
		g, err := openidConnect.NewCustomisedURL(p.reg.ClientID, p.reg.ClientSecret, p.callback,
			ep.AuthURL, ep.TokenURL, p.reg.Issuer, meta.UserInfo, "", scopes...)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		g.HTTPClient = p.client
		g.SetName(p.Name)
		p.goth = g
		p.oauth = oauth2.Config{ClientID: p.reg.ClientID, ClientSecret: p.reg.ClientSecret, RedirectURL: p.callback,
			Endpoint: ep, Scopes: scopes}
		// Signature, issuer, audience and expiry; the nonce is checked by the caller.
		p.verifier = op.VerifierContext(oidc.ClientContext(context.Background(), p.client),
			&oidc.Config{ClientID: p.reg.ClientID})
	}
	p.ready = true
	return nil
}

// AuthCodeURL is where the browser goes to sign in: with state, the PKCE S256
// challenge of verifier and, for OpenID Connect, the nonce.
func (p *Provider) AuthCodeURL(ctx context.Context, state, verifier, nonce string) (string, error) {
	if _, err := p.breaker.Execute(func() (any, error) { return nil, p.init(ctx) }); err != nil {
		return "", unavailable(err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.Kind == KindOIDC {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	return p.oauth.AuthCodeURL(state, opts...), nil
}

// Exchange trades the code for the provider's tokens (sending the PKCE verifier), checks
// the ID token and reads the user.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	v, err := p.breaker.Execute(func() (any, error) {
		if err := p.init(ctx); err != nil {
			return nil, err
		}
		return p.exchange(ctx, code, verifier, nonce)
	})
	if err != nil {
		return Identity{}, unavailable(err)
	}
	return v.(Identity), nil
}

// unavailable turns an open breaker into ErrUnavailable.
func unavailable(err error) error {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (p *Provider) exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, p.client), p.client.Timeout)
	defer cancel()
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Identity{}, fmt.Errorf("%w: %s", ErrRejected, re.ErrorCode)
		}
		return Identity{}, fmt.Errorf("%w: token exchange: %w", ErrUnavailable, err)
	}
	switch p.Kind {
	case KindGitHub:
		return p.githubUser(ctx, tok)
	default:
		return p.oidcUser(ctx, tok, nonce)
	}
}

func (p *Provider) oidcUser(ctx context.Context, tok *oauth2.Token, nonce string) (Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the answer", ErrInvalidIDToken)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	if nonce == "" || idt.Nonce != nonce {
		return Identity{}, fmt.Errorf("%w: nonce mismatch", ErrInvalidIDToken)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %w", ErrInvalidIDToken, err)
	}
	id := Identity{Provider: p.Name, Subject: idt.Subject, Email: claims.Email, Name: claims.Name,
		EmailVerified: claims.Email != "" && truthy(claims.EmailVerified)}
	// goth reads the profile (ID token claims merged with userinfo); the address and
	// its verified flag come only from the verified ID token.
	u, err := p.goth.FetchUser(&openidConnect.Session{AccessToken: tok.AccessToken, IDToken: raw, ExpiresAt: tok.Expiry})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: user info: %w", ErrUnavailable, err)
	}
	if u.UserID != "" && u.UserID != idt.Subject {
		return Identity{}, fmt.Errorf("%w: userinfo subject differs", ErrInvalidIDToken)
	}
	if id.Name == "" {
		id.Name = firstNonEmpty(u.Name, u.NickName)
	}
	return id, nil
}

// truthy reads email_verified, which some issuers send as a string.
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

func (p *Provider) githubUser(ctx context.Context, tok *oauth2.Token) (Identity, error) {
	u, err := p.goth.FetchUser(&github.Session{AccessToken: tok.AccessToken})
	if err != nil && !errors.Is(err, github.ErrNoVerifiedGitHubPrimaryEmail) {
		return Identity{}, fmt.Errorf("%w: user: %w", ErrUnavailable, err)
	}
	if u.UserID == "" || u.UserID == "0" {
		return Identity{}, fmt.Errorf("%w: user without id", ErrRejected)
	}
	id := Identity{Provider: p.Name, Subject: u.UserID, Name: firstNonEmpty(u.Name, u.NickName)}
	// The public profile address may be unverified: only the primary address of
	// /user/emails, with its verified flag, is used.
	id.Email, id.EmailVerified, err = p.primaryEmail(ctx, tok.AccessToken)
	if err != nil {
		return Identity{}, err
	}
	return id, nil
}

func (p *Provider) primaryEmail(ctx context.Context, accessToken string) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.emails, nil)
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	res, err := p.client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("%w: emails: %w", ErrUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("%w: emails answered %d", ErrUnavailable, res.StatusCode)
	}
	var list []githubEmail
	if err := json.NewDecoder(http.MaxBytesReader(nil, res.Body, 1<<20)).Decode(&list); err != nil {
		return "", false, fmt.Errorf("%w: emails: %w", ErrUnavailable, err)
	}
	if i := slices.IndexFunc(list, func(e githubEmail) bool { return e.Primary }); i >= 0 {
		return list[i].Email, list[i].Verified, nil
	}
	return "", false, nil
}

// githubEmail is one entry of GitHub's GET /user/emails.
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// Package app composes the auth service: config in, a ready server out. main and the
// integration tests build the service through the same function, so the tests run
// exactly what production runs.
package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/platform"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/redirect"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/tokenhook"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/auth/apidoc"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/api"
	"github.com/talentforge/auth/services/auth/internal/browser"
	"github.com/talentforge/auth/services/auth/internal/emailqueue"
	"github.com/talentforge/auth/services/auth/internal/flags"
	"github.com/talentforge/auth/services/auth/internal/passkey"
	"github.com/talentforge/auth/services/auth/internal/phone"
	"github.com/talentforge/auth/services/auth/internal/store"
	"github.com/talentforge/auth/services/auth/internal/ui"
	"github.com/talentforge/auth/services/auth/internal/webhooks"
)

// JWKSMaxAge is how long caches may keep the JWKS; a new key waits as long before it signs.
const JWKSMaxAge = 5 * time.Minute

// RedisPoolSize is the Redis connection pool (per node): see New.
const RedisPoolSize = 128

// VerifiedTokenCacheSize bounds the access tokens whose verified signature is
// remembered (about 1 KiB each).
const VerifiedTokenCacheSize = 100_000

// registerPprof serves the Go profiler under /debug/pprof/ (PPROF_ENABLED, off by
// default: it is unauthenticated, so expose it only where the metrics are).
func registerPprof(e *echo.Echo) {
	g := e.Group("/debug/pprof")
	g.GET("/", echo.WrapHandler(http.HandlerFunc(pprof.Index)))
	g.GET("/cmdline", echo.WrapHandler(http.HandlerFunc(pprof.Cmdline)))
	g.GET("/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	g.GET("/symbol", echo.WrapHandler(http.HandlerFunc(pprof.Symbol)))
	g.POST("/symbol", echo.WrapHandler(http.HandlerFunc(pprof.Symbol)))
	g.GET("/trace", echo.WrapHandler(http.HandlerFunc(pprof.Trace)))
	g.GET("/:name", echo.WrapHandler(http.HandlerFunc(pprof.Index)))
}

// passkeys is the relying party of WEBAUTHN_RP_*, or, without one (PUBLIC_URL on an IP
// address and no WEBAUTHN_RP_ID), passkeys off: their routes answer 404 feature_disabled.
func passkeys(cfg *config.Config, log *zap.Logger, users *store.Users, a *App) (account.Option, error) {
	if cfg.WebAuthnRPID == "" {
		log.Warn("passkeys are off: PUBLIC_URL's host is an IP address and WEBAUTHN_RP_ID is not set")
		return func(*account.Service) {}, nil
	}
	rp, err := passkey.New(passkey.Config{RPID: cfg.WebAuthnRPID, RPName: cfg.WebAuthnRPName, Origins: cfg.WebAuthnRPOrigins})
	if err != nil {
		return nil, err
	}
	return account.WithPasskeys(store.NewPasskeys(users), rp, passkey.NewFlows(a.Redis)), nil
}

// smsPolicy reads phone numbers with SMS_DEFAULT_REGION and SMS_ALLOWED_COUNTRIES, or,
// with SMS_PROVIDER=none, is nil: no SMS can be sent, so the phone routes and SMS
// sign-in answer 404 feature_disabled.
func smsPolicy(cfg *config.Config, log *zap.Logger) (*phone.Policy, error) {
	if cfg.SMSProvider == "none" {
		log.Info("phone numbers and SMS codes are off: SMS_PROVIDER is none")
		return nil, nil
	}
	p, err := phone.NewPolicy(cfg.SMSDefaultRegion, cfg.SMSAllowedCountries)
	if err != nil {
		return nil, fmt.Errorf("SMS_DEFAULT_REGION or SMS_ALLOWED_COUNTRIES: %w", err)
	}
	return &p, nil
}

// App is the composed service.
type App struct {
	// Platform is PostgreSQL, Redis, NATS, the signing keys (Keys), EventKeys, which
	// seals the tokens of events (EVENT_KEYS; the token worker opens them), and Relay,
	// which publishes the outbox to JetStream: New runs it until ctx ends, unless
	// WithoutRelay.
	*platform.Platform
	Server *httpx.Server
	// MFA is the TOTP store; its secrets are sealed under MFA_ENCRYPTION_KEYS
	// (MFA.Reencrypt reseals them with the newest key).
	MFA *store.MFA
	// Emails processes the forgot-password and resend requests the service accepted;
	// New runs it until Close (not ctx: the requests answered while the server drains
	// are processed too), unless WithoutEmailProcessor.
	Emails *emailqueue.Processor
	// Accounts is the use cases; it is the handler of Emails (tests drive a processor
	// that does not run with it: Emails.ProcessDue, Emails.HouseKeep).
	Accounts *account.Service
	// Flags are the feature flags (FEATURE_FLAGS, then the admin API's changes in the
	// Redis hash flags.Key(NATS_NAMESPACE)); New refreshes them every second until ctx
	// ends or Close.
	Flags *flags.Flags
}

// Option changes how New composes the service.
type Option func(*options)

type options struct {
	noRelay  bool
	noEmails bool
}

// WithoutRelay builds App.Relay without running it, so the outbox keeps what the
// service wrote (the integration tests read events there; a test that needs the relay
// runs it).
func WithoutRelay() Option { return func(o *options) { o.noRelay = true } }

// WithoutEmailProcessor builds App.Emails without running it: the forgot-password and
// resend requests the service accepts stay in email_requests, as those of a replica that
// stopped right after answering, for another replica to take over (tests).
func WithoutEmailProcessor() Option { return func(o *options) { o.noEmails = true } }

// New connects to PostgreSQL, Redis and NATS, loads the signing keys (generating one in
// an empty dir, for dev) and the event keys, and builds the server. The key set reloads
// and the outbox relay runs until ctx ends or Close; NATS may be down meanwhile.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &App{}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if a.Platform, err = platform.Open(ctx, cfg, log, "auth",
		platform.WithEventKeys(), platform.WithMFAKeys(),
		// 32 connections (as many kept idle): the hot routes (verify, /users/me, refresh)
		// read PostgreSQL only on a user-cache miss, login and register are bound by the
		// hasher (PASSWORD_HASH_CONCURRENCY), so 32 covers a burst of misses and the
		// queries around the hashes while 3 replicas stay under max_connections=100.
		platform.WithDB(postgres.Options{MaxOpenConns: 32, StatementTimeout: 5 * time.Second}),
		// Every request holds one Redis connection for its round trip (verify and /users/me
		// one pipeline, refresh one script), so the pool is sized for the request
		// concurrency, not the cores: go-redis' default (10 per GOMAXPROCS, 20 here) made
		// requests beyond it queue in the pool, with a 4 s pool timeout, at 32 and 128 in
		// flight. 128 connections cost Redis (maxclients 10000) little; 16 are kept open so
		// a burst after a quiet spell does not start by dialling.
		platform.WithRedis(RedisPoolSize, 16),
		platform.WithNATS(),
		platform.WithRelay(!o.noRelay),
		platform.WithSigningKeys(platform.SigningKeys{Generate: true, PublishDelay: JWKSMaxAge}),
	); err != nil {
		return nil, err
	}
	reg := a.Metrics

	params := password.DefaultParams()
	params.Memory, params.Iterations, params.Parallelism =
		cfg.PasswordArgonMemoryKiB, cfg.PasswordArgonIterations, cfg.PasswordArgonParallelism
	sessions := session.New(a.Redis, session.WithIdleTTL(cfg.RefreshTokenTTL), session.WithMaxAge(cfg.SessionMaxAge),
		session.WithReuseGrace(cfg.RefreshReuseGrace))
	cache := store.NewUserCache(a.Redis, a.DB, sessions)
	users := store.NewUsers(a.DB, cache, a.EventKeys)
	a.MFA = store.NewMFA(users, a.MFAKeys)
	var breaches account.BreachChecker
	if cfg.PasswordBreachCheckURL != "" {
		breaches = password.NewBreachChecker(cfg.PasswordBreachCheckURL, nil, cfg.PasswordBreachCheckFailClosed)
	}
	rl := cfg.RateLimits
	guard := ratelimit.NewGuard(a.Redis, map[string]ratelimit.Limit{
		account.LimitGlobal: rl.Global, account.LimitLogin: rl.Login, account.LimitRegister: rl.Register,
		account.LimitForgot: rl.Forgot, account.LimitResend: rl.Resend, account.LimitRefresh: rl.Refresh,
		account.LimitEmailVerify: rl.EmailVerify, account.LimitMFA: rl.MFA, account.LimitEmails: rl.EmailsPerAddress,
		account.LimitVerifyInvalid: rl.Global, account.LimitOTP: rl.OTP, account.LimitSMS: rl.SMSPerNumber,
	}, cfg.LoginThrottle, cfg.RateLimitEnabled)
	// Forgot-password and resend answer once the request is stored; this processor
	// sends what it asks for (every replica runs one; see emailqueue).
	a.Emails = emailqueue.New(log, emailqueue.WithMetrics(reg))
	// ACCESS_TOKEN_HOOK_URL: every pair is shown to the hook before it is signed.
	hook, err := tokenhook.FromConfig(cfg.AccessTokenHook, reg, log)
	if err != nil {
		return nil, err
	}
	core := accounts.NewSessions(cache, sessions, accounts.JWT{
		Issuer: token.NewIssuer(a.Keys, cfg.PublicURL, cfg.JWTAudience, cfg.AccessTokenTTL),
		// Verified signatures are remembered until each token's exp (keyed by the
		// SHA-256 of the whole token, dropped with their key); the session and user
		// are still checked on every request, so a logout is seen at once.
		Verifier: token.NewVerifier(a.Keys, cfg.PublicURL, cfg.JWTAudience, token.WithVerifiedCache(VerifiedTokenCacheSize)),
	}, mfachallenge.New(a.Redis), accounts.WithHook(hook))
	withPasskeys, err := passkeys(cfg, log, users, a)
	if err != nil {
		return nil, err
	}
	phones, err := smsPolicy(cfg, log)
	if err != nil {
		return nil, err
	}
	svc := account.NewService(
		users, core, guard,
		// A full queue sheds logins after PASSWORD_HASH_QUEUE_TIMEOUT (503 overloaded)
		// rather than letting their latency grow without bound.
		password.NewHasher(params, cfg.PasswordHashConcurrency, cfg.PasswordHashQueueTimeout),
		account.Config{
			EmailVerificationRequired: cfg.EmailVerificationRequired,
			AdminEmails:               cfg.AdminEmails,
			Policy: password.Policy{MinLength: cfg.PasswordMinLength, MaxLength: cfg.PasswordMaxLength,
				MinStrength: cfg.PasswordMinStrength},
			Breaches:     breaches,
			ReauthMaxAge: cfg.ReauthMaxAge,
			OTPSignup:    cfg.OTPSignup,
		},
		account.WithLogger(log),
		account.WithMFA(a.MFA, store.NewMFAChallenges(a.Redis)),
		account.WithEmailRequests(store.NewEmailRequests(users), a.Emails.Wake),
		withPasskeys,
		account.WithCodes(store.NewCodes(users), phones),
	)
	a.Accounts = svc
	if !o.noEmails {
		// Stopped by Close, before PostgreSQL and Redis (closers run newest first).
		a.OnClose(a.Emails.Start(context.WithoutCancel(ctx), svc))
	}
	// A bad FEATURE_FLAGS stops the start here. Each deployment (each test) on a shared
	// Redis has its flags under its own namespace, as its streams on a shared NATS.
	if a.Flags, err = flags.New(ctx, flags.Options{Redis: a.Redis, DB: a.DB, EventKeys: a.EventKeys,
		Startup: cfg.FeatureFlags, Key: flags.Key(string(cfg.NATSNamespace)), Logger: log}); err != nil {
		return nil, err
	}
	a.OnClose(a.Flags.Start(ctx))

	// /readyz: postgres, redis and nats (the connection and the outbox relay).
	a.Server = httpx.New(log, reg, append(a.ServerOptions(),
		httpx.WithTrustedProxies(cfg.TrustedProxies),
		httpx.WithProblemJSON("/v2"),
		httpx.WithErrorMapper(api.MapError),
		httpx.WithOpenAPI(apidoc.YAML),
		httpx.WithCORS(cfg.CORSAllowedOrigins),
		// Token and profile answers are never compressed (BREACH); lists and JWKS are.
		httpx.WithGzip("/v1/auth", "/v2/auth", "/v1/users", "/v2/users", "/ui"),
		httpx.WithForms("/ui/"),
		httpx.WithShutdownTimeout(cfg.ShutdownTimeout),
	)...)
	adm := admin.NewService(store.NewAdmin(users), sessions)
	allow, err := redirect.Parse(cfg.OAuthRedirectAllowlist)
	if err != nil {
		return nil, err
	}
	browsers := browser.Policy{PublicURL: cfg.PublicURL, CookieDomain: cfg.SessionCookieDomain,
		Allowlist: allow, MaxAge: cfg.SessionMaxAge}
	api.New(svc, adm, a.Keys.JWKS, api.Config{Issuer: cfg.PublicURL, JWKSMaxAge: JWKSMaxAge,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins, RefreshTokenTTL: cfg.RefreshTokenTTL, V1Sunset: cfg.APIV1Sunset,
		ClaimHeaders: cfg.VerifyClaimHeaders,
		Flags:        a.Flags,
		Browser:      browsers,
		Webhooks:     webhooks.New(store.NewWebhooks(users), a.EventKeys, webhook.Policy{AllowPrivate: cfg.WebhookAllowPrivateNetworks}),
		Metrics:      reg}).Register(a.Server.Echo)
	pages, err := ui.New(svc, ui.Config{Browser: browsers, ProductName: cfg.WebAuthnRPName, Flags: a.Flags,
		OAuth: ui.NewOAuth(cfg.UIOAuthURL, log), ReauthMaxAge: cfg.ReauthMaxAge, Logger: log})
	if err != nil {
		return nil, err
	}
	pages.Register(a.Server.Echo)
	if cfg.PprofEnabled {
		registerPprof(a.Server.Echo)
	}
	return a, nil
}

// Close stops the email processor and the relay and releases every connection, newest
// first.
func (a *App) Close() error { return a.Platform.Close() }

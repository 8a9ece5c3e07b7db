// Package app composes the auth service: config in, a ready server out. main and the
// integration tests build the service through the same function, so the tests run
// exactly what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/redisx"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/auth/apidoc"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/api"
	"github.com/talentforge/auth/services/auth/internal/emailqueue"
	"github.com/talentforge/auth/services/auth/internal/store"
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

// App is the composed service.
type App struct {
	Server *httpx.Server
	DB     *postgres.DB
	Redis  redis.UniversalClient
	NATS   *nats.Conn
	Keys   *token.KeySet
	// EventKeys seals the tokens of events (EVENT_KEYS); the token worker opens them.
	EventKeys *events.Keyring
	// MFA is the TOTP store; its secrets are sealed under MFA_ENCRYPTION_KEYS
	// (MFA.Reencrypt reseals them with the newest key).
	MFA *store.MFA
	// Relay publishes the outbox to JetStream; New runs it until ctx ends, unless
	// WithoutRelay.
	Relay *events.Relay
	// Emails processes the forgot-password and resend requests the service accepted;
	// New runs it until Close (not ctx: the requests answered while the server drains
	// are processed too), unless WithoutEmailProcessor.
	Emails *emailqueue.Processor
	// Accounts is the use cases; it is the handler of Emails (tests drive a processor
	// that does not run with it: Emails.ProcessDue, Emails.HouseKeep).
	Accounts *account.Service
	closers  []func() error
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

// tokens joins the issuer and verifier that the use cases see as one.
type tokens struct {
	*token.Issuer
	*token.Verifier
}

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
	if a.EventKeys, err = cfg.EventKeyring(); err != nil {
		return nil, err
	}
	mfaKeys, err := cfg.MFAKeyring()
	if err != nil {
		return nil, err
	}
	// 32 connections (as many kept idle): the hot routes (verify, /users/me, refresh)
	// read PostgreSQL only on a user-cache miss, login and register are bound by the
	// hasher (PASSWORD_HASH_CONCURRENCY), so 32 covers a burst of misses and the
	// queries around the hashes while 3 replicas stay under max_connections=100.
	if a.DB, err = postgres.Open(cfg.DatabaseURL, cfg.DatabaseReplicaURLs,
		postgres.Options{MaxOpenConns: 32, StatementTimeout: 5 * time.Second}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.DB.Close)

	// Every request holds one Redis connection for its round trip (verify and /users/me
	// one pipeline, refresh one script), so the pool is sized for the request
	// concurrency, not the cores: go-redis' default (10 per GOMAXPROCS, 20 here) made
	// requests beyond it queue in the pool, with a 4 s pool timeout, at 32 and 128 in
	// flight. 128 connections cost Redis (maxclients 10000) little; 16 are kept open so
	// a burst after a quiet spell does not start by dialling.
	if a.Redis, err = redisx.New(redisx.Options{URL: cfg.RedisURL, ClusterAddrs: cfg.RedisClusterAddrs,
		SentinelAddrs: cfg.RedisSentinelAddrs, SentinelMaster: cfg.RedisSentinelMaster,
		PoolSize: RedisPoolSize, MinIdleConns: 16}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Redis.Close)

	if a.NATS, err = natsx.Connect(cfg.NATSURL, "auth"); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { a.NATS.Close(); return nil })
	js, err := jetstream.New(a.NATS)
	if err != nil {
		return nil, fmt.Errorf("NATS_URL: jetstream: %w", err)
	}
	reg := metrics.New("auth")
	// The relay ensures the stream itself, retrying while NATS is down: events wait in
	// the outbox meanwhile, so a NATS outage never stops the service from starting.
	a.Relay = events.NewRelay(a.DB, js, log, events.WithMetrics(reg), events.WithNamespace(cfg.NATSNamespace))
	if !o.noRelay {
		// Closed before NATS and PostgreSQL (closers run newest first).
		a.closers = append(a.closers, a.Relay.Start(ctx))
	}

	if created, err := token.EnsureKey(cfg.JWTKeysDir, cfg.JWTAlg, time.Now()); err != nil {
		return nil, fmt.Errorf("JWT_KEYS_DIR: %w", err)
	} else if created {
		log.Warn("generated a signing key: fine in dev; in production mount keys into JWT_KEYS_DIR",
			zap.String("dir", cfg.JWTKeysDir))
	}
	if a.Keys, err = token.LoadKeySet(cfg.JWTKeysDir, token.WithPublishDelay(JWKSMaxAge),
		token.WithReloadErrorHandler(func(err error) { log.Error("reload signing keys", zap.Error(err)) })); err != nil {
		return nil, fmt.Errorf("JWT_KEYS_DIR: %w", err)
	}
	go a.Keys.Watch(ctx, time.Minute)

	params := password.DefaultParams()
	params.Memory, params.Iterations, params.Parallelism =
		cfg.PasswordArgonMemoryKiB, cfg.PasswordArgonIterations, cfg.PasswordArgonParallelism
	sessions := session.New(a.Redis, session.WithIdleTTL(cfg.RefreshTokenTTL), session.WithMaxAge(cfg.SessionMaxAge),
		session.WithReuseGrace(cfg.RefreshReuseGrace))
	cache := store.NewUserCache(a.Redis, a.DB, sessions)
	users := store.NewUsers(a.DB, cache, a.EventKeys)
	a.MFA = store.NewMFA(users, mfaKeys)
	var breaches account.BreachChecker
	if cfg.PasswordBreachCheckURL != "" {
		breaches = password.NewBreachChecker(cfg.PasswordBreachCheckURL, nil, cfg.PasswordBreachCheckFailClosed)
	}
	rl := cfg.RateLimits
	guard := ratelimit.NewGuard(a.Redis, map[string]ratelimit.Limit{
		account.LimitGlobal: rl.Global, account.LimitLogin: rl.Login, account.LimitRegister: rl.Register,
		account.LimitForgot: rl.Forgot, account.LimitResend: rl.Resend, account.LimitRefresh: rl.Refresh,
		account.LimitEmailVerify: rl.EmailVerify, account.LimitMFA: rl.MFA, account.LimitEmails: rl.EmailsPerAddress,
		account.LimitVerifyInvalid: rl.Global,
	}, cfg.LoginThrottle, cfg.RateLimitEnabled)
	// Forgot-password and resend answer once the request is stored; this processor
	// sends what it asks for (every replica runs one; see emailqueue).
	a.Emails = emailqueue.New(log, emailqueue.WithMetrics(reg))
	svc := account.NewService(
		users, cache, sessions, guard,
		// A full queue sheds logins after PASSWORD_HASH_QUEUE_TIMEOUT (503 overloaded)
		// rather than letting their latency grow without bound.
		password.NewHasher(params, cfg.PasswordHashConcurrency, cfg.PasswordHashQueueTimeout),
		tokens{
			token.NewIssuer(a.Keys, cfg.PublicURL, cfg.JWTAudience, cfg.AccessTokenTTL),
			// Verified signatures are remembered until each token's exp (keyed by the
			// SHA-256 of the whole token, dropped with their key); the session and user
			// are still checked on every request, so a logout is seen at once.
			token.NewVerifier(a.Keys, cfg.PublicURL, cfg.JWTAudience, token.WithVerifiedCache(VerifiedTokenCacheSize)),
		},
		account.Config{
			EmailVerificationRequired: cfg.EmailVerificationRequired,
			AdminEmails:               cfg.AdminEmails,
			Policy: password.Policy{MinLength: cfg.PasswordMinLength, MaxLength: cfg.PasswordMaxLength,
				MinStrength: cfg.PasswordMinStrength},
			Breaches:     breaches,
			ReauthMaxAge: cfg.ReauthMaxAge,
		},
		account.WithLogger(log),
		account.WithMFA(a.MFA, store.NewMFAChallenges(a.Redis)),
		account.WithEmailRequests(store.NewEmailRequests(users), a.Emails.Wake),
	)
	a.Accounts = svc
	if !o.noEmails {
		// Stopped by Close, before PostgreSQL and Redis (closers run newest first).
		a.closers = append(a.closers, a.Emails.Start(context.WithoutCancel(ctx), svc))
	}

	a.Server = httpx.New(log, reg,
		httpx.WithTrustedProxies(cfg.TrustedProxies),
		httpx.WithProblemJSON("/v2"),
		httpx.WithErrorMapper(api.MapError),
		httpx.WithOpenAPI(apidoc.YAML),
		httpx.WithCORS(cfg.CORSAllowedOrigins),
		// Token and profile answers are never compressed (BREACH); lists and JWKS are.
		httpx.WithGzip("/v1/auth", "/v2/auth", "/v1/users", "/v2/users"),
		httpx.WithShutdownTimeout(cfg.ShutdownTimeout),
		httpx.WithReadyCheck("postgres", a.DB.Ping),
		httpx.WithReadyCheck("redis", func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() }),
		// nats: the connection is up and the outbox relay can publish (Relay.Healthy: its
		// attempts to reach JetStream keep failing, e.g. JetStream disabled or no PubAck).
		// The other background loop, the signing-key reload (Keys.Watch), is no check: a
		// reload that fails keeps the keys last loaded, which go on signing and verifying,
		// so the instance still serves correctly; the failure is logged.
		httpx.WithReadyCheck("nats", func(ctx context.Context) error {
			if err := natsx.Check(a.NATS); err != nil {
				return err
			}
			return a.Relay.Healthy(ctx)
		}),
	)
	adm := admin.NewService(store.NewAdmin(users), sessions)
	api.New(svc, adm, a.Keys.JWKS, api.Config{Issuer: cfg.PublicURL, JWKSMaxAge: JWKSMaxAge,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins, RefreshTokenTTL: cfg.RefreshTokenTTL, V1Sunset: cfg.APIV1Sunset,
		Metrics: reg}).Register(a.Server.Echo)
	if cfg.PprofEnabled {
		registerPprof(a.Server.Echo)
	}
	return a, nil
}

// Close releases every connection, newest first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Package app composes the oauth service: config in, a ready server out. main and the
// integration tests build it through the same function.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/redisx"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/oauth/apidoc"
	"github.com/talentforge/auth/services/oauth/internal/api"
	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/providers"
	"github.com/talentforge/auth/services/oauth/internal/signin"
	"github.com/talentforge/auth/services/oauth/internal/store"
)

// App is the composed service.
type App struct {
	Server  *httpx.Server
	DB      *postgres.DB
	Redis   redis.UniversalClient
	NATS    *nats.Conn
	Keys    *token.KeySet
	Relay   *events.Relay
	closers []func() error
}

// Option changes how New composes the service.
type Option func(*options)

type options struct{ noRelay bool }

// WithoutRelay leaves the outbox to the test that reads it.
func WithoutRelay() Option { return func(o *options) { o.noRelay = true } }

type signInMetrics struct {
	signIns, providerErrors *prometheus.CounterVec
	breaker                 *prometheus.GaugeVec
}

func newMetrics(reg *metrics.Registry) *signInMetrics {
	m := &signInMetrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oauth_sign_ins_total",
			Help: "Finished provider callbacks by provider and result (success, linked, or the ?error= code)."},
			[]string{"provider", "result"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oauth_provider_errors_total",
			Help: "Provider failures by provider and reason (unavailable, rejected, invalid_id_token, authorize_error)."},
			[]string{"provider", "reason"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "oauth_provider_breaker_state",
			Help: "Each provider's circuit breaker: 0 closed, 1 half-open, 2 open."}, []string{"provider"}),
	}
	reg.MustRegister(m.signIns, m.providerErrors, m.breaker)
	return m
}

func (m *signInMetrics) SignIn(provider, result string) {
	m.signIns.WithLabelValues(provider, result).Inc()
}
func (m *signInMetrics) ProviderError(provider, reason string) {
	m.providerErrors.WithLabelValues(provider, reason).Inc()
}

// New connects to PostgreSQL, Redis and NATS, loads the signing keys the auth service
// uses (JWT_KEYS_DIR, shared) and builds the server. The outbox relay runs until ctx
// ends, unless WithoutRelay.
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
	if err := checkCallbackBase(cfg.OAuthCallbackBaseURL); err != nil {
		return nil, err
	}
	// The verification email of an address a provider did not vouch for carries a token.
	eventKeys, err := cfg.EventKeyring()
	if err != nil {
		return nil, err
	}
	if a.DB, err = postgres.Open(cfg.DatabaseURL, cfg.DatabaseReplicaURLs,
		postgres.Options{MaxOpenConns: 16, StatementTimeout: 5 * time.Second}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.DB.Close)
	if a.Redis, err = redisx.New(redisx.Options{URL: cfg.RedisURL, ClusterAddrs: cfg.RedisClusterAddrs,
		SentinelAddrs: cfg.RedisSentinelAddrs, SentinelMaster: cfg.RedisSentinelMaster}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Redis.Close)
	if a.NATS, err = natsx.Connect(cfg.NATSURL, "oauth"); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { a.NATS.Close(); return nil })
	js, err := jetstream.New(a.NATS)
	if err != nil {
		return nil, fmt.Errorf("NATS_URL: jetstream: %w", err)
	}
	reg := metrics.New("oauth")
	a.Relay = events.NewRelay(a.DB, js, log, events.WithMetrics(reg), events.WithNamespace(cfg.NATSNamespace))
	if !o.noRelay {
		a.closers = append(a.closers, a.Relay.Start(ctx))
	}

	// Keys are made by auth (or mounted); oauth only reads them, so it waits for none.
	if a.Keys, err = token.LoadKeySet(cfg.JWTKeysDir, token.WithPublishDelay(5*time.Minute),
		token.WithReloadErrorHandler(func(err error) { log.Error("reload signing keys", zap.Error(err)) })); err != nil {
		return nil, fmt.Errorf("JWT_KEYS_DIR: %w (start auth first, or mount the keys)", err)
	}
	go a.Keys.Watch(ctx, time.Minute)

	m := newMetrics(reg)
	ps := providers.New(cfg.OAuthProviders, providers.Options{Timeout: cfg.OAuthProviderTimeout,
		CallbackBase: cfg.OAuthCallbackBaseURL,
		OnStateChange: func(name string, to gobreaker.State) {
			m.breaker.WithLabelValues(name).Set(float64(to))
			log.Warn("oauth provider breaker", zap.String("provider", name), zap.String("state", to.String()))
		}})
	sessions := session.New(a.Redis, session.WithIdleTTL(cfg.RefreshTokenTTL), session.WithMaxAge(cfg.SessionMaxAge),
		session.WithReuseGrace(cfg.RefreshReuseGrace))
	svc, err := signin.New(ps, flow.New(a.Redis), store.New(a.DB, eventKeys, usercache.New(a.Redis)), sessions, mfachallenge.New(a.Redis),
		token.NewIssuer(a.Keys, cfg.PublicURL, cfg.JWTAudience, cfg.AccessTokenTTL),
		token.NewVerifier(a.Keys, cfg.PublicURL, cfg.JWTAudience),
		signin.Config{RedirectAllowlist: cfg.OAuthRedirectAllowlist, AdminEmails: cfg.AdminEmails,
			EmailVerificationRequired: cfg.EmailVerificationRequired}, m,
		ratelimit.NewGuard(a.Redis, map[string]ratelimit.Limit{ratelimit.PurposeEmails: cfg.RateLimits.EmailsPerAddress},
			cfg.LoginThrottle, cfg.RateLimitEnabled), log)
	if err != nil {
		return nil, err
	}
	a.Server = httpx.New(log, reg,
		httpx.WithTrustedProxies(cfg.TrustedProxies),
		httpx.WithErrorMapper(api.MapError),
		httpx.WithOpenAPI(apidoc.YAML),
		httpx.WithCORS(cfg.CORSAllowedOrigins),
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
	hc := api.Config{Budget: cfg.RateLimits.Global, IPv6Prefix: cfg.LoginThrottle.IPv6Prefix}
	if cfg.RateLimitEnabled {
		hc.Limiter = ratelimit.NewLimiter(a.Redis)
	}
	api.New(svc, hc).Register(a.Server.Echo)
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

// checkCallbackBase refuses a plain-http OAUTH_CALLBACK_BASE_URL off loopback. The
// browser-binding cookie is a __Host- cookie, hence Secure: browsers keep it from
// https origins and from http://localhost, *.localhost, 127.0.0.0/8 and [::1] (secure
// contexts), and drop it from any other http origin, where every callback would then
// fail with browser_mismatch. Better to stop at start than to serve a sign-in that
// cannot finish.
func checkCallbackBase(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("OAUTH_CALLBACK_BASE_URL: %w", err)
	}
	if u.Scheme != "http" {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("OAUTH_CALLBACK_BASE_URL: %q is plain http off localhost: browsers drop the Secure "+
		"__Host- binding cookie there, so no sign-in could finish; use https", raw)
}

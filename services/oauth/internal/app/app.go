// Package app composes the oauth service: config in, a ready server out. main and the
// integration tests build it through the same function.
package app

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/platform"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/tokenhook"
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
	// Platform is PostgreSQL, Redis, NATS, the signing keys (Keys), EventKeys and the
	// outbox Relay: New runs it until ctx ends, unless WithoutRelay.
	*platform.Platform
	Server *httpx.Server
	// SignIn is the use cases the server's handlers call (tests drive them directly).
	SignIn *signin.Service
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
	if a.Platform, err = platform.Open(ctx, cfg, log, "oauth",
		// The verification email of an address a provider did not vouch for carries a token.
		platform.WithEventKeys(),
		platform.WithDB(postgres.Options{MaxOpenConns: 16, StatementTimeout: 5 * time.Second}),
		platform.WithRedis(0, 0), // go-redis' default pool
		platform.WithNATS(),
		platform.WithRelay(!o.noRelay),
		// Keys are made by auth (or mounted); oauth only reads them, so it waits for none.
		platform.WithSigningKeys(platform.SigningKeys{PublishDelay: 5 * time.Minute,
			Hint: "start auth first, or mount the keys"}),
	); err != nil {
		return nil, err
	}
	reg := a.Metrics

	m := newMetrics(reg)
	ps := providers.New(cfg.OAuthProviders, providers.Options{Timeout: cfg.OAuthProviderTimeout,
		CallbackBase: cfg.OAuthCallbackBaseURL,
		OnStateChange: func(name string, to gobreaker.State) {
			m.breaker.WithLabelValues(name).Set(float64(to))
			log.Warn("oauth provider breaker", zap.String("provider", name), zap.String("state", to.String()))
		}})
	sessions := session.New(a.Redis, session.WithIdleTTL(cfg.RefreshTokenTTL), session.WithMaxAge(cfg.SessionMaxAge),
		session.WithReuseGrace(cfg.RefreshReuseGrace))
	// Bearer tokens are checked through auth's user cache, the same check as auth's.
	entries := usercache.New(a.Redis)
	users := store.New(a.DB, a.EventKeys, entries)
	// ACCESS_TOKEN_HOOK_URL: auth's hook, shown every pair oauth mints too.
	hook, err := tokenhook.FromConfig(cfg.AccessTokenHook, reg, log)
	if err != nil {
		return nil, err
	}
	core := accounts.NewSessions(accounts.NewCache(a.Redis, users.Store, sessions, entries), sessions,
		accounts.JWT{Issuer: token.NewIssuer(a.Keys, cfg.PublicURL, cfg.JWTAudience, cfg.AccessTokenTTL),
			Verifier: token.NewVerifier(a.Keys, cfg.PublicURL, cfg.JWTAudience)},
		mfachallenge.New(a.Redis), accounts.WithHook(hook))
	svc, err := signin.New(ps, flow.New(a.Redis), users, core,
		signin.Config{RedirectAllowlist: cfg.OAuthRedirectAllowlist, AdminEmails: cfg.AdminEmails,
			EmailVerificationRequired: cfg.EmailVerificationRequired}, m,
		ratelimit.NewGuard(a.Redis, map[string]ratelimit.Limit{ratelimit.PurposeEmails: cfg.RateLimits.EmailsPerAddress},
			cfg.LoginThrottle, cfg.RateLimitEnabled), log)
	if err != nil {
		return nil, err
	}
	a.SignIn = svc
	// /readyz: postgres, redis and nats (the connection and the outbox relay).
	a.Server = httpx.New(log, reg, append(a.ServerOptions(),
		httpx.WithTrustedProxies(cfg.TrustedProxies),
		httpx.WithErrorMapper(api.MapError),
		httpx.WithOpenAPI(apidoc.YAML),
		httpx.WithCORS(cfg.CORSAllowedOrigins),
		httpx.WithShutdownTimeout(cfg.ShutdownTimeout),
	)...)
	hc := api.Config{Budget: cfg.RateLimits.Global, IPv6Prefix: cfg.LoginThrottle.IPv6Prefix}
	if cfg.RateLimitEnabled {
		hc.Limiter = ratelimit.NewLimiter(a.Redis)
	}
	api.New(svc, hc).Register(a.Server.Echo)
	return a, nil
}

// Close stops the relay and releases every connection, newest first.
func (a *App) Close() error { return a.Platform.Close() }

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

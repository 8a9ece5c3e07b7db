// Package config loads every setting of the public contract (API.md) through viper:
// defaults, then an optional YAML file named by CONFIG_FILE, then environment variables,
// then NAME_FILE for secrets. Load validates everything and returns one error line that
// names the variable at fault.
//
// One table (settings) holds each setting's name, default, parser, whether it is a
// secret and which services read it; Load is driven by it, and the tests check the
// README's configuration table and the charts' values schemas against it.
package config

import (
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/webhook"
)

// Config is the whole configuration; each service reads the parts it needs.
type Config struct {
	HTTPAddr string

	DatabaseURL         string
	DatabaseReplicaURLs []string
	RedisURL            string
	RedisClusterAddrs   []string
	RedisSentinelAddrs  []string
	RedisSentinelMaster string
	NATSURL             string
	// NATSNamespace separates this deployment's streams and subjects from others on
	// the same NATS server (events.Namespace).
	NATSNamespace events.Namespace

	PublicURL            string
	AppURL               string
	OAuthCallbackBaseURL string

	JWTAudience     string
	JWTKeysDir      string
	JWTAlg          string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	SessionMaxAge   time.Duration
	// ReauthMaxAge: how long after signing in a session may change credentials
	// without the current password (REAUTH_MAX_AGE).
	ReauthMaxAge      time.Duration
	RefreshReuseGrace time.Duration

	// The passkeys' relying party (WEBAUTHN_RP_ID, _NAME, _ORIGINS): the id defaults
	// to PUBLIC_URL's host, the origins to those of PUBLIC_URL and APP_URL. An empty id
	// (PUBLIC_URL on an IP address) turns passkeys off.
	WebAuthnRPID      string
	WebAuthnRPName    string
	WebAuthnRPOrigins []string

	EmailVerificationRequired bool
	AdminEmails               []string
	PasswordMinLength         int
	PasswordMaxLength         int
	// Argon2id parameters; not in the public contract, tunable per deployment.
	PasswordArgonMemoryKiB   uint32
	PasswordArgonIterations  uint32
	PasswordArgonParallelism uint8
	PasswordHashConcurrency  int
	// PasswordHashQueueTimeout is how long a request waits for a hashing slot before
	// it is shed with 503 overloaded.
	PasswordHashQueueTimeout time.Duration
	// PasswordMinStrength is the zxcvbn score (0-4) a new password needs; 0 turns it off.
	PasswordMinStrength int
	// PasswordBreachCheckURL is a k-anonymity range API (Have I Been Pwned's protocol);
	// empty turns the check off.
	PasswordBreachCheckURL        string
	PasswordBreachCheckFailClosed bool

	RateLimitEnabled   bool
	RateLimits         RateLimits
	LoginThrottle      ratelimit.ThrottleConfig
	TrustedProxies     []*net.IPNet
	CORSAllowedOrigins []string
	// APIV1Sunset is API_V1_SUNSET (an HTTP-date or an RFC 3339 date or timestamp): when
	// set, v1 answers carry Deprecation and Sunset (RFC 8594). Zero: v1 is not deprecated.
	APIV1Sunset time.Time

	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string
	SMTPTLS      string

	// SMSProvider (SMS_PROVIDER) is none or twilio: auth offers phone numbers and SMS
	// codes only with a provider; the token-worker sends through it.
	SMSProvider string
	// Twilio's REST API (TWILIO_*), the token-worker's when SMSProvider is twilio.
	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioFrom       string
	TwilioAPIURL     string
	// SMSDefaultRegion (SMS_DEFAULT_REGION) is the region a number without +country is
	// read in (ISO 3166 alpha-2; empty: every number needs its +country).
	SMSDefaultRegion string
	// SMSAllowedCountries (SMS_ALLOWED_COUNTRIES) are the regions SMS may go to (ISO 3166
	// alpha-2, upper case); empty: any.
	SMSAllowedCountries []string
	// OTPSignup (OTP_SIGNUP) lets an emailed code create the account of an address that
	// has none.
	OTPSignup bool

	// WebhookAllowPrivateNetworks (WEBHOOK_ALLOW_PRIVATE_NETWORKS) lets webhook URLs be
	// http:// and resolve to loopback, private or link-local addresses.
	WebhookAllowPrivateNetworks bool
	// FeatureFlags (FEATURE_FLAGS) is "name=on|off[,...]": the flags' start-up values;
	// services/auth's flags package parses it against the flags it knows.
	FeatureFlags string
	// AccessTokenHook is the hook called when a token pair is issued or refreshed
	// (ACCESS_TOKEN_HOOK_*): auth's and oauth's.
	AccessTokenHook AccessTokenHook
	// VerifyClaimHeaders (VERIFY_CLAIM_HEADERS) are "claim=X-Auth-Header" pairs: the
	// access-token claims ForwardAuth passes on as headers.
	VerifyClaimHeaders []ClaimHeader

	// OAuthRedirectAllowlist (OAUTH_REDIRECT_ALLOWLIST) are the prefixes a redirect_to of
	// the oauth service, and a return_to of the hosted UI, may start with.
	OAuthRedirectAllowlist []string
	// SessionCookieDomain (SESSION_COOKIE_DOMAIN) is the Domain of the hosted UI's session
	// cookie, lower case without a leading dot; empty: host-only. PUBLIC_URL's host is it
	// or under it.
	SessionCookieDomain string
	// UIOAuthURL (UI_OAUTH_URL) is the oauth service's base URL for the hosted UI: where
	// the login page's provider links point and where the UI exchanges the one-time code.
	// Empty: no social sign-in on the pages.
	UIOAuthURL string
	// OAuthProviders are the configured social-login providers; one without a client id
	// is left out (not offered).
	OAuthProviders OAuthProviders
	// OAuthProviderTimeout bounds each call to a provider (token exchange, user info).
	OAuthProviderTimeout time.Duration

	// EventKeys is EVENT_KEYS: the keyring that seals the secret fields of events
	// ("kid:base64-32-byte-key[,kid:key...]"); EventKeyring parses it.
	EventKeys string
	// MFAEncryptionKeys is MFA_ENCRYPTION_KEYS: the keys that seal TOTP secrets at rest,
	// in EVENT_KEYS' format (the first seals); MFAKeyring parses it.
	MFAEncryptionKeys string

	OTELExporterOTLPEndpoint string
	// PprofEnabled serves net/http/pprof under /debug/pprof/ (off by default).
	PprofEnabled    bool
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// OAuthProvider is one social-login provider's client registration.
type OAuthProvider struct {
	ClientID, ClientSecret string
	// Issuer is the OIDC issuer (discovery at {Issuer}/.well-known/openid-configuration).
	Issuer string
	// BaseURL and APIURL are GitHub's web and API bases (GitHub Enterprise: its own).
	BaseURL, APIURL string
	// Name is the generic OIDC provider's name in routes (OAUTH_OIDC_NAME).
	Name string
}

// Enabled reports whether the provider is offered.
func (p OAuthProvider) Enabled() bool { return p.ClientID != "" }

// OAuthProviders are GitHub, Google and one generic OIDC issuer.
type OAuthProviders struct {
	GitHub, Google, OIDC OAuthProvider
}

// AccessTokenHook is the HTTP hook that may add claims to access tokens
// (ACCESS_TOKEN_HOOK_*); no URL: none.
type AccessTokenHook struct {
	URL string
	// Secret is the Standard Webhooks secret ("whsec_" + base64) that signs each call.
	Secret  string
	Timeout time.Duration
	// Failure is "closed" (no hook answer: 503, no tokens) or "open" (tokens without the
	// hook's claims).
	Failure string
}

// ClaimHeader is one VERIFY_CLAIM_HEADERS pair: the access-token claim at the path
// Claim (its dotted segments, e.g. ["ext", "tenant"]) answered by /v1/auth/verify as
// the header Header (canonical form, starting with X-Auth-).
type ClaimHeader struct {
	Claim  []string
	Header string
}

// RateLimits are the per-purpose budgets, per client IP unless named otherwise.
type RateLimits struct {
	Global, Login, Register, Forgot, Resend, Refresh, EmailVerify, MFA ratelimit.Limit
	// EmailsPerAddress caps the mails one address can be sent (per normalised address,
	// known or not, so the cap tells nobody whether it has an account).
	EmailsPerAddress ratelimit.Limit
	// OTP is the per-IP budget of requests for a one-time code (email or SMS) and of
	// phone changes; SMSPerNumber caps the SMS one number is sent.
	OTP, SMSPerNumber ratelimit.Limit
}

// service is a set of the services that read a setting.
type service uint8

const (
	svcAuth service = 1 << iota
	svcOAuth
	svcTokenWorker

	svcAuthOAuth = svcAuth | svcOAuth
	svcAll       = svcAuth | svcOAuth | svcTokenWorker
)

// A setting is one row of the configuration table (settings): Load sets its default,
// reads it from the environment (and from NAME_FILE when it is a secret) and parses it;
// the tests check the README's table and the charts' values schemas against it.
type setting struct {
	name    string  // the environment variable; its YAML key is the name in lower case
	def     string  // the default
	secret  bool    // may also be given as NAME_FILE (the file's content, trailing newlines cut)
	readers service // the services that read it
	// value reads it into its Config field during the table pass; zero: the checks after
	// the pass (parse) read it, because it depends on other settings.
	value value
	// readme is the default as the README's table writes it, when that is not the
	// default itself (`def`, or empty or - when def is empty).
	readme string
}

func (s setting) key() string { return strings.ToLower(s.name) }

// A value reads one setting into a Config field and reports a bad value under the
// setting's name (parser.fail). oneOf lists the only values of a oneOf setting.
type value struct {
	read  func(p *parser, key string)
	oneOf []string
}

// settings is the configuration table, bound to c's fields, in the order Load parses it
// (the first bad setting is the one reported). httpAddr is the service's listen address.
func settings(c *Config, httpAddr string) []setting {
	rl, lt := &c.RateLimits, &c.LoginThrottle
	return []setting{
		{name: "HTTP_ADDR", def: httpAddr, readers: svcAll, value: text(&c.HTTPAddr),
			readme: "`:8081` (auth), `:8082` (oauth), `:8083` (token-worker)"},
		{name: "DATABASE_URL", def: "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable", secret: true, readers: svcAll,
			value: connURL(&c.DatabaseURL, "postgres", "postgresql")},
		{name: "DATABASE_REPLICA_URLS", readers: svcAll, value: list(&c.DatabaseReplicaURLs)},
		{name: "REDIS_URL", def: "redis://127.0.0.1:6379/0", secret: true, readers: svcAuthOAuth,
			value: connURL(&c.RedisURL, "redis", "rediss", "unix")},
		{name: "REDIS_CLUSTER_ADDRS", readers: svcAuthOAuth, value: list(&c.RedisClusterAddrs)},
		{name: "REDIS_SENTINEL_ADDRS", readers: svcAuthOAuth, value: list(&c.RedisSentinelAddrs)},
		{name: "REDIS_SENTINEL_MASTER", readers: svcAuthOAuth, value: text(&c.RedisSentinelMaster)},
		{name: "NATS_URL", def: "nats://127.0.0.1:4222", readers: svcAll, value: text(&c.NATSURL)},
		{name: "NATS_NAMESPACE", readers: svcAll, value: namespace(&c.NATSNamespace)},
		{name: "PUBLIC_URL", def: "http://localhost:8081", readers: svcAuthOAuth, value: baseURL(&c.PublicURL)},
		{name: "APP_URL", def: "http://localhost:3000", readers: svcAuth | svcTokenWorker, value: baseURL(&c.AppURL)},

		{name: "JWT_AUDIENCE", def: "talentforge", readers: svcAuthOAuth, value: text(&c.JWTAudience)},
		{name: "JWT_KEYS_DIR", def: "./var/keys", readers: svcAuthOAuth, value: text(&c.JWTKeysDir)},
		{name: "JWT_ALG", def: "EdDSA", readers: svcAuth, value: oneOf(&c.JWTAlg, "EdDSA", "ES256", "RS256")},
		{name: "ACCESS_TOKEN_TTL", def: "15m", readers: svcAuthOAuth, value: duration(&c.AccessTokenTTL, time.Minute)},
		{name: "REFRESH_TOKEN_TTL", def: "720h", readers: svcAuthOAuth, value: duration(&c.RefreshTokenTTL, time.Minute)},
		{name: "SESSION_MAX_AGE", def: "2160h", readers: svcAuthOAuth, value: duration(&c.SessionMaxAge, time.Minute)},
		{name: "REAUTH_MAX_AGE", def: "5m", readers: svcAuth, value: duration(&c.ReauthMaxAge, time.Second)},
		{name: "REFRESH_REUSE_GRACE", def: "10s", readers: svcAuthOAuth, value: duration(&c.RefreshReuseGrace, 0)},

		{name: "EMAIL_VERIFICATION_REQUIRED", def: "true", readers: svcAuthOAuth, value: boolean(&c.EmailVerificationRequired)},
		{name: "PASSWORD_MIN_LENGTH", def: "8", readers: svcAuth, value: integer(&c.PasswordMinLength, 8, 1024)},
		{name: "PASSWORD_MAX_LENGTH", def: "256", readers: svcAuth, value: integer(&c.PasswordMaxLength, 8, 4096)},
		{name: "PASSWORD_ARGON_MEMORY_KIB", def: "19456", readers: svcAuth, value: integer(&c.PasswordArgonMemoryKiB, 8, 4<<20)},
		{name: "PASSWORD_ARGON_ITERATIONS", def: "2", readers: svcAuth, value: integer(&c.PasswordArgonIterations, 1, 100)},
		{name: "PASSWORD_ARGON_PARALLELISM", def: "1", readers: svcAuth, value: integer(&c.PasswordArgonParallelism, 1, 255)},
		{name: "PASSWORD_HASH_CONCURRENCY", def: "0", readers: svcAuth, value: integer(&c.PasswordHashConcurrency, 0, 1024),
			readme: "CPU count"},
		{name: "PASSWORD_HASH_QUEUE_TIMEOUT", def: "1s", readers: svcAuth, value: duration(&c.PasswordHashQueueTimeout, time.Millisecond)},
		{name: "PASSWORD_MIN_STRENGTH", def: "0", readers: svcAuth, value: integer(&c.PasswordMinStrength, 0, 4)},
		{name: "PASSWORD_BREACH_CHECK_FAIL_CLOSED", def: "true", readers: svcAuth, value: boolean(&c.PasswordBreachCheckFailClosed)},

		// Rate limits: generous for people, tight for scripts.
		{name: "RATE_LIMIT_ENABLED", def: "true", readers: svcAuthOAuth, value: boolean(&c.RateLimitEnabled)},
		{name: "RATE_LIMIT_GLOBAL", def: "600/m", readers: svcAuthOAuth, value: limit(&rl.Global)},
		{name: "RATE_LIMIT_LOGIN", def: "30/m", readers: svcAuth, value: limit(&rl.Login)},
		{name: "RATE_LIMIT_REGISTER", def: "20/h", readers: svcAuth, value: limit(&rl.Register)},
		{name: "RATE_LIMIT_FORGOT", def: "20/h", readers: svcAuth, value: limit(&rl.Forgot)},
		{name: "RATE_LIMIT_RESEND", def: "20/h", readers: svcAuth, value: limit(&rl.Resend)},
		{name: "RATE_LIMIT_REFRESH", def: "120/m", readers: svcAuth, value: limit(&rl.Refresh)},
		{name: "RATE_LIMIT_EMAIL_VERIFY", def: "60/h", readers: svcAuth, value: limit(&rl.EmailVerify)},
		{name: "RATE_LIMIT_MFA", def: "30/m", readers: svcAuth, value: limit(&rl.MFA)},
		{name: "RATE_LIMIT_EMAILS_PER_ADDRESS", def: "5/h", readers: svcAuthOAuth, value: limit(&rl.EmailsPerAddress)},
		{name: "RATE_LIMIT_OTP", def: "20/h", readers: svcAuth, value: limit(&rl.OTP)},
		{name: "RATE_LIMIT_SMS_PER_NUMBER", def: "5/h", readers: svcAuth, value: limit(&rl.SMSPerNumber)},
		{name: "LOGIN_THROTTLE_FAILURES", def: "10", readers: svcAuth, value: integer(&lt.Failures, 1, 100)},
		{name: "LOGIN_THROTTLE_IP_FAILURES", def: "5", readers: svcAuth, value: integer(&lt.FailuresPerIP, 1, 100)},
		{name: "LOGIN_THROTTLE_WAIT_INCREMENT", def: "1s", readers: svcAuth, value: duration(&lt.WaitIncrement, time.Millisecond)},
		{name: "LOGIN_THROTTLE_MAX_WAIT", def: "15m", readers: svcAuth, value: duration(&lt.MaxWait, time.Millisecond)},
		// Every per-IP budget and the per-IP throttle key an IPv6 client by this prefix.
		{name: "RATE_LIMIT_IPV6_PREFIX", def: strconv.Itoa(ratelimit.DefaultIPv6Prefix), readers: svcAuthOAuth,
			value: integer(&lt.IPv6Prefix, 32, 128)},
		{name: "WEBAUTHN_RP_ID", readers: svcAuth, value: text(&c.WebAuthnRPID), readme: "host of `PUBLIC_URL`"},
		{name: "WEBAUTHN_RP_NAME", def: "TalentForge", readers: svcAuth, value: text(&c.WebAuthnRPName)},
		{name: "WEBAUTHN_RP_ORIGINS", readers: svcAuth, value: list(&c.WebAuthnRPOrigins),
			readme: "origins of `PUBLIC_URL` and `APP_URL`"},

		{name: "CORS_ALLOWED_ORIGINS", def: "http://localhost:3000", readers: svcAuthOAuth, value: list(&c.CORSAllowedOrigins)},

		{name: "SMTP_HOST", def: "127.0.0.1", readers: svcTokenWorker, value: text(&c.SMTPHost)},
		{name: "SMTP_PORT", def: "1025", readers: svcTokenWorker, value: integer(&c.SMTPPort, 1, 65535)},
		{name: "SMTP_USERNAME", readers: svcTokenWorker, value: text(&c.SMTPUsername)},
		{name: "SMTP_PASSWORD", secret: true, readers: svcTokenWorker, value: verbatim(&c.SMTPPassword)},
		{name: "SMTP_FROM", def: "no-reply@localhost", readers: svcTokenWorker, value: text(&c.SMTPFrom)},
		{name: "SMTP_TLS", def: "none", readers: svcTokenWorker, value: oneOf(&c.SMTPTLS, "none", "starttls", "tls")},

		{name: "SMS_PROVIDER", def: "none", readers: svcAuth | svcTokenWorker, value: oneOf(&c.SMSProvider, "none", "twilio")},
		{name: "TWILIO_ACCOUNT_SID", readers: svcTokenWorker, value: text(&c.TwilioAccountSID)},
		{name: "TWILIO_AUTH_TOKEN", secret: true, readers: svcTokenWorker, value: verbatim(&c.TwilioAuthToken)},
		{name: "TWILIO_FROM", readers: svcTokenWorker, value: text(&c.TwilioFrom)},
		{name: "TWILIO_API_URL", def: "https://api.twilio.com", readers: svcTokenWorker, value: baseURL(&c.TwilioAPIURL)},
		{name: "SMS_DEFAULT_REGION", readers: svcAuth, value: text(&c.SMSDefaultRegion)},
		{name: "SMS_ALLOWED_COUNTRIES", readers: svcAuth, value: list(&c.SMSAllowedCountries)},
		{name: "OTP_SIGNUP", def: "false", readers: svcAuth, value: boolean(&c.OTPSignup)},

		{name: "WEBHOOK_ALLOW_PRIVATE_NETWORKS", def: "false", readers: svcAuth | svcTokenWorker, value: boolean(&c.WebhookAllowPrivateNetworks)},
		{name: "FEATURE_FLAGS", readers: svcAuth, value: text(&c.FeatureFlags)},
		{name: "ACCESS_TOKEN_HOOK_URL", readers: svcAuthOAuth, value: optionalBaseURL(&c.AccessTokenHook.URL)},
		{name: "ACCESS_TOKEN_HOOK_SECRET", secret: true, readers: svcAuthOAuth, value: verbatim(&c.AccessTokenHook.Secret)},
		{name: "ACCESS_TOKEN_HOOK_TIMEOUT", def: "2s", readers: svcAuthOAuth, value: duration(&c.AccessTokenHook.Timeout, 10*time.Millisecond)},
		{name: "ACCESS_TOKEN_HOOK_FAILURE", def: "closed", readers: svcAuthOAuth, value: oneOf(&c.AccessTokenHook.Failure, "closed", "open")},
		{name: "VERIFY_CLAIM_HEADERS", readers: svcAuth, value: claimHeaders(&c.VerifyClaimHeaders)},

		{name: "OAUTH_REDIRECT_ALLOWLIST", def: "http://localhost:3000", readers: svcAuthOAuth, value: list(&c.OAuthRedirectAllowlist)},
		{name: "SESSION_COOKIE_DOMAIN", readers: svcAuth, value: cookieDomain(&c.SessionCookieDomain, &c.PublicURL),
			readme: "empty (host-only)"},
		{name: "UI_OAUTH_URL", readers: svcAuth, value: optionalBaseURL(&c.UIOAuthURL)},
		{name: "OAUTH_PROVIDER_TIMEOUT", def: "10s", readers: svcOAuth, value: duration(&c.OAuthProviderTimeout, 100*time.Millisecond)},
		// Keyrings: parsed by EventKeyring and MFAKeyring, by the services that need them.
		{name: "EVENT_KEYS", secret: true, readers: svcAll, value: verbatim(&c.EventKeys), readme: "- (required)"},
		{name: "MFA_ENCRYPTION_KEYS", secret: true, readers: svcAuth, value: verbatim(&c.MFAEncryptionKeys),
			readme: "- (required by auth)"},

		{name: "OTEL_EXPORTER_OTLP_ENDPOINT", readers: svcAll, value: text(&c.OTELExporterOTLPEndpoint)},
		{name: "PPROF_ENABLED", def: "false", readers: svcAuth, value: boolean(&c.PprofEnabled)},
		{name: "LOG_LEVEL", def: "info", readers: svcAll, value: oneOf(&c.LogLevel, "debug", "info", "warn", "error")},
		{name: "LOG_FORMAT", def: "json", readers: svcAll, value: oneOf(&c.LogFormat, "json", "console")},
		{name: "SHUTDOWN_TIMEOUT", def: "20s", readers: svcAll, value: duration(&c.ShutdownTimeout, time.Second)},
		{name: "PASSWORD_BREACH_CHECK_URL", readers: svcAuth, value: optionalBaseURL(&c.PasswordBreachCheckURL)},
		{name: "OAUTH_CALLBACK_BASE_URL", readers: svcOAuth, value: optionalBaseURL(&c.OAuthCallbackBaseURL),
			readme: "`PUBLIC_URL`"},

		// Read after the table pass, by parse.
		{name: "OAUTH_GITHUB_CLIENT_ID", readers: svcOAuth},
		{name: "OAUTH_GITHUB_CLIENT_SECRET", secret: true, readers: svcOAuth},
		{name: "OAUTH_GITHUB_BASE_URL", def: "https://github.com", readers: svcOAuth},
		{name: "OAUTH_GITHUB_API_URL", def: "https://api.github.com", readers: svcOAuth},
		{name: "OAUTH_GOOGLE_CLIENT_ID", readers: svcOAuth},
		{name: "OAUTH_GOOGLE_CLIENT_SECRET", secret: true, readers: svcOAuth},
		{name: "OAUTH_GOOGLE_ISSUER", def: "https://accounts.google.com", readers: svcOAuth},
		{name: "OAUTH_OIDC_NAME", readers: svcOAuth},
		{name: "OAUTH_OIDC_ISSUER", readers: svcOAuth},
		{name: "OAUTH_OIDC_CLIENT_ID", readers: svcOAuth},
		{name: "OAUTH_OIDC_CLIENT_SECRET", secret: true, readers: svcOAuth},
		{name: "ADMIN_EMAILS", readers: svcAuthOAuth, value: list(&c.AdminEmails)},
		{name: "TRUSTED_PROXIES", readers: svcAll},
		{name: "API_V1_SUNSET", readers: svcAuth},
	}
}

// text is trimmed text.
func text(dst *string) value {
	return value{read: func(p *parser, key string) { *dst = p.str(key) }}
}

// verbatim is text as given, not trimmed (secrets).
func verbatim(dst *string) value {
	return value{read: func(p *parser, key string) { *dst = p.v.GetString(key) }}
}

// list is a comma-separated list (a YAML sequence in the file).
func list(dst *[]string) value {
	return value{read: func(p *parser, key string) { *dst = p.list(key) }}
}

// duration is a Go duration of at least minimum.
func duration(dst *time.Duration, minimum time.Duration) value {
	return value{read: func(p *parser, key string) { *dst = p.duration(key, minimum) }}
}

// integer is an integer from lo to hi.
func integer[T ~int | ~uint8 | ~uint32](dst *T, lo, hi int) value {
	return value{read: func(p *parser, key string) { *dst = T(p.integer(key, lo, hi)) }}
}

// boolean is true, 1, yes, on or false, 0, no, off.
func boolean(dst *bool) value {
	return value{read: func(p *parser, key string) { *dst = p.boolean(key) }}
}

// connURL is an absolute URL of one of schemes, kept as given (a connection string).
func connURL(dst *string, schemes ...string) value {
	return value{read: func(p *parser, key string) { *dst = p.url(key, schemes...) }}
}

// baseURL is an absolute http(s) URL without its trailing slashes.
func baseURL(dst *string) value {
	return value{read: func(p *parser, key string) { *dst = strings.TrimRight(p.url(key, "http", "https"), "/") }}
}

// optionalBaseURL is a baseURL or empty (dst is then left as it is).
func optionalBaseURL(dst *string) value {
	return value{read: func(p *parser, key string) {
		if p.str(key) != "" {
			*dst = strings.TrimRight(p.url(key, "http", "https"), "/")
		}
	}}
}

// cookieDomain is a domain name (a leading dot dropped) that the host of *publicURL,
// read before it, is or is under: else auth could not set a cookie for it.
func cookieDomain(dst, publicURL *string) value {
	return value{read: func(p *parser, key string) {
		d := strings.TrimPrefix(strings.ToLower(p.str(key)), ".")
		if d == "" {
			return
		}
		if strings.ContainsAny(d, ":/ []") || net.ParseIP(d) != nil || !strings.Contains(d, ".") {
			p.fail(key, "%q is not a domain name with a dot (browsers refuse cookies for a top-level name or an IP address)", d)
			return
		}
		u, err := url.Parse(*publicURL)
		if host := strings.ToLower(u.Hostname()); err != nil || (host != d && !strings.HasSuffix(host, "."+d)) {
			p.fail(key, "PUBLIC_URL's host must be %q or under it, so that auth can set the cookie", d)
			return
		}
		*dst = d
	}}
}

// oneOf is one of allowed, exactly.
func oneOf(dst *string, allowed ...string) value {
	return value{read: func(p *parser, key string) { *dst = p.oneOf(key, allowed...) }, oneOf: allowed}
}

// claimHeaders is a list of claim=X-Auth-Header pairs (parser.claimHeaders).
func claimHeaders(dst *[]ClaimHeader) value {
	return value{read: func(p *parser, key string) { *dst = p.claimHeaders(key) }}
}

// limit is a rate limit budget (ratelimit.ParseLimit).
func limit(dst *ratelimit.Limit) value {
	return value{read: func(p *parser, key string) { *dst = p.limit(key) }}
}

// namespace is a NATS namespace (events.ParseNamespace).
func namespace(dst *events.Namespace) value {
	return value{read: func(p *parser, key string) { *dst = p.namespace(key) }}
}

// Load reads the configuration of a service whose default listen address is httpAddr.
// lookup reads the environment (os.LookupEnv in production, a map in tests).
func Load(httpAddr string, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c := &Config{}
	table := settings(c, httpAddr)
	v := viper.New()
	for _, s := range table {
		v.SetDefault(s.key(), s.def)
	}
	if file, ok := lookup("CONFIG_FILE"); ok && file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("CONFIG_FILE: cannot read %s: %w", file, err)
		}
	}
	// Environment overrides the file. Viper's AutomaticEnv reads os.Getenv directly, so
	// the lookup is applied by hand to keep tests hermetic.
	for _, s := range table {
		if val, ok := lookup(s.name); ok {
			v.Set(s.key(), val)
		}
	}
	// A secret may be given as NAME_FILE (Kubernetes secrets, Vault agent), which wins.
	for _, s := range table {
		if !s.secret {
			continue
		}
		env := s.name + "_FILE"
		path, ok := lookup(env)
		if !ok || path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read the file it names: %w", env, errors.Unwrap(err))
		}
		v.Set(s.key(), strings.TrimRight(string(b), "\r\n"))
	}
	return parse(v, c, table)
}

type parser struct {
	v   *viper.Viper
	err error
}

func (p *parser) fail(key, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: %s", strings.ToUpper(key), fmt.Sprintf(format, args...))
	}
}

func (p *parser) str(key string) string { return strings.TrimSpace(p.v.GetString(key)) }

// list reads a comma-separated string (environment) or a YAML sequence (file).
func (p *parser) list(key string) []string {
	var items []string
	switch v := p.v.Get(key).(type) {
	case []any:
		for _, item := range v {
			items = append(items, fmt.Sprint(item))
		}
	case []string:
		items = v
	default:
		items = strings.Split(p.v.GetString(key), ",")
	}
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) duration(key string, minimum time.Duration) time.Duration {
	raw := p.str(key)
	d, err := time.ParseDuration(raw)
	if err != nil {
		p.fail(key, "%q is not a duration (e.g. 15m, 720h)", raw)
		return 0
	}
	if d < minimum {
		p.fail(key, "must be at least %s", minimum)
	}
	return d
}

func (p *parser) integer(key string, lo, hi int) int {
	raw := p.str(key)
	var n int
	if _, err := fmt.Sscan(raw, &n); err != nil || fmt.Sprint(n) != raw {
		p.fail(key, "%q is not an integer", raw)
		return 0
	}
	if n < lo || n > hi {
		p.fail(key, "must be between %d and %d", lo, hi)
	}
	return n
}

func (p *parser) boolean(key string) bool {
	switch strings.ToLower(p.str(key)) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	p.fail(key, "%q is not a boolean", p.str(key))
	return false
}

func (p *parser) url(key string, schemes ...string) string {
	raw := p.str(key)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// Connection strings carry credentials: never quote the value.
		p.fail(key, "is not an absolute URL")
		return raw
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return raw
		}
	}
	p.fail(key, "scheme must be one of %s", strings.Join(schemes, ", "))
	return raw
}

func (p *parser) limit(key string) ratelimit.Limit {
	l, err := ratelimit.ParseLimit(p.str(key))
	if err != nil {
		p.fail(key, "%v", err)
	}
	return l
}

func (p *parser) namespace(key string) events.Namespace {
	ns, err := events.ParseNamespace(p.str(key))
	if err != nil {
		p.fail(key, "%v", err)
	}
	return ns
}

func (p *parser) oneOf(key string, allowed ...string) string {
	raw := p.str(key)
	for _, a := range allowed {
		if raw == a {
			return raw
		}
	}
	p.fail(key, "%q must be one of %s", raw, strings.Join(allowed, ", "))
	return raw
}

// oauthProviders reads the provider registrations; a client id without its secret, a
// bad URL or an OIDC provider without a usable name stops the process.
func (p *parser) oauthProviders() OAuthProviders {
	var ps OAuthProviders
	read := func(prefix string) OAuthProvider {
		pr := OAuthProvider{ClientID: p.str(prefix + "_client_id"),
			ClientSecret: strings.TrimSpace(p.v.GetString(prefix + "_client_secret"))}
		if pr.Enabled() && pr.ClientSecret == "" {
			p.fail(prefix+"_client_secret", "must be set when %s is", strings.ToUpper(prefix+"_client_id"))
		}
		return pr
	}
	if ps.GitHub = read("oauth_github"); ps.GitHub.Enabled() {
		ps.GitHub.Name = "github"
		ps.GitHub.BaseURL = strings.TrimRight(p.url("oauth_github_base_url", "http", "https"), "/")
		ps.GitHub.APIURL = strings.TrimRight(p.url("oauth_github_api_url", "http", "https"), "/")
	}
	if ps.Google = read("oauth_google"); ps.Google.Enabled() {
		ps.Google.Name = "google"
		ps.Google.Issuer = strings.TrimRight(p.url("oauth_google_issuer", "http", "https"), "/")
	}
	if ps.OIDC = read("oauth_oidc"); ps.OIDC.Enabled() {
		ps.OIDC.Name = p.str("oauth_oidc_name")
		switch ps.OIDC.Name {
		case "":
			p.fail("oauth_oidc_name", "must be set when OAUTH_OIDC_CLIENT_ID is")
		case "github", "google", "token", "identities", "providers":
			p.fail("oauth_oidc_name", "%q is taken by a route or another provider", ps.OIDC.Name)
		}
		if !providerName.MatchString(ps.OIDC.Name) {
			p.fail("oauth_oidc_name", "%q must be lower case letters, digits and dashes", ps.OIDC.Name)
		}
		ps.OIDC.Issuer = strings.TrimRight(p.url("oauth_oidc_issuer", "http", "https"), "/")
	}
	return ps
}

var providerName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// parse runs the table pass (each setting into c's field, in table order), then the
// checks that involve more than one setting or read one the table leaves to them.
func parse(v *viper.Viper, c *Config, table []setting) (*Config, error) {
	p := &parser{v: v}
	for _, s := range table {
		if s.value.read != nil {
			s.value.read(p, s.key())
		}
	}
	if c.OAuthCallbackBaseURL == "" {
		c.OAuthCallbackBaseURL = c.PublicURL
	}
	p.webAuthn(c)
	p.sms(c)
	p.accessTokenHook(c)
	c.OAuthProviders = p.oauthProviders()
	for i, e := range c.AdminEmails {
		c.AdminEmails[i] = strings.ToLower(e)
	}
	for _, cidr := range p.list("trusted_proxies") {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			p.fail("trusted_proxies", "%q is not a CIDR", cidr)
			break
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	for i, o := range c.CORSAllowedOrigins {
		origin, err := plainOrigin(o)
		if err != nil {
			p.fail("cors_allowed_origins", "%v", err)
			break
		}
		c.CORSAllowedOrigins[i] = origin
	}
	if raw := p.str("api_v1_sunset"); raw != "" {
		t, err := parseDate(raw)
		if err != nil {
			p.fail("api_v1_sunset", "%q is not an HTTP-date or an RFC 3339 date (e.g. 2027-06-30)", raw)
		}
		c.APIV1Sunset = t
	}
	for _, r := range c.DatabaseReplicaURLs {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			p.fail("database_replica_urls", "an entry is not a connection URL")
		}
	}
	if c.HTTPAddr == "" {
		p.fail("http_addr", "must not be empty")
	}
	if c.JWTAudience == "" {
		p.fail("jwt_audience", "must not be empty")
	}
	if c.JWTKeysDir == "" {
		p.fail("jwt_keys_dir", "must not be empty")
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisSentinelMaster == "" {
		p.fail("redis_sentinel_master", "must be set when REDIS_SENTINEL_ADDRS is")
	}
	if c.PasswordMaxLength < c.PasswordMinLength {
		p.fail("password_max_length", "must not be below PASSWORD_MIN_LENGTH")
	}
	if c.SessionMaxAge < c.RefreshTokenTTL {
		// Not an error: the absolute lifetime simply caps the idle one.
		c.RefreshTokenTTL = c.SessionMaxAge
	}
	if p.err != nil {
		return nil, p.err
	}
	return c, nil
}

// plainOrigin checks that raw is a browser origin and nothing else: scheme http or https,
// a host (DNS name or IP literal) and an optional port; no path (not even "/"), query,
// fragment, user info, wildcard ("*", "?") or "null". CORS and the v2 CSRF guard compare
// the Origin header with these entries byte for byte, so the entry is returned the way a
// browser serialises an origin: scheme and host in lower case, a default port dropped.
func plainOrigin(raw string) (string, error) {
	if strings.Contains(raw, "@") {
		// Never quote it: user info may hold a password.
		return "", errors.New("an entry holds user info: an origin is scheme://host[:port]")
	}
	if strings.EqualFold(raw, "null") {
		return "", errors.New(`"null" is not allowed: sandboxed frames and file pages send it, list real origins`)
	}
	if strings.ContainsAny(raw, "*?") {
		return "", fmt.Errorf("%q holds a wildcard: list each origin exactly (scheme://host[:port])", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port]", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if !strings.EqualFold(raw, u.Scheme+"://"+u.Host) {
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port], with no path, trailing slash, query or fragment", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.HasSuffix(u.Host, ":") || port != "" && !validPort(port) {
		return "", fmt.Errorf("%q: the port must be a number from 1 to 65535", raw)
	}
	if !validOriginHost(host) {
		return "", fmt.Errorf("%q: the host must be a DNS name (ASCII, xn-- for IDN) or an IP address", raw)
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + ip.String() + "]" // the form browsers send: [::1], not [0:0::1]
	}
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == s
}

// validOriginHost accepts an IP address without a zone or a DNS name of letters, digits
// and dashes.
func validOriginHost(h string) bool {
	if ip := net.ParseIP(h); ip != nil {
		return true
	}
	if h == "" || len(h) > 253 || strings.Contains(h, ":") {
		return false
	}
	labels := strings.Split(h, ".")
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return false // "127.1", "1.2.3.4.5": browsers read a numeric last label as IPv4
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// parseDate reads an HTTP-date (RFC 9110: IMF-fixdate and the obsolete forms), an
// RFC 3339 timestamp or an RFC 3339 full-date (midnight UTC).
func parseDate(raw string) (time.Time, error) {
	if t, err := http.ParseTime(raw); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, raw); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, raw)
}

// sms puts the SMS regions in upper case and refuses what is no ISO 3166 alpha-2 code
// (auth checks that its phone-number library knows each).
func (p *parser) sms(c *Config) {
	region := func(key, r string) string {
		r = strings.ToUpper(r)
		if len(r) != 2 || r[0] < 'A' || r[0] > 'Z' || r[1] < 'A' || r[1] > 'Z' {
			p.fail(key, "%q is not an ISO 3166 alpha-2 region code (e.g. US, GB, DE)", r)
		}
		return r
	}
	if c.SMSDefaultRegion != "" {
		c.SMSDefaultRegion = region("sms_default_region", c.SMSDefaultRegion)
	}
	for i, r := range c.SMSAllowedCountries {
		c.SMSAllowedCountries[i] = region("sms_allowed_countries", r)
	}
}

// accessTokenHook checks ACCESS_TOKEN_HOOK_SECRET: required with ACCESS_TOKEN_HOOK_URL,
// and a Standard Webhooks secret whenever set. The error never quotes it.
func (p *parser) accessTokenHook(c *Config) {
	h := &c.AccessTokenHook
	h.Secret = strings.TrimSpace(h.Secret)
	switch {
	case h.Secret == "" && h.URL != "":
		p.fail("access_token_hook_secret", "must be set when ACCESS_TOKEN_HOOK_URL is (whsec_ + base64 of 24 to 64 random bytes)")
	case h.Secret != "" && webhook.CheckSecret(h.Secret) != nil:
		p.fail("access_token_hook_secret", "is not whsec_ followed by the standard base64 of 24 to 64 random bytes")
	}
}

// builtinClaimHeaders are the headers /v1/auth/verify always sets: no claim may take one.
var builtinClaimHeaders = []string{"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Roles", "X-Auth-Session-Id"}

// claimPathSegment is one segment of a claim path: a JSON member name of letters,
// digits, "_", "-" and ":".
var claimPathSegment = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,64}$`)

// claimHeaders reads VERIFY_CLAIM_HEADERS: each item claim=X-Auth-Header, the claim a
// dotted path of at most 8 non-empty segments, the header an HTTP token that starts
// with X-Auth- (any case) and is none of the built-in ones nor a header named twice.
func (p *parser) claimHeaders(key string) []ClaimHeader {
	var out []ClaimHeader
	seen := map[string]bool{}
	for _, item := range p.list(key) {
		path, header, ok := strings.Cut(item, "=")
		path, header = strings.TrimSpace(path), strings.TrimSpace(header)
		if !ok || path == "" || header == "" {
			p.fail(key, "%q is not claim=X-Auth-Header (e.g. ext.tenant=X-Auth-Tenant)", item)
			return nil
		}
		segs := strings.Split(path, ".")
		if len(segs) > 8 {
			p.fail(key, "%q: a claim path has at most 8 segments", item)
			return nil
		}
		for _, seg := range segs {
			if !claimPathSegment.MatchString(seg) {
				p.fail(key, "%q: the claim must be a dotted path of names of letters, digits, _, - and : (e.g. ext.tenant)", item)
				return nil
			}
		}
		if !validHeaderName(header) || len(header) <= len("X-Auth-") || !strings.EqualFold(header[:len("X-Auth-")], "X-Auth-") {
			p.fail(key, "%q: the header must be a header name that starts with X-Auth- (e.g. X-Auth-Tenant)", item)
			return nil
		}
		header = http.CanonicalHeaderKey(header)
		for _, b := range builtinClaimHeaders {
			if strings.EqualFold(header, b) {
				p.fail(key, "%q: %s is set by /v1/auth/verify itself", item, b)
				return nil
			}
		}
		if seen[header] {
			p.fail(key, "%q: the header %s is named twice", item, header)
			return nil
		}
		seen[header] = true
		out = append(out, ClaimHeader{Claim: segs, Header: header})
	}
	return out
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// EventKeyring parses EVENT_KEYS (or the file EVENT_KEYS_FILE names, one key a line or
// comma-separated): the first key seals, every key opens. Only the services that seal
// or open event fields call it, so the others need no key; for those that do, an empty
// setting is an error. The error names EVENT_KEYS and never quotes key material.
func (c *Config) EventKeyring() (*keyring.Keyring, error) {
	return parseKeyring("EVENT_KEYS", c.EventKeys)
}

// MFAKeyring parses MFA_ENCRYPTION_KEYS (or the file MFA_ENCRYPTION_KEYS_FILE names):
// AES-256-GCM keys with ids that seal TOTP secrets. The first key seals; every key
// opens, so a key rotates by prepending a new one, re-encrypting (`auth mfa
// reencrypt`) and then dropping the old one. Empty is an error for the services that
// call it; the error never quotes key material.
func (c *Config) MFAKeyring() (*keyring.Keyring, error) {
	return parseKeyring("MFA_ENCRYPTION_KEYS", c.MFAEncryptionKeys)
}

// parseKeyring parses the keyring setting name ("kid:base64-32-byte-key[,kid:key...]", or one
// key a line as a NAME_FILE holds it); its errors name the setting, never the keys.
func parseKeyring(name, value string) (*keyring.Keyring, error) {
	spec := strings.NewReplacer("\r\n", ",", "\n", ",").Replace(value)
	if strings.Trim(spec, ", \t") == "" {
		return nil, fmt.Errorf("%s: must be set to kid:base64-32-byte-key[,kid:key...] (or %s_FILE to a file holding it)", name, name)
	}
	k, err := keyring.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return k, nil
}

// webAuthn completes the relying party: its id defaults to PUBLIC_URL's host and its
// origins to PUBLIC_URL's and APP_URL's; each origin is a bare http(s) origin whose host
// is the id or under it, as browsers require, so a mistake fails at start rather than
// at every ceremony.
//
// WebAuthn has no relying party on an IP address: when PUBLIC_URL's host is one and no id
// is set, the id stays empty and passkeys are off; an id that is one fails.
func (p *parser) webAuthn(c *Config) {
	if c.WebAuthnRPID == "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || net.ParseIP(u.Hostname()) != nil {
			c.WebAuthnRPOrigins = nil
			return
		}
		c.WebAuthnRPID = u.Hostname()
	}
	c.WebAuthnRPID = strings.ToLower(c.WebAuthnRPID)
	if strings.ContainsAny(c.WebAuthnRPID, ":/ []") || net.ParseIP(c.WebAuthnRPID) != nil {
		p.fail("webauthn_rp_id", "%q is not a domain name (WebAuthn has no relying party on an IP address)", c.WebAuthnRPID)
		return
	}
	under := func(host string) bool {
		host = strings.ToLower(host)
		return host == c.WebAuthnRPID || strings.HasSuffix(host, "."+c.WebAuthnRPID)
	}
	if len(c.WebAuthnRPOrigins) == 0 {
		// By default only the origins that can be the id's: an app on another domain
		// needs its own relying party (WEBAUTHN_RP_ID) to use passkeys.
		for _, base := range []string{c.PublicURL, c.AppURL} {
			u, err := url.Parse(base)
			if err == nil && under(u.Hostname()) && !slices.Contains(c.WebAuthnRPOrigins, u.Scheme+"://"+u.Host) {
				c.WebAuthnRPOrigins = append(c.WebAuthnRPOrigins, u.Scheme+"://"+u.Host)
			}
		}
	}
	for i, o := range c.WebAuthnRPOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimRight(u.Path, "/") != "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.fail("webauthn_rp_origins", "%q is not an origin (scheme://host[:port])", o)
			return
		}
		if !under(u.Hostname()) {
			p.fail("webauthn_rp_origins", "the host of %q is neither WEBAUTHN_RP_ID (%s) nor under it", o, c.WebAuthnRPID)
			return
		}
		c.WebAuthnRPOrigins[i] = strings.ToLower(u.Scheme + "://" + u.Host)
	}
}

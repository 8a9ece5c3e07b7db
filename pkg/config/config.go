// Package config loads every setting of the public contract (API.md) through viper:
// defaults, then an optional YAML file named by CONFIG_FILE, then environment variables,
// then NAME_FILE for secrets. Load validates everything and returns one error line that
// names the variable at fault.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
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

	OAuthRedirectAllowlist []string
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

// RateLimits are the per-purpose budgets, per client IP unless named otherwise.
type RateLimits struct {
	Global, Login, Register, Forgot, Resend, Refresh, EmailVerify, MFA ratelimit.Limit
	// EmailsPerAddress caps the mails one address can be sent (per normalised address,
	// known or not, so the cap tells nobody whether it has an account).
	EmailsPerAddress ratelimit.Limit
}

// rateLimitDefaults: generous for people, tight for scripts.
var rateLimitDefaults = map[string]string{
	"rate_limit_global":             "600/m",
	"rate_limit_login":              "30/m",
	"rate_limit_register":           "20/h",
	"rate_limit_forgot":             "20/h",
	"rate_limit_resend":             "20/h",
	"rate_limit_refresh":            "120/m",
	"rate_limit_email_verify":       "60/h",
	"rate_limit_mfa":                "30/m",
	"rate_limit_emails_per_address": "5/h",
}

// secrets may be given as NAME_FILE (Kubernetes secrets, Vault agent).
var secrets = []string{
	"database_url", "redis_url", "smtp_password", "event_keys", "mfa_encryption_keys",
	"oauth_github_client_secret", "oauth_google_client_secret", "oauth_oidc_client_secret",
}

func defaults(v *viper.Viper, httpAddr string) {
	v.SetDefault("http_addr", httpAddr)
	v.SetDefault("database_url", "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable")
	v.SetDefault("database_replica_urls", "")
	v.SetDefault("redis_url", "redis://127.0.0.1:6379/0")
	v.SetDefault("redis_cluster_addrs", "")
	v.SetDefault("redis_sentinel_addrs", "")
	v.SetDefault("redis_sentinel_master", "")
	v.SetDefault("nats_url", "nats://127.0.0.1:4222")
	v.SetDefault("nats_namespace", "")
	v.SetDefault("public_url", "http://localhost:8081")
	v.SetDefault("app_url", "http://localhost:3000")
	v.SetDefault("oauth_callback_base_url", "")
	v.SetDefault("jwt_audience", "talentforge")
	v.SetDefault("jwt_keys_dir", "./var/keys")
	v.SetDefault("jwt_alg", "EdDSA")
	v.SetDefault("access_token_ttl", "15m")
	v.SetDefault("refresh_token_ttl", "720h")
	v.SetDefault("session_max_age", "2160h")
	v.SetDefault("reauth_max_age", "5m")
	v.SetDefault("refresh_reuse_grace", "10s")
	v.SetDefault("email_verification_required", true)
	v.SetDefault("admin_emails", "")
	v.SetDefault("password_min_length", 8)
	v.SetDefault("password_max_length", 256)
	v.SetDefault("password_argon_memory_kib", 19456)
	v.SetDefault("password_argon_iterations", 2)
	v.SetDefault("password_argon_parallelism", 1)
	v.SetDefault("password_hash_concurrency", 0)
	v.SetDefault("password_hash_queue_timeout", "1s")
	v.SetDefault("password_min_strength", 0)
	v.SetDefault("password_breach_check_url", "")
	v.SetDefault("password_breach_check_fail_closed", true)
	v.SetDefault("rate_limit_enabled", true)
	for k, d := range rateLimitDefaults {
		v.SetDefault(k, d)
	}
	v.SetDefault("login_throttle_failures", 10)
	v.SetDefault("login_throttle_ip_failures", 5)
	v.SetDefault("login_throttle_wait_increment", "1s")
	v.SetDefault("login_throttle_max_wait", "15m")
	v.SetDefault("rate_limit_ipv6_prefix", ratelimit.DefaultIPv6Prefix)
	v.SetDefault("trusted_proxies", "")
	v.SetDefault("cors_allowed_origins", "http://localhost:3000")
	v.SetDefault("api_v1_sunset", "")
	v.SetDefault("smtp_host", "127.0.0.1")
	v.SetDefault("smtp_port", 1025)
	v.SetDefault("smtp_username", "")
	v.SetDefault("smtp_password", "")
	v.SetDefault("smtp_from", "no-reply@localhost")
	v.SetDefault("smtp_tls", "none")
	v.SetDefault("oauth_redirect_allowlist", "http://localhost:3000")
	v.SetDefault("oauth_github_client_id", "")
	v.SetDefault("oauth_github_client_secret", "")
	v.SetDefault("oauth_github_base_url", "https://github.com")
	v.SetDefault("oauth_github_api_url", "https://api.github.com")
	v.SetDefault("oauth_google_client_id", "")
	v.SetDefault("oauth_google_client_secret", "")
	v.SetDefault("oauth_google_issuer", "https://accounts.google.com")
	v.SetDefault("oauth_oidc_name", "")
	v.SetDefault("oauth_oidc_issuer", "")
	v.SetDefault("oauth_oidc_client_id", "")
	v.SetDefault("oauth_oidc_client_secret", "")
	v.SetDefault("oauth_provider_timeout", "10s")
	v.SetDefault("event_keys", "")
	v.SetDefault("mfa_encryption_keys", "")
	v.SetDefault("otel_exporter_otlp_endpoint", "")
	v.SetDefault("log_level", "info")
	v.SetDefault("pprof_enabled", false)
	v.SetDefault("log_format", "json")
	v.SetDefault("shutdown_timeout", "20s")
}

// Load reads the configuration of a service whose default listen address is httpAddr.
// lookup reads the environment (os.LookupEnv in production, a map in tests).
func Load(httpAddr string, lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v := viper.New()
	defaults(v, httpAddr)
	if file, ok := lookup("CONFIG_FILE"); ok && file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("CONFIG_FILE: cannot read %s: %w", file, err)
		}
	}
	// Environment overrides the file. Viper's AutomaticEnv reads os.Getenv directly, so
	// the lookup is applied by hand to keep tests hermetic.
	for _, key := range v.AllKeys() {
		env := strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if val, ok := lookup(env); ok {
			v.Set(key, val)
		}
	}
	for _, key := range secrets {
		env := strings.ToUpper(key) + "_FILE"
		path, ok := lookup(env)
		if !ok || path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read the file it names: %w", env, errors.Unwrap(err))
		}
		v.Set(key, strings.TrimRight(string(b), "\r\n"))
	}
	return parse(v)
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

func parse(v *viper.Viper) (*Config, error) {
	p := &parser{v: v}
	c := &Config{
		HTTPAddr:            p.str("http_addr"),
		DatabaseURL:         p.url("database_url", "postgres", "postgresql"),
		DatabaseReplicaURLs: p.list("database_replica_urls"),
		RedisURL:            p.url("redis_url", "redis", "rediss", "unix"),
		RedisClusterAddrs:   p.list("redis_cluster_addrs"),
		RedisSentinelAddrs:  p.list("redis_sentinel_addrs"),
		RedisSentinelMaster: p.str("redis_sentinel_master"),
		NATSURL:             p.str("nats_url"),
		NATSNamespace:       p.namespace("nats_namespace"),
		PublicURL:           strings.TrimRight(p.url("public_url", "http", "https"), "/"),
		AppURL:              strings.TrimRight(p.url("app_url", "http", "https"), "/"),

		JWTAudience:       p.str("jwt_audience"),
		JWTKeysDir:        p.str("jwt_keys_dir"),
		JWTAlg:            p.oneOf("jwt_alg", "EdDSA", "ES256", "RS256"),
		AccessTokenTTL:    p.duration("access_token_ttl", time.Minute),
		RefreshTokenTTL:   p.duration("refresh_token_ttl", time.Minute),
		SessionMaxAge:     p.duration("session_max_age", time.Minute),
		ReauthMaxAge:      p.duration("reauth_max_age", time.Second),
		RefreshReuseGrace: p.duration("refresh_reuse_grace", 0),

		EmailVerificationRequired:     p.boolean("email_verification_required"),
		PasswordMinLength:             p.integer("password_min_length", 8, 1024),
		PasswordMaxLength:             p.integer("password_max_length", 8, 4096),
		PasswordArgonMemoryKiB:        uint32(p.integer("password_argon_memory_kib", 8, 4<<20)),
		PasswordArgonIterations:       uint32(p.integer("password_argon_iterations", 1, 100)),
		PasswordArgonParallelism:      uint8(p.integer("password_argon_parallelism", 1, 255)),
		PasswordHashConcurrency:       p.integer("password_hash_concurrency", 0, 1024),
		PasswordHashQueueTimeout:      p.duration("password_hash_queue_timeout", time.Millisecond),
		PasswordMinStrength:           p.integer("password_min_strength", 0, 4),
		PasswordBreachCheckFailClosed: p.boolean("password_breach_check_fail_closed"),

		RateLimitEnabled: p.boolean("rate_limit_enabled"),
		RateLimits: RateLimits{
			Global: p.limit("rate_limit_global"), Login: p.limit("rate_limit_login"),
			Register: p.limit("rate_limit_register"), Forgot: p.limit("rate_limit_forgot"),
			Resend: p.limit("rate_limit_resend"), Refresh: p.limit("rate_limit_refresh"),
			EmailVerify: p.limit("rate_limit_email_verify"), MFA: p.limit("rate_limit_mfa"),
			EmailsPerAddress: p.limit("rate_limit_emails_per_address"),
		},
		LoginThrottle: ratelimit.ThrottleConfig{
			Failures:      p.integer("login_throttle_failures", 1, 100),
			FailuresPerIP: p.integer("login_throttle_ip_failures", 1, 100),
			WaitIncrement: p.duration("login_throttle_wait_increment", time.Millisecond),
			MaxWait:       p.duration("login_throttle_max_wait", time.Millisecond),
			// Every per-IP budget and the per-IP throttle key an IPv6 client by this prefix.
			IPv6Prefix: p.integer("rate_limit_ipv6_prefix", 32, 128),
		},
		CORSAllowedOrigins: p.list("cors_allowed_origins"),

		SMTPHost:     p.str("smtp_host"),
		SMTPPort:     p.integer("smtp_port", 1, 65535),
		SMTPUsername: p.str("smtp_username"),
		SMTPPassword: p.v.GetString("smtp_password"),
		SMTPFrom:     p.str("smtp_from"),
		SMTPTLS:      p.oneOf("smtp_tls", "none", "starttls", "tls"),

		OAuthRedirectAllowlist: p.list("oauth_redirect_allowlist"),
		OAuthProviderTimeout:   p.duration("oauth_provider_timeout", 100*time.Millisecond),
		EventKeys:              p.v.GetString("event_keys"),
		MFAEncryptionKeys:      p.v.GetString("mfa_encryption_keys"),

		OTELExporterOTLPEndpoint: p.str("otel_exporter_otlp_endpoint"),
		PprofEnabled:             p.boolean("pprof_enabled"),
		LogLevel:                 p.oneOf("log_level", "debug", "info", "warn", "error"),
		LogFormat:                p.oneOf("log_format", "json", "console"),
		ShutdownTimeout:          p.duration("shutdown_timeout", time.Second),
	}
	c.OAuthCallbackBaseURL = c.PublicURL
	if p.str("password_breach_check_url") != "" {
		c.PasswordBreachCheckURL = strings.TrimRight(p.url("password_breach_check_url", "http", "https"), "/")
	}
	if p.str("oauth_callback_base_url") != "" {
		c.OAuthCallbackBaseURL = strings.TrimRight(p.url("oauth_callback_base_url", "http", "https"), "/")
	}
	c.OAuthProviders = p.oauthProviders()
	for _, e := range p.list("admin_emails") {
		c.AdminEmails = append(c.AdminEmails, strings.ToLower(e))
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

// EventKeyring parses EVENT_KEYS (or the file EVENT_KEYS_FILE names, one key a line or
// comma-separated): the first key seals, every key opens. Only the services that seal
// or open event fields call it, so the others need no key; for those that do, an empty
// setting is an error. The error names EVENT_KEYS and never quotes key material.
func (c *Config) EventKeyring() (*events.Keyring, error) {
	spec := strings.NewReplacer("\r\n", ",", "\n", ",").Replace(c.EventKeys)
	if strings.Trim(spec, ", \t") == "" {
		return nil, errors.New("EVENT_KEYS: must be set to kid:base64-32-byte-key[,kid:key...] (or EVENT_KEYS_FILE to a file holding it)")
	}
	k, err := events.ParseKeyring(spec)
	if err != nil {
		return nil, fmt.Errorf("EVENT_KEYS: %v", err)
	}
	return k, nil
}

// MFAKeyring parses MFA_ENCRYPTION_KEYS (or the file MFA_ENCRYPTION_KEYS_FILE names):
// AES-256-GCM keys with ids that seal TOTP secrets. The first key seals; every key
// opens, so a key rotates by prepending a new one, re-encrypting (`auth mfa
// reencrypt`) and then dropping the old one. Empty is an error for the services that
// call it; the error never quotes key material.
func (c *Config) MFAKeyring() (*events.Keyring, error) {
	spec := strings.NewReplacer("\r\n", ",", "\n", ",").Replace(c.MFAEncryptionKeys)
	if strings.Trim(spec, ", \t") == "" {
		return nil, errors.New("MFA_ENCRYPTION_KEYS: must be set to kid:base64-32-byte-key[,kid:key...] (or MFA_ENCRYPTION_KEYS_FILE to a file holding it)")
	}
	k, err := events.ParseKeyring(spec)
	if err != nil {
		return nil, fmt.Errorf("MFA_ENCRYPTION_KEYS: %v", err)
	}
	return k, nil
}

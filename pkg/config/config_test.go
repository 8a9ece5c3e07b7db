package config

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a hermetic lookup over m: nothing is read from the process environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func mustLoad(t *testing.T, httpAddr string, m map[string]string) *Config {
	t.Helper()
	c, err := Load(httpAddr, env(m))
	if err != nil {
		t.Fatalf("Load(%q, %v): unexpected error: %v", httpAddr, m, err)
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadHTTPAddrDefaultsToTheServiceArgument(t *testing.T) {
	for _, addr := range []string{":8081", ":8082", ":8083"} {
		t.Run(addr, func(t *testing.T) {
			if got := mustLoad(t, addr, nil).HTTPAddr; got != addr {
				t.Fatalf("HTTPAddr = %q, want %q", got, addr)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	c := mustLoad(t, ":8081", nil)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"DATABASE_URL", c.DatabaseURL, "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable"},
		{"DATABASE_REPLICA_URLS", len(c.DatabaseReplicaURLs), 0},
		{"REDIS_URL", c.RedisURL, "redis://127.0.0.1:6379/0"},
		{"REDIS_CLUSTER_ADDRS", len(c.RedisClusterAddrs), 0},
		{"REDIS_SENTINEL_ADDRS", len(c.RedisSentinelAddrs), 0},
		{"REDIS_SENTINEL_MASTER", c.RedisSentinelMaster, ""},
		{"NATS_URL", c.NATSURL, "nats://127.0.0.1:4222"},
		{"WEBAUTHN_RP_ID", c.WebAuthnRPID, "localhost"},
		{"WEBAUTHN_RP_NAME", c.WebAuthnRPName, "TalentForge"},
		{"SMS_PROVIDER", c.SMSProvider, "none"},
		{"TWILIO_API_URL", c.TwilioAPIURL, "https://api.twilio.com"},
		{"SMS_DEFAULT_REGION", c.SMSDefaultRegion, ""},
		{"SMS_ALLOWED_COUNTRIES", len(c.SMSAllowedCountries), 0},
		{"OTP_SIGNUP", c.OTPSignup, false},
		{"WEBHOOK_ALLOW_PRIVATE_NETWORKS", c.WebhookAllowPrivateNetworks, false},
		{"FEATURE_FLAGS", c.FeatureFlags, ""},
		{"ACCESS_TOKEN_HOOK_URL", c.AccessTokenHook.URL, ""},
		{"ACCESS_TOKEN_HOOK_TIMEOUT", c.AccessTokenHook.Timeout, 2 * time.Second},
		{"ACCESS_TOKEN_HOOK_FAILURE", c.AccessTokenHook.Failure, "closed"},
		{"VERIFY_CLAIM_HEADERS", len(c.VerifyClaimHeaders), 0},
		// APP_URL's origin too: localhost:3000 is under the id.
		{"WEBAUTHN_RP_ORIGINS", c.WebAuthnRPOrigins, []string{"http://localhost:8081", "http://localhost:3000"}},
		{"PUBLIC_URL", c.PublicURL, "http://localhost:8081"},
		{"APP_URL", c.AppURL, "http://localhost:3000"},
		{"OAUTH_CALLBACK_BASE_URL", c.OAuthCallbackBaseURL, "http://localhost:8081"},
		{"JWT_AUDIENCE", c.JWTAudience, "talentforge"},
		{"JWT_KEYS_DIR", c.JWTKeysDir, "./var/keys"},
		{"JWT_ALG", c.JWTAlg, "EdDSA"},
		{"ACCESS_TOKEN_TTL", c.AccessTokenTTL, 15 * time.Minute},
		{"REFRESH_TOKEN_TTL", c.RefreshTokenTTL, 720 * time.Hour},
		{"SESSION_MAX_AGE", c.SessionMaxAge, 2160 * time.Hour},
		{"REAUTH_MAX_AGE", c.ReauthMaxAge, 5 * time.Minute},
		{"REFRESH_REUSE_GRACE", c.RefreshReuseGrace, 10 * time.Second},
		{"EMAIL_VERIFICATION_REQUIRED", c.EmailVerificationRequired, true},
		{"ADMIN_EMAILS", len(c.AdminEmails), 0},
		{"PASSWORD_MIN_LENGTH", c.PasswordMinLength, 8},
		{"PASSWORD_MAX_LENGTH", c.PasswordMaxLength, 256},
		{"RATE_LIMIT_ENABLED", c.RateLimitEnabled, true},
		{"TRUSTED_PROXIES", len(c.TrustedProxies), 0},
		{"CORS_ALLOWED_ORIGINS", c.CORSAllowedOrigins, []string{"http://localhost:3000"}},
		{"SMTP_HOST", c.SMTPHost, "127.0.0.1"},
		{"SMTP_PORT", c.SMTPPort, 1025},
		{"SMTP_USERNAME", c.SMTPUsername, ""},
		{"SMTP_PASSWORD", c.SMTPPassword, ""},
		{"SMTP_FROM", c.SMTPFrom, "no-reply@localhost"},
		{"SMTP_TLS", c.SMTPTLS, "none"},
		{"OAUTH_REDIRECT_ALLOWLIST", c.OAuthRedirectAllowlist, []string{"http://localhost:3000"}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.OTELExporterOTLPEndpoint, ""},
		{"LOG_LEVEL", c.LogLevel, "info"},
		{"LOG_FORMAT", c.LogFormat, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("%s default = %#v, want %#v", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	tests := []struct {
		env   string
		value string
		got   func(*Config) any
		want  any
	}{
		{"HTTP_ADDR", "127.0.0.1:9999", func(c *Config) any { return c.HTTPAddr }, "127.0.0.1:9999"},
		{"DATABASE_URL", "postgres://u:p@db.internal:5433/x?sslmode=require", func(c *Config) any { return c.DatabaseURL }, "postgres://u:p@db.internal:5433/x?sslmode=require"},
		{"REDIS_URL", "rediss://cache.internal:6380/2", func(c *Config) any { return c.RedisURL }, "rediss://cache.internal:6380/2"},
		{"NATS_URL", "nats://nats.internal:4222", func(c *Config) any { return c.NATSURL }, "nats://nats.internal:4222"},
		{"PUBLIC_URL", "https://api.example.com/", func(c *Config) any { return c.PublicURL }, "https://api.example.com"},
		{"PUBLIC_URL", "https://api.example.com:8443", func(c *Config) any { return c.WebAuthnRPID }, "api.example.com"},
		{"WEBAUTHN_RP_ID", "Example.COM", func(c *Config) any { return c.WebAuthnRPID }, "example.com"},
		{"SMS_DEFAULT_REGION", "de", func(c *Config) any { return c.SMSDefaultRegion }, "DE"},
		{"SMS_ALLOWED_COUNTRIES", "us, ca", func(c *Config) any { return c.SMSAllowedCountries }, []string{"US", "CA"}},
		// No relying party on an IP address: passkeys off, and the service starts.
		{"PUBLIC_URL", "http://127.0.0.1:8081", func(c *Config) any { return c.WebAuthnRPID + strings.Join(c.WebAuthnRPOrigins, ",") }, ""},
		{"PUBLIC_URL", "http://[::1]:8081", func(c *Config) any { return c.WebAuthnRPID + strings.Join(c.WebAuthnRPOrigins, ",") }, ""},
		{"WEBAUTHN_RP_ORIGINS", "https://localhost, HTTPS://Login.localhost:8443", func(c *Config) any { return c.WebAuthnRPOrigins }, []string{"https://localhost", "https://login.localhost:8443"}},
		{"APP_URL", "https://app.example.com", func(c *Config) any { return c.AppURL }, "https://app.example.com"},
		{"OAUTH_CALLBACK_BASE_URL", "https://cb.example.com", func(c *Config) any { return c.OAuthCallbackBaseURL }, "https://cb.example.com"},
		{"JWT_AUDIENCE", "other", func(c *Config) any { return c.JWTAudience }, "other"},
		{"JWT_KEYS_DIR", "/etc/keys", func(c *Config) any { return c.JWTKeysDir }, "/etc/keys"},
		{"JWT_ALG", "ES256", func(c *Config) any { return c.JWTAlg }, "ES256"},
		{"JWT_ALG", "RS256", func(c *Config) any { return c.JWTAlg }, "RS256"},
		{"ACCESS_TOKEN_TTL", "5m", func(c *Config) any { return c.AccessTokenTTL }, 5 * time.Minute},
		{"REFRESH_TOKEN_TTL", "24h", func(c *Config) any { return c.RefreshTokenTTL }, 24 * time.Hour},
		{"SESSION_MAX_AGE", "4000h", func(c *Config) any { return c.SessionMaxAge }, 4000 * time.Hour},
		{"REAUTH_MAX_AGE", "90s", func(c *Config) any { return c.ReauthMaxAge }, 90 * time.Second},
		{"REFRESH_REUSE_GRACE", "0s", func(c *Config) any { return c.RefreshReuseGrace }, time.Duration(0)},
		{"EMAIL_VERIFICATION_REQUIRED", "false", func(c *Config) any { return c.EmailVerificationRequired }, false},
		{"PASSWORD_MIN_LENGTH", "12", func(c *Config) any { return c.PasswordMinLength }, 12},
		{"PASSWORD_MAX_LENGTH", "1024", func(c *Config) any { return c.PasswordMaxLength }, 1024},
		{"RATE_LIMIT_ENABLED", "false", func(c *Config) any { return c.RateLimitEnabled }, false},
		{"CORS_ALLOWED_ORIGINS", "https://a.example.com, https://b.example.com", func(c *Config) any { return c.CORSAllowedOrigins }, []string{"https://a.example.com", "https://b.example.com"}},
		{"SMTP_HOST", "smtp.example.com", func(c *Config) any { return c.SMTPHost }, "smtp.example.com"},
		{"SMTP_PORT", "587", func(c *Config) any { return c.SMTPPort }, 587},
		{"SMTP_USERNAME", "mailer", func(c *Config) any { return c.SMTPUsername }, "mailer"},
		{"SMTP_PASSWORD", "pw", func(c *Config) any { return c.SMTPPassword }, "pw"},
		{"SMTP_FROM", "auth@example.com", func(c *Config) any { return c.SMTPFrom }, "auth@example.com"},
		{"SMTP_TLS", "starttls", func(c *Config) any { return c.SMTPTLS }, "starttls"},
		{"SMTP_TLS", "tls", func(c *Config) any { return c.SMTPTLS }, "tls"},
		{"OAUTH_REDIRECT_ALLOWLIST", "https://a.example.com/,https://b.example.com/x", func(c *Config) any { return c.OAuthRedirectAllowlist }, []string{"https://a.example.com/", "https://b.example.com/x"}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318", func(c *Config) any { return c.OTELExporterOTLPEndpoint }, "http://otel:4318"},
		{"LOG_LEVEL", "debug", func(c *Config) any { return c.LogLevel }, "debug"},
		{"LOG_FORMAT", "console", func(c *Config) any { return c.LogFormat }, "console"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			c := mustLoad(t, ":8081", map[string]string{tt.env: tt.value})
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s=%q: got %#v, want %#v", tt.env, tt.value, got, tt.want)
			}
		})
	}
}

func TestOAuthCallbackBaseURLFollowsPublicURL(t *testing.T) {
	c := mustLoad(t, ":8082", map[string]string{"PUBLIC_URL": "https://gateway.example.com"})
	if c.OAuthCallbackBaseURL != "https://gateway.example.com" {
		t.Fatalf("OAuthCallbackBaseURL = %q, want the PUBLIC_URL", c.OAuthCallbackBaseURL)
	}
}

func TestSessionMaxAgeCapsRefreshTTL(t *testing.T) {
	c := mustLoad(t, ":8081", map[string]string{"SESSION_MAX_AGE": "1h", "REFRESH_TOKEN_TTL": "720h"})
	if c.RefreshTokenTTL != time.Hour {
		t.Fatalf("RefreshTokenTTL = %s, want it capped to SESSION_MAX_AGE 1h", c.RefreshTokenTTL)
	}
}

func TestConfigFileOverriddenByEnv(t *testing.T) {
	file := writeFile(t, "config.yaml", strings.Join([]string{
		"access_token_ttl: 5m",
		"jwt_audience: from-file",
		"password_min_length: 10",
		"email_verification_required: false",
		"smtp_tls: starttls",
		"public_url: https://file.example.com",
		"",
	}, "\n"))
	tests := []struct {
		name string
		env  map[string]string
		got  func(*Config) any
		want any
	}{
		{"file duration", nil, func(c *Config) any { return c.AccessTokenTTL }, 5 * time.Minute},
		{"file string", nil, func(c *Config) any { return c.JWTAudience }, "from-file"},
		{"file int", nil, func(c *Config) any { return c.PasswordMinLength }, 10},
		{"file bool", nil, func(c *Config) any { return c.EmailVerificationRequired }, false},
		{"file enum", nil, func(c *Config) any { return c.SMTPTLS }, "starttls"},
		{"file url drives callback default", nil, func(c *Config) any { return c.OAuthCallbackBaseURL }, "https://file.example.com"},
		{"untouched default", nil, func(c *Config) any { return c.RefreshTokenTTL }, 720 * time.Hour},
		{"env beats file duration", map[string]string{"ACCESS_TOKEN_TTL": "7m"}, func(c *Config) any { return c.AccessTokenTTL }, 7 * time.Minute},
		{"env beats file string", map[string]string{"JWT_AUDIENCE": "from-env"}, func(c *Config) any { return c.JWTAudience }, "from-env"},
		{"env beats file bool", map[string]string{"EMAIL_VERIFICATION_REQUIRED": "true"}, func(c *Config) any { return c.EmailVerificationRequired }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"CONFIG_FILE": file}
			for k, v := range tt.env {
				m[k] = v
			}
			c := mustLoad(t, ":8081", m)
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// A YAML user writes lists as YAML sequences; they must not be silently dropped.
func TestConfigFileListsAsYAMLSequences(t *testing.T) {
	file := writeFile(t, "config.yaml", strings.Join([]string{
		"admin_emails: [Boss@Example.com, ops@example.com]",
		"cors_allowed_origins:",
		"  - https://a.example.com",
		"  - https://b.example.com",
		"",
	}, "\n"))
	c, err := Load(":8081", env(map[string]string{"CONFIG_FILE": file}))
	if err != nil {
		// Rejecting a sequence with a clear error would also be acceptable.
		if !strings.HasPrefix(err.Error(), "ADMIN_EMAILS") && !strings.HasPrefix(err.Error(), "CORS_ALLOWED_ORIGINS") {
			t.Fatalf("error %q does not name the variable", err)
		}
		return
	}
	if want := []string{"boss@example.com", "ops@example.com"}; !reflect.DeepEqual(c.AdminEmails, want) {
		t.Errorf("AdminEmails from a YAML sequence = %#v, want %#v", c.AdminEmails, want)
	}
	if want := []string{"https://a.example.com", "https://b.example.com"}; !reflect.DeepEqual(c.CORSAllowedOrigins, want) {
		t.Errorf("CORSAllowedOrigins from a YAML sequence = %#v, want %#v", c.CORSAllowedOrigins, want)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" means the file does not exist
		prefix  string
	}{
		{"missing file", "", "CONFIG_FILE"},
		{"not yaml", "access_token_ttl: [unclosed\n", "CONFIG_FILE"},
		{"bad value in file", "access_token_ttl: soon\n", "ACCESS_TOKEN_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "absent.yaml")
			if tt.content != "" {
				path = writeFile(t, "c.yaml", tt.content)
			}
			_, err := Load(":8081", env(map[string]string{"CONFIG_FILE": path}))
			assertOneLineError(t, err, tt.prefix)
		})
	}
}

func TestSecretFiles(t *testing.T) {
	tests := []struct {
		env     string
		content string
		got     func(*Config) string
		want    string
	}{
		{"DATABASE_URL_FILE", "postgres://app:s3cr3t@db:5432/auth?sslmode=disable\n", func(c *Config) string { return c.DatabaseURL }, "postgres://app:s3cr3t@db:5432/auth?sslmode=disable"},
		{"DATABASE_URL_FILE", "postgres://app:s3cr3t@db:5432/auth\r\n", func(c *Config) string { return c.DatabaseURL }, "postgres://app:s3cr3t@db:5432/auth"},
		{"SMTP_PASSWORD_FILE", "hunter2\n", func(c *Config) string { return c.SMTPPassword }, "hunter2"},
		{"SMTP_PASSWORD_FILE", "no newline", func(c *Config) string { return c.SMTPPassword }, "no newline"},
		{"REDIS_URL_FILE", "redis://:pw@cache:6379/1\n", func(c *Config) string { return c.RedisURL }, "redis://:pw@cache:6379/1"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"/"+strings.TrimSpace(tt.content), func(t *testing.T) {
			path := writeFile(t, "secret", tt.content)
			c := mustLoad(t, ":8081", map[string]string{tt.env: path})
			if got := tt.got(c); got != tt.want {
				t.Fatalf("%s: got %q, want %q", tt.env, got, tt.want)
			}
		})
	}
}

func TestSecretFileBeatsPlainEnv(t *testing.T) {
	path := writeFile(t, "secret", "from-file\n")
	c := mustLoad(t, ":8081", map[string]string{"SMTP_PASSWORD": "from-env", "SMTP_PASSWORD_FILE": path})
	if c.SMTPPassword != "from-file" {
		t.Fatalf("SMTPPassword = %q, want the _FILE content", c.SMTPPassword)
	}
}

func TestSecretFileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := Load(":8081", env(map[string]string{"DATABASE_URL_FILE": missing}))
	assertOneLineError(t, err, "DATABASE_URL_FILE")
}

func TestCommaLists(t *testing.T) {
	t.Run("ADMIN_EMAILS lower-cased and trimmed", func(t *testing.T) {
		c := mustLoad(t, ":8081", map[string]string{"ADMIN_EMAILS": " Boss@Example.COM,ops@example.com ,, "})
		if want := []string{"boss@example.com", "ops@example.com"}; !reflect.DeepEqual(c.AdminEmails, want) {
			t.Fatalf("AdminEmails = %#v, want %#v", c.AdminEmails, want)
		}
	})
	t.Run("TRUSTED_PROXIES CIDRs", func(t *testing.T) {
		c := mustLoad(t, ":8081", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.0/24,fd00::/8"})
		var got []string
		for _, n := range c.TrustedProxies {
			got = append(got, n.String())
		}
		if want := []string{"10.0.0.0/8", "192.168.1.0/24", "fd00::/8"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("TrustedProxies = %v, want %v", got, want)
		}
		if !c.TrustedProxies[0].Contains(net.ParseIP("10.1.2.3")) || c.TrustedProxies[0].Contains(net.ParseIP("11.0.0.1")) {
			t.Fatalf("TrustedProxies[0] does not behave as 10.0.0.0/8")
		}
	})
	t.Run("DATABASE_REPLICA_URLS", func(t *testing.T) {
		c := mustLoad(t, ":8081", map[string]string{"DATABASE_REPLICA_URLS": "postgres://r1:5432/auth, postgres://r2:5432/auth"})
		if want := []string{"postgres://r1:5432/auth", "postgres://r2:5432/auth"}; !reflect.DeepEqual(c.DatabaseReplicaURLs, want) {
			t.Fatalf("DatabaseReplicaURLs = %#v, want %#v", c.DatabaseReplicaURLs, want)
		}
	})
	t.Run("REDIS_CLUSTER_ADDRS", func(t *testing.T) {
		c := mustLoad(t, ":8081", map[string]string{"REDIS_CLUSTER_ADDRS": "a:7000,b:7001"})
		if want := []string{"a:7000", "b:7001"}; !reflect.DeepEqual(c.RedisClusterAddrs, want) {
			t.Fatalf("RedisClusterAddrs = %#v, want %#v", c.RedisClusterAddrs, want)
		}
	})
	t.Run("REDIS_SENTINEL_ADDRS with master", func(t *testing.T) {
		c := mustLoad(t, ":8081", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379,s2:26379", "REDIS_SENTINEL_MASTER": "mymaster"})
		if want := []string{"s1:26379", "s2:26379"}; !reflect.DeepEqual(c.RedisSentinelAddrs, want) || c.RedisSentinelMaster != "mymaster" {
			t.Fatalf("sentinel = %#v / %q", c.RedisSentinelAddrs, c.RedisSentinelMaster)
		}
	})
}

func assertOneLineError(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error starting with %s, got nil", prefix)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.HasPrefix(msg, prefix+":") {
		t.Errorf("error %q does not start with %q", msg, prefix+":")
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		prefix string
	}{
		{"bad duration", map[string]string{"ACCESS_TOKEN_TTL": "fifteen"}, "ACCESS_TOKEN_TTL"},
		{"duration without unit", map[string]string{"REFRESH_TOKEN_TTL": "720"}, "REFRESH_TOKEN_TTL"},
		{"bad session max age", map[string]string{"SESSION_MAX_AGE": "90d"}, "SESSION_MAX_AGE"},
		{"bad grace", map[string]string{"REFRESH_REUSE_GRACE": "x"}, "REFRESH_REUSE_GRACE"},
		{"HS256", map[string]string{"JWT_ALG": "HS256"}, "JWT_ALG"},
		{"loud log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"smtp ssl", map[string]string{"SMTP_TLS": "ssl"}, "SMTP_TLS"},
		{"smtp port", map[string]string{"SMTP_PORT": "70000"}, "SMTP_PORT"},
		{"bad bool", map[string]string{"RATE_LIMIT_ENABLED": "maybe"}, "RATE_LIMIT_ENABLED"},
		{"bad email verification bool", map[string]string{"EMAIL_VERIFICATION_REQUIRED": "yes please"}, "EMAIL_VERIFICATION_REQUIRED"},
		{"not a cidr", map[string]string{"TRUSTED_PROXIES": "not-a-cidr"}, "TRUSTED_PROXIES"},
		{"one bad cidr among good", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,300.1.1.1/8"}, "TRUSTED_PROXIES"},
		{"cors wildcard", map[string]string{"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS"},
		{"webauthn origin outside the id", map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_RP_ORIGINS": "https://example.com,https://evil.com"}, "WEBAUTHN_RP_ORIGINS"},
		{"webauthn origin suffix trick", map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_RP_ORIGINS": "https://notexample.com"}, "WEBAUTHN_RP_ORIGINS"},
		{"webauthn origin with a path", map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_RP_ORIGINS": "https://example.com/login"}, "WEBAUTHN_RP_ORIGINS"},
		{"webauthn origin scheme", map[string]string{"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_RP_ORIGINS": "ftp://example.com"}, "WEBAUTHN_RP_ORIGINS"},
		{"webauthn rp id with a port", map[string]string{"WEBAUTHN_RP_ID": "example.com:443"}, "WEBAUTHN_RP_ID"},
		{"webauthn rp id an ip", map[string]string{"WEBAUTHN_RP_ID": "127.0.0.1"}, "WEBAUTHN_RP_ID"},
		{"sms provider unknown", map[string]string{"SMS_PROVIDER": "nexmo"}, "SMS_PROVIDER"},
		{"sms region not alpha-2", map[string]string{"SMS_DEFAULT_REGION": "USA"}, "SMS_DEFAULT_REGION"},
		{"sms country not alpha-2", map[string]string{"SMS_ALLOWED_COUNTRIES": "US,1"}, "SMS_ALLOWED_COUNTRIES"},
		{"cors wildcard among origins", map[string]string{"CORS_ALLOWED_ORIGINS": "http://localhost:3000,*"}, "CORS_ALLOWED_ORIGINS"},
		{"public url ftp", map[string]string{"PUBLIC_URL": "ftp://x"}, "PUBLIC_URL"},
		{"public url relative", map[string]string{"PUBLIC_URL": "/api"}, "PUBLIC_URL"},
		{"app url scheme", map[string]string{"APP_URL": "javascript://x"}, "APP_URL"},
		{"callback url scheme", map[string]string{"OAUTH_CALLBACK_BASE_URL": "ftp://x"}, "OAUTH_CALLBACK_BASE_URL"},
		{"database url scheme", map[string]string{"DATABASE_URL": "mysql://db/auth"}, "DATABASE_URL"},
		{"redis url scheme", map[string]string{"REDIS_URL": "http://cache:6379"}, "REDIS_URL"},
		{"replica not a url", map[string]string{"DATABASE_REPLICA_URLS": "replica-host"}, "DATABASE_REPLICA_URLS"},
		{"sentinel without master", map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379"}, "REDIS_SENTINEL_MASTER"},
		{"password max below min", map[string]string{"PASSWORD_MIN_LENGTH": "20", "PASSWORD_MAX_LENGTH": "10"}, "PASSWORD_MAX_LENGTH"},
		{"password min not int", map[string]string{"PASSWORD_MIN_LENGTH": "eight"}, "PASSWORD_MIN_LENGTH"},
		{"password min too small", map[string]string{"PASSWORD_MIN_LENGTH": "4"}, "PASSWORD_MIN_LENGTH"},
		{"empty http addr", map[string]string{"HTTP_ADDR": ""}, "HTTP_ADDR"},
		{"empty audience", map[string]string{"JWT_AUDIENCE": " "}, "JWT_AUDIENCE"},
		{"access ttl below a minute", map[string]string{"ACCESS_TOKEN_TTL": "30s"}, "ACCESS_TOKEN_TTL"},
		{"hook url without secret", map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal/claims"}, "ACCESS_TOKEN_HOOK_SECRET"},
		{"hook secret without whsec_", map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal/claims", "ACCESS_TOKEN_HOOK_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, "ACCESS_TOKEN_HOOK_SECRET"},
		{"hook secret too short", map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal/claims", "ACCESS_TOKEN_HOOK_SECRET": "whsec_c2hvcnQ="}, "ACCESS_TOKEN_HOOK_SECRET"},
		{"hook secret not base64", map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal/claims", "ACCESS_TOKEN_HOOK_SECRET": "whsec_not base64 at all, not at all!!"}, "ACCESS_TOKEN_HOOK_SECRET"},
		{"hook url relative", map[string]string{"ACCESS_TOKEN_HOOK_URL": "/claims", "ACCESS_TOKEN_HOOK_SECRET": testHookSecret}, "ACCESS_TOKEN_HOOK_URL"},
		{"hook failure mode", map[string]string{"ACCESS_TOKEN_HOOK_FAILURE": "ajar"}, "ACCESS_TOKEN_HOOK_FAILURE"},
		{"hook timeout", map[string]string{"ACCESS_TOKEN_HOOK_TIMEOUT": "1ms"}, "ACCESS_TOKEN_HOOK_TIMEOUT"},
		{"claim header without =", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header empty claim", map[string]string{"VERIFY_CLAIM_HEADERS": "=X-Auth-Tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header empty header", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant="}, "VERIFY_CLAIM_HEADERS"},
		{"claim header empty segment", map[string]string{"VERIFY_CLAIM_HEADERS": "ext..tenant=X-Auth-Tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header trailing dot", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.=X-Auth-Tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header odd claim", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.ten ant=X-Auth-Tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header without prefix", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Tenant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header only the prefix", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Auth-"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header not a token", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Auth-Ten ant"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header colon", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Auth-Tenant:"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header built-in", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.uid=x-auth-user-id"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header built-in roles", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.roles=X-Auth-Roles"}, "VERIFY_CLAIM_HEADERS"},
		{"claim header twice", map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Auth-Tenant,ext.org=x-auth-tenant"}, "VERIFY_CLAIM_HEADERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(":8081", env(tt.env))
			if err == nil {
				t.Fatalf("%v: want an error, got config %+v", tt.env, c)
			}
			assertOneLineError(t, err, tt.prefix)
		})
	}
}

func TestSentinelErrorMentionsBothVariables(t *testing.T) {
	_, err := Load(":8081", env(map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379"}))
	if err == nil || !strings.Contains(err.Error(), "REDIS_SENTINEL_ADDRS") {
		t.Fatalf("error %v should explain that REDIS_SENTINEL_ADDRS needs a master", err)
	}
}

// A connection string with credentials that fails validation must never echo the
// password: the error line goes to the logs.
func TestInvalidConnectionStringsDoNotLeakPasswords(t *testing.T) {
	const secret = "Sup3rS3cretPw"
	tests := []struct {
		name   string
		env    map[string]string
		prefix string
	}{
		{"url without host", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@/auth"}, "DATABASE_URL"},
		{"url with bad port", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@db:port/auth"}, "DATABASE_URL"},
		{"url with bad escape", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "%zz@db/auth"}, "DATABASE_URL"},
		{"wrong scheme", map[string]string{"DATABASE_URL": "mysql://app:" + secret + "@db/auth"}, "DATABASE_URL"},
		{"keyword dsn", map[string]string{"DATABASE_URL": "host=db user=app password=" + secret + " dbname=auth"}, "DATABASE_URL"},
		{"password in query of hostless url", map[string]string{"DATABASE_URL": "postgres:///auth?user=app&password=" + secret}, "DATABASE_URL"},
		{"replica without host", map[string]string{"DATABASE_REPLICA_URLS": "postgres://app:" + secret + "@/auth"}, "DATABASE_REPLICA_URLS"},
		{"replica keyword dsn", map[string]string{"DATABASE_REPLICA_URLS": "host=r1 password=" + secret}, "DATABASE_REPLICA_URLS"},
		{"redis url bad port", map[string]string{"REDIS_URL": "redis://:" + secret + "@cache:port/0"}, "REDIS_URL"},
		{"database url from file", nil, "DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.env
			if m == nil {
				m = map[string]string{"DATABASE_URL_FILE": writeFile(t, "db", "postgres://app:"+secret+"@/auth\n")}
			}
			_, err := Load(":8081", env(m))
			assertOneLineError(t, err, tt.prefix)
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}

// Echo's CORS middleware reads "*" and "?" inside an entry as wildcards and matches
// "null", all with credentials: every entry must be a plain scheme://host[:port] origin.
func TestCORSAllowedOriginsMustBePlainOrigins(t *testing.T) {
	bad := []struct{ name, value string }{
		{"bare wildcard", "*"},
		{"wildcard among origins", "http://localhost:3000,*"},
		{"subdomain wildcard", "https://*.example.com"},
		{"wildcard inside the host", "https://app*.example.com"},
		{"scheme wildcard", "*://app.example.com"},
		{"port wildcard", "https://app.example.com:*"},
		{"single-character wildcard", "https://app.exampl?.com"},
		{"null", "null"},
		{"NULL", "NULL"},
		{"no scheme", "app.example.com"},
		{"host and port only", "localhost:3000"},
		{"scheme relative", "//app.example.com"},
		{"other scheme", "ftp://app.example.com"},
		{"javascript", "javascript:alert(1)"},
		{"file", "file:///etc/passwd"},
		{"no host", "https://"},
		{"empty port", "https://app.example.com:"},
		{"port zero", "https://app.example.com:0"},
		{"port out of range", "https://app.example.com:70000"},
		{"port not a number", "https://app.example.com:http"},
		{"port with leading zero", "https://app.example.com:0443"},
		{"trailing slash", "https://app.example.com/"},
		{"path", "https://app.example.com/app"},
		{"query", "https://app.example.com?x=1"},
		{"empty query", "https://app.example.com?"},
		{"fragment", "https://app.example.com#x"},
		{"userinfo", "https://user@app.example.com"},
		{"userinfo with password", "https://user:pw@app.example.com"},
		{"userinfo with a wildcard in the password", "https://user:p*w@app.example.com"},
		{"percent-encoded host", "https://app%2eexample.com"},
		{"underscore host", "https://app_x.example.com"},
		{"unicode host", "https://bücher.example"},
		{"space inside", "https://app .example.com"},
		{"ipv6 zone", "http://[fe80::1%25eth0]:3000"},
		{"bad ipv6", "http://[::g]:3000"},
		{"empty label", "https://app..example.com"},
		{"short ipv4", "http://127.1:3000"},
		{"trailing dot", "https://app.example.com."},
		{"one bad among good", "https://a.example.com,https://*.example.com"},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			c, err := Load(":8081", env(map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}))
			if err == nil {
				t.Fatalf("CORS_ALLOWED_ORIGINS=%q: want an error, got origins %#v", tt.value, c.CORSAllowedOrigins)
			}
			assertOneLineError(t, err, "CORS_ALLOWED_ORIGINS")
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "p*w") {
				t.Fatalf("error %q repeats the user info", err)
			}
		})
	}
	good := []struct {
		name, value string
		want        []string
	}{
		{"default", "http://localhost:3000", []string{"http://localhost:3000"}},
		{"several", "https://a.example.com, http://localhost:3000", []string{"https://a.example.com", "http://localhost:3000"}},
		{"port", "https://app.example.com:8443", []string{"https://app.example.com:8443"}},
		{"ipv4", "http://127.0.0.1:3000", []string{"http://127.0.0.1:3000"}},
		{"ipv6", "http://[::1]:3000", []string{"http://[::1]:3000"}},
		{"ipv6 in the form browsers send", "http://[0:0::1]:3000", []string{"http://[::1]:3000"}},
		{"punycode", "https://xn--bcher-kva.example", []string{"https://xn--bcher-kva.example"}},
		// Browsers send the scheme and host in lower case and omit a default port.
		{"case normalised", "HTTPS://App.Example.COM", []string{"https://app.example.com"}},
		{"default https port dropped", "https://app.example.com:443", []string{"https://app.example.com"}},
		{"default http port dropped", "http://app.example.com:80", []string{"http://app.example.com"}},
		{"other port kept", "http://app.example.com:443", []string{"http://app.example.com:443"}},
	}
	for _, tt := range good {
		t.Run("keeps "+tt.name, func(t *testing.T) {
			c := mustLoad(t, ":8081", map[string]string{"CORS_ALLOWED_ORIGINS": tt.value})
			if !reflect.DeepEqual(c.CORSAllowedOrigins, tt.want) {
				t.Fatalf("CORSAllowedOrigins = %#v, want %#v", c.CORSAllowedOrigins, tt.want)
			}
		})
	}
}

// testHookSecret is a well-formed ACCESS_TOKEN_HOOK_SECRET (whsec_ + base64 of 32 bytes).
const testHookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestAccessTokenHookSettings(t *testing.T) {
	c := mustLoad(t, ":8081", map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal:8080/claims",
		"ACCESS_TOKEN_HOOK_SECRET": " " + testHookSecret + " ", "ACCESS_TOKEN_HOOK_TIMEOUT": "500ms", "ACCESS_TOKEN_HOOK_FAILURE": "open"})
	want := AccessTokenHook{URL: "http://hook.internal:8080/claims", Secret: testHookSecret, Timeout: 500 * time.Millisecond, Failure: "open"}
	if c.AccessTokenHook != want {
		t.Fatalf("AccessTokenHook = %+v, want %+v", c.AccessTokenHook, want)
	}
	path := writeFile(t, "hook-secret", testHookSecret+"\n")
	c = mustLoad(t, ":8082", map[string]string{"ACCESS_TOKEN_HOOK_URL": "https://hook.example.com/claims", "ACCESS_TOKEN_HOOK_SECRET_FILE": path})
	if c.AccessTokenHook.Secret != testHookSecret || c.AccessTokenHook.Failure != "closed" {
		t.Fatalf("from the file: %+v", c.AccessTokenHook)
	}
}

// A bad secret is named, never echoed: the error line goes to the logs.
func TestAccessTokenHookSecretNeverEchoed(t *testing.T) {
	for _, secret := range []string{"whsec_TooShortButSecret", "hunter2-but-a-long-one-really", "whsec_" + strings.Repeat("QUJD", 30)} {
		_, err := Load(":8081", env(map[string]string{"ACCESS_TOKEN_HOOK_URL": "http://hook.internal/claims", "ACCESS_TOKEN_HOOK_SECRET": secret}))
		assertOneLineError(t, err, "ACCESS_TOKEN_HOOK_SECRET")
		if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("error leaks the secret: %q", err)
		}
	}
}

func TestVerifyClaimHeadersParsed(t *testing.T) {
	c := mustLoad(t, ":8081", map[string]string{"VERIFY_CLAIM_HEADERS": " ext.tenant=X-Auth-Tenant, sub = x-auth-subject ,ext.org.plan-tier=X-AUTH-PLAN,amr=X-Auth-AMR"})
	want := []ClaimHeader{
		{Claim: []string{"ext", "tenant"}, Header: "X-Auth-Tenant"},
		{Claim: []string{"sub"}, Header: "X-Auth-Subject"},
		{Claim: []string{"ext", "org", "plan-tier"}, Header: "X-Auth-Plan"},
		{Claim: []string{"amr"}, Header: "X-Auth-Amr"},
	}
	if !reflect.DeepEqual(c.VerifyClaimHeaders, want) {
		t.Fatalf("VerifyClaimHeaders = %#v, want %#v", c.VerifyClaimHeaders, want)
	}
	path := writeFile(t, "config.yaml", "verify_claim_headers:\n  - ext.tenant=X-Auth-Tenant\n  - ext.org=X-Auth-Org\n")
	c = mustLoad(t, ":8081", map[string]string{"CONFIG_FILE": path})
	if len(c.VerifyClaimHeaders) != 2 || c.VerifyClaimHeaders[1].Header != "X-Auth-Org" {
		t.Fatalf("from a YAML sequence: %#v", c.VerifyClaimHeaders)
	}
}

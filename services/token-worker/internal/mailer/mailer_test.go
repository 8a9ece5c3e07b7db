package mailer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/talentforge/auth/services/token-worker/internal/mailer"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// selfSigned returns a server certificate for 127.0.0.1 and a client config trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"relay.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func newMailer(t *testing.T, relay *workertest.SMTP, mode string, opts ...mailer.Option) *mailer.Mailer {
	t.Helper()
	m, err := mailer.New(mailer.Config{Host: relay.Host, Port: relay.Port, From: "TalentForge <no-reply@talentforge.test>", TLS: mode},
		append([]mailer.Option{mailer.WithTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func email(to string) mailer.Email {
	return mailer.Email{ID: "0190a8a4-0000-7000-8000-00000000000a", To: to, Kind: mailer.KindRegisterExisting,
		Data: mailer.Data{Name: "Lou", AppURL: "https://app.talentforge.test"}}
}

func TestTLSModes(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	tests := []struct {
		name    string
		relay   func(t *testing.T) *workertest.SMTP
		mode    string
		wantErr bool
	}{
		{"none on a plain relay", func(t *testing.T) *workertest.SMTP { return workertest.StartSMTP(t) }, mailer.TLSNone, false},
		{"starttls", func(t *testing.T) *workertest.SMTP {
			return workertest.StartSMTP(t, workertest.WithSTARTTLS(serverTLS))
		}, mailer.TLSStartTLS, false},
		{"implicit tls", func(t *testing.T) *workertest.SMTP {
			return workertest.StartSMTP(t, workertest.WithImplicitTLS(serverTLS))
		}, mailer.TLSImplicit, false},
		// STARTTLS is required, never skipped: a relay that does not offer it gets nothing.
		{"starttls on a relay without it", func(t *testing.T) *workertest.SMTP { return workertest.StartSMTP(t) }, mailer.TLSStartTLS, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := tt.relay(t)
			m := newMailer(t, relay, tt.mode, mailer.WithTLSConfig(clientTLS))
			err := m.Send(context.Background(), email("lou@example.com"))
			if tt.wantErr {
				if err == nil {
					t.Fatal("sent in the clear although STARTTLS is required")
				}
				if n := len(relay.Messages()); n != 0 {
					t.Fatalf("the relay got %d messages", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := relay.WaitFor(t, 1, 5*time.Second)
			e := msgs[0].Parse(t)
			if msgs[0].To[0] != "lou@example.com" || !strings.HasPrefix(e.Text, "Hi Lou,") || e.HTML == "" {
				t.Fatalf("message to %v, text %q", msgs[0].To, e.Text)
			}
			if got := e.Header.Get("Message-Id"); got != "<0190a8a4-0000-7000-8000-00000000000a@talentforge.test>" {
				t.Errorf("Message-ID = %q", got)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  mailer.Config
		want string
	}{
		{mailer.Config{Host: "127.0.0.1", Port: 25, From: "not an address", TLS: "none"}, "SMTP_FROM"},
		{mailer.Config{Host: "127.0.0.1", Port: 25, From: "a@b.test", TLS: "ssl"}, "SMTP_TLS"},
		{mailer.Config{Host: "127.0.0.1", Port: 0, From: "a@b.test", TLS: "none"}, "SMTP_HOST"},
	} {
		if _, err := mailer.New(tt.cfg); err == nil || !strings.HasPrefix(err.Error(), tt.want+":") {
			t.Errorf("New(%+v) = %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}

func TestBreaker(t *testing.T) {
	relay := workertest.StartSMTP(t)
	m := newMailer(t, relay, mailer.TLSNone, mailer.WithBreaker(2, 100*time.Millisecond))
	ctx := context.Background()

	t.Run("a refused recipient does not open it", func(t *testing.T) {
		relay.Fail(func(stage string) error {
			if stage == workertest.StageRcpt {
				return workertest.Refuse(550, "no such mailbox")
			}
			return nil
		})
		for range 4 {
			if err := m.Send(ctx, email("nobody@example.com")); err == nil || errors.Is(err, retry.ErrUnavailable) {
				t.Fatalf("Send to a refused recipient = %v", err)
			}
		}
		if m.State() != gobreaker.StateClosed {
			t.Fatalf("breaker %s after refused recipients, want closed", m.State())
		}
	})

	t.Run("relay failures open it, a probe closes it", func(t *testing.T) {
		relay.Fail(func(string) error { return workertest.Refuse(421, "closing") })
		for range 2 {
			if err := m.Send(ctx, email("ok@example.com")); err == nil {
				t.Fatal("Send succeeded on a refusing relay")
			}
		}
		if m.State() != gobreaker.StateOpen {
			t.Fatalf("breaker %s after 2 failures, want open", m.State())
		}
		before := relay.Attempts()
		err := m.Send(ctx, email("ok@example.com"))
		if !errors.Is(err, retry.ErrUnavailable) || relay.Attempts() != before {
			t.Fatalf("Send with the breaker open = %v (relay sessions %d -> %d); want ErrUnavailable without a session", err, before, relay.Attempts())
		}
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := m.Wait(wctx); err == nil {
			t.Fatal("Wait returned while the relay refuses")
		}
		cancel()

		relay.Fail(nil)
		wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := m.Wait(wctx); err != nil {
			t.Fatalf("Wait after the relay recovered: %v", err)
		}
		if m.State() != gobreaker.StateClosed {
			t.Fatalf("breaker %s after a good probe, want closed", m.State())
		}
		if len(relay.Messages()) != 0 {
			t.Fatal("the probe sent a message")
		}
		if err := m.Send(ctx, email("ok@example.com")); err != nil {
			t.Fatalf("Send after recovery: %v", err)
		}
	})
}

func TestTemplates(t *testing.T) {
	tpl, err := mailer.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	link := "https://app.talentforge.test/verify-email?token=abc"
	for _, k := range mailer.Kinds {
		t.Run(string(k), func(t *testing.T) {
			d := mailer.Data{Name: `Zoë "<script>"`, Link: link, AppURL: "https://app.talentforge.test", ExpiresAt: now.Add(24 * time.Hour), How: "reset", OccurredAt: now,
				Code: "482913", Phone: "+•••••••••67", PreviousPhone: "+•••••••••23"}
			subject, text, html, err := tpl.Render(k, d, now)
			if err != nil {
				t.Fatal(err)
			}
			if subject != mailer.Subject(k) || !strings.Contains(subject, "TalentForge") {
				t.Errorf("subject %q", subject)
			}
			if !strings.HasPrefix(text, `Hi Zoë "<script>",`) {
				t.Errorf("text greeting: %q", text[:40])
			}
			if strings.Contains(html, "<script>") || !strings.Contains(html, "Zoë &#34;&lt;script&gt;&#34;") {
				t.Errorf("the HTML does not escape the name:\n%s", html)
			}
			if !strings.Contains(text, "TalentForge") || !strings.Contains(html, "TalentForge") {
				t.Error("the product name is missing")
			}
			hasLink := k == mailer.KindVerification || k == mailer.KindPasswordReset || k == mailer.KindOTP
			hasCode := k == mailer.KindOTP
			if strings.Contains(text, "482913") != hasCode || strings.Contains(html, "482913") != hasCode {
				t.Errorf("code shown = %v, want %v", strings.Contains(text, "482913"), hasCode)
			}
			hasPhone := k == mailer.KindPhoneVerified
			if strings.Contains(text, "+•••••••••67") != hasPhone || strings.Contains(html, "•••••••••67") != hasPhone {
				t.Errorf("phone shown = %v, want %v", strings.Contains(text, "+•••••••••67"), hasPhone)
			}
			if strings.Contains(text, link) != hasLink || strings.Contains(html, `href="`+link+`"`) != hasLink {
				t.Errorf("link shown = %v, want %v", strings.Contains(text, link), hasLink)
			}
			if hasLink && !strings.Contains(text, "expires on 2 March 2026 at 10:00 UTC (in about 24 hours)") {
				t.Errorf("text does not say when the link expires:\n%s", text)
			}
		})
	}
	t.Run("otp", func(t *testing.T) {
		d := mailer.Data{Code: "482913", Link: "https://a.test/magic-link?token=t", AppURL: "https://a.test", ExpiresAt: now.Add(10 * time.Minute)}
		subject, text, html, err := tpl.Render(mailer.KindOTP, d, now)
		if err != nil {
			t.Fatal(err)
		}
		if subject != "Your sign-in code for TalentForge" {
			t.Errorf("subject %q", subject)
		}
		for _, want := range []string{"\n482913\n", "expires on 1 March 2026 at 10:10 UTC (in about 10 minutes), as does the link", "If you did not ask to sign in, ignore this email"} {
			if !strings.Contains(text, want) {
				t.Errorf("text lacks %q:\n%s", want, text)
			}
		}
		if !strings.Contains(html, ">482913</p>") || !strings.Contains(html, "If you did not ask to sign in, ignore this email") {
			t.Errorf("the HTML does not show the code on its own:\n%s", html)
		}
	})
	t.Run("phone notice", func(t *testing.T) {
		_, text, _, err := tpl.Render(mailer.KindPhoneVerified, mailer.Data{Phone: "+•••••••••67", AppURL: "https://a.test", OccurredAt: now}, now)
		if err != nil || !strings.Contains(text, "+•••••••••67. ") || strings.Contains(text, "replacing") ||
			!strings.Contains(text, "If this was not you, reset your password") {
			t.Fatalf("a first phone number: %v\n%s", err, text)
		}
		_, text, _, err = tpl.Render(mailer.KindPhoneVerified, mailer.Data{Phone: "+•••••••••67", PreviousPhone: "+•••••••••23", AppURL: "https://a.test", OccurredAt: now}, now)
		if err != nil || !strings.Contains(text, "+•••••••••67, replacing +•••••••••23.") {
			t.Fatalf("a replaced phone number: %v\n%s", err, text)
		}
	})
	t.Run("webhook notice", func(t *testing.T) {
		id := "0190a8a4-0000-7000-8000-0000000000c1"
		d := mailer.Data{Name: "Ada", AppURL: "https://a.test", OccurredAt: now, WebhookID: id, WebhookURL: "https://hooks.example.com/in?a=<b>",
			LastError: "HTTP 503", FailingSince: now.Add(-25 * time.Hour)}
		subject, text, html, err := tpl.Render(mailer.KindWebhookDisabled, d, now)
		if err != nil {
			t.Fatal(err)
		}
		if subject != "A TalentForge webhook endpoint was disabled" {
			t.Errorf("subject %q", subject)
		}
		for _, want := range []string{"Endpoint: https://hooks.example.com/in?a=<b>\n", "Last error: HTTP 503\n", "failed since 28 February 2026 at 09:00 UTC",
			"POST /v1/admin/webhooks/" + id + "/enable", "AUTH_DEADLETTER"} {
			if !strings.Contains(text, want) {
				t.Errorf("text lacks %q:\n%s", want, text)
			}
		}
		if !strings.Contains(html, "<code>https://hooks.example.com/in?a=&lt;b&gt;</code>") || strings.Contains(html, `href="https://hooks`) ||
			!strings.Contains(html, "/v1/admin/webhooks/"+id+"/enable") {
			t.Errorf("the HTML does not show the URL as escaped text, or lacks the enable route:\n%s", html)
		}
	})
	t.Run("no name", func(t *testing.T) {
		_, text, html, err := tpl.Render(mailer.KindEmailVerified, mailer.Data{AppURL: "https://a.test"}, now)
		if err != nil || !strings.HasPrefix(text, "Hi,\n") || !strings.Contains(html, ">Hi,<") {
			t.Fatalf("greeting without a name: %v %q", err, text)
		}
	})
}

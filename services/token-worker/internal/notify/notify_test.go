package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/talentforge/auth/pkg/keyring"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/mailer"
	"github.com/talentforge/auth/services/token-worker/internal/notify"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
)

type fakeLedger struct {
	result   sentmail.Result
	claims   []sentmail.Claim
	sent     []string
	released []string
}

func (f *fakeLedger) Claim(_ context.Context, c sentmail.Claim) (sentmail.Result, error) {
	f.claims = append(f.claims, c)
	return f.result, nil
}
func (f *fakeLedger) MarkSent(_ context.Context, id string) error {
	f.sent = append(f.sent, id)
	return nil
}
func (f *fakeLedger) Release(_ context.Context, id, _ string) error {
	f.released = append(f.released, id)
	return nil
}

type fakeSender struct {
	err  error
	sent []mailer.Email
}

func (f *fakeSender) Send(_ context.Context, e mailer.Email) error {
	f.sent = append(f.sent, e)
	return f.err
}

func testKeys(t *testing.T, kid string) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Parse(kid + ":" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func envelope(t *testing.T, keys *keyring.Keyring, typ string, payload any) events.Envelope {
	t.Helper()
	ev, err := events.NewEnvelope(keys, uuid.NewString(), typ, time.Now(), "", payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestHandle(t *testing.T) {
	keys := testKeys(t, "k1")
	soon := time.Now().Add(time.Hour)
	good := map[string]any{"email": "ann@example.com", "name": "Ann\r\nBcc: x@evil.test\x00", "token": "abc-DEF_123", "expires_at": soon,
		"app_url": "https://evil.test", "link": "https://evil.test/x"}
	tests := []struct {
		name      string
		ev        events.Envelope
		ledger    sentmail.Result
		sendErr   error
		outcome   string
		errIs     error
		anyErr    bool
		wantSend  bool
		wantLink  string
		wantClaim bool
		wantCode  string
		// wantPhones are the masked number and the masked one it replaced.
		wantPhones [2]string
	}{
		{name: "verification", ev: envelope(t, keys, events.SubjectVerificationRequested, good), outcome: notify.OutcomeSent,
			wantSend: true, wantClaim: true, wantLink: "https://app.test/verify-email?token=abc-DEF_123"},
		{name: "reset", ev: envelope(t, keys, events.SubjectPasswordResetRequested, good), outcome: notify.OutcomeSent,
			wantSend: true, wantClaim: true, wantLink: "https://app.test/reset-password?token=abc-DEF_123"},
		{name: "already sent", ev: envelope(t, keys, events.SubjectVerificationRequested, good), ledger: sentmail.Done,
			outcome: notify.OutcomeDuplicate, wantClaim: true},
		{name: "capped", ev: envelope(t, keys, events.SubjectRegisterExisting, map[string]any{"email": "ann@example.com"}), ledger: sentmail.Capped,
			outcome: notify.OutcomeCapped, wantClaim: true},
		{name: "busy", ev: envelope(t, keys, events.SubjectRegisterExisting, map[string]any{"email": "ann@example.com"}), ledger: sentmail.Busy,
			errIs: retry.ErrUnavailable, wantClaim: true},
		{name: "expired link", ev: envelope(t, keys, events.SubjectPasswordResetRequested, map[string]any{"email": "ann@example.com", "token": "t", "expires_at": time.Now().Add(-time.Second)}),
			outcome: notify.OutcomeExpired},
		{name: "unknown key is retried", ev: envelope(t, testKeys(t, "k0"), events.SubjectVerificationRequested, good), anyErr: true},
		{name: "no sealed token", ev: events.Envelope{ID: uuid.NewString(), Type: events.SubjectVerificationRequested,
			Payload: json.RawMessage(`{"email":"ann@example.com","token":"clear"}`)}, errIs: retry.ErrPermanent},
		{name: "bad address", ev: envelope(t, keys, events.SubjectEmailVerified, map[string]any{"email": "ann@example.com>, <x@evil.test"}), errIs: retry.ErrPermanent},
		{name: "bad payload", ev: events.Envelope{ID: uuid.NewString(), Type: events.SubjectEmailVerified, Payload: json.RawMessage(`[1]`)}, errIs: retry.ErrPermanent},
		{name: "not an email event", ev: events.Envelope{ID: uuid.NewString(), Type: "auth.user.registered"}, outcome: notify.OutcomeIgnored},
		{name: "otp", ev: envelope(t, keys, events.SubjectOTPRequested, map[string]any{"email": "ann@example.com", "name": good["name"], "token": "abc-DEF_123",
			"code": "048213", "expires_at": soon}), outcome: notify.OutcomeSent,
			wantSend: true, wantClaim: true, wantLink: "https://app.test/magic-link?token=abc-DEF_123", wantCode: "048213"},
		{name: "otp code not digits", ev: envelope(t, keys, events.SubjectOTPRequested, map[string]any{"email": "ann@example.com", "token": "t",
			"code": "12 456", "expires_at": soon}), errIs: retry.ErrPermanent},
		{name: "otp without code", ev: envelope(t, keys, events.SubjectOTPRequested, map[string]any{"email": "ann@example.com", "token": "t",
			"expires_at": soon}), errIs: retry.ErrPermanent},
		{name: "otp expired", ev: envelope(t, keys, events.SubjectOTPRequested, map[string]any{"email": "ann@example.com", "token": "t",
			"code": "123456", "expires_at": time.Now().Add(-time.Second)}), outcome: notify.OutcomeExpired},
		{name: "phone notice", ev: envelope(t, keys, events.SubjectPhoneVerified, map[string]any{"email": "ann@example.com", "name": good["name"],
			"phone": "+14155550167", "previous_phone": "+447700900123"}), outcome: notify.OutcomeSent, wantSend: true, wantClaim: true,
			wantPhones: [2]string{"+•••••••••67", "+••••••••••23"}},
		{name: "phone notice, bad number", ev: envelope(t, keys, events.SubjectPhoneVerified, map[string]any{"email": "ann@example.com",
			"phone": "0155 550167"}), errIs: retry.ErrPermanent},
		{name: "relay fails", ev: envelope(t, keys, events.SubjectPasswordChanged, map[string]any{"email": "ann@example.com", "how": "change"}),
			sendErr: errors.New("421 closing"), anyErr: true, wantSend: true, wantClaim: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, s := &fakeLedger{result: tt.ledger}, &fakeSender{err: tt.sendErr}
			svc := notify.New(l, s, keys, "https://app.test/", notify.WithCap(7))
			out, err := svc.Handle(context.Background(), tt.ev)
			switch {
			case tt.errIs != nil:
				if !errors.Is(err, tt.errIs) {
					t.Fatalf("err = %v, want %v", err, tt.errIs)
				}
			case tt.anyErr:
				if err == nil || errors.Is(err, retry.ErrPermanent) || errors.Is(err, retry.ErrUnavailable) {
					t.Fatalf("err = %v, want a plain (retried, counted) error", err)
				}
			case err != nil || out != tt.outcome:
				t.Fatalf("Handle = %q, %v; want %q", out, err, tt.outcome)
			}
			if (len(s.sent) == 1) != tt.wantSend || (len(l.claims) == 1) != tt.wantClaim {
				t.Fatalf("sent %d, claims %d", len(s.sent), len(l.claims))
			}
			if tt.wantClaim && (l.claims[0].EventID != tt.ev.ID || l.claims[0].Recipient != "ann@example.com" || l.claims[0].Cap != 7) {
				t.Errorf("claim = %+v", l.claims[0])
			}
			if tt.sendErr != nil && len(l.released) != 1 {
				t.Error("a failed send did not release its claim")
			}
			if tt.wantSend && tt.sendErr == nil {
				e := s.sent[0]
				if e.ID != tt.ev.ID || e.To != "ann@example.com" || e.Data.Link != tt.wantLink || e.Data.AppURL != "https://app.test" {
					t.Errorf("email = %+v", e)
				}
				if e.Data.Code != tt.wantCode || e.Data.Phone != tt.wantPhones[0] || e.Data.PreviousPhone != tt.wantPhones[1] {
					t.Errorf("code %q, phones %q %q; want %q, %q", e.Data.Code, e.Data.Phone, e.Data.PreviousPhone, tt.wantCode, tt.wantPhones)
				}
				if e.Data.Name != "Ann Bcc: x@evil.test" {
					t.Errorf("name = %q, want control characters gone", e.Data.Name)
				}
				if len(l.sent) != 1 {
					t.Error("a sent email was not recorded")
				}
			}
		})
	}
}

// TestTypesAreTheCatalogs: the worker mails exactly the events the catalog says it
// reads, and each is one a service publishes.
func TestTypesAreTheCatalogs(t *testing.T) {
	var want []string
	for _, s := range events.Catalog() {
		if s.ReadBy(events.ReaderEmail) {
			want = append(want, s.Subject)
			if len(s.Publishers) == 0 {
				t.Errorf("%s is mailed and nothing publishes it", s.Subject)
			}
		}
	}
	slices.Sort(want)
	if got := notify.Types(); !slices.Equal(got, want) {
		t.Fatalf("notify handles %v, the catalog says the worker mails %v", got, want)
	}
}

// TestHandleTypedPayloads sends the email of every emailed event written with its
// payload struct, as the producers write them.
func TestHandleTypedPayloads(t *testing.T) {
	keys := testKeys(t, "k1")
	soon := time.Now().Add(time.Hour).UTC()
	const to, name = "ann@example.com", "Ann"
	tests := []struct {
		payload  any
		kind     mailer.Kind
		link     string
		how      string
		expiries bool
	}{
		{events.VerificationRequested{UserID: "u", Email: to, Name: name, Token: "tok-1", ExpiresAt: soon, Provider: "github"},
			mailer.KindVerification, "https://app.test/verify-email?token=tok-1", "", true},
		{events.PasswordResetRequested{UserID: "u", Email: to, Name: name, Token: "tok-2", ExpiresAt: soon},
			mailer.KindPasswordReset, "https://app.test/reset-password?token=tok-2", "", true},
		{events.RegisterExisting{UserID: "u", Email: to, Name: name, Provider: "github"}, mailer.KindRegisterExisting, "", "", false},
		{events.PasswordChanged{UserID: "u", Email: to, Name: name, How: "reset"}, mailer.KindPasswordChanged, "", "reset", false},
		{events.EmailVerified{UserID: "u", Email: to, Name: name}, mailer.KindEmailVerified, "", "", false},
		{events.MFAEnabled{UserID: "u", Email: to, Name: name}, mailer.KindMFAEnabled, "", "", false},
		{events.MFADisabled{UserID: "u", Email: to, Name: name}, mailer.KindMFADisabled, "", "", false},
		{events.PasskeyAdded{UserID: "u", Email: to, Name: name, PasskeyID: "pk", PasskeyName: "Laptop"}, mailer.KindPasskeyAdded, "", "", false},
		{events.PasskeyRemoved{UserID: "u", Email: to, Name: name, PasskeyID: "pk", PasskeyName: "Laptop"}, mailer.KindPasskeyRemoved, "", "", false},
		{events.OTPRequested{UserID: "u", Email: to, Name: name, Code: "654321", Token: "tok-3", ExpiresAt: soon},
			mailer.KindOTP, "https://app.test/magic-link?token=tok-3", "", true},
		{events.PhoneVerified{UserID: "u", Email: to, Name: name, Phone: "+4915112345678"}, mailer.KindPhoneVerified, "", "", false},
		{events.WebhookDisabled{UserID: "u", Email: to, Name: name, WebhookID: uuid.NewString(), URL: "https://hooks.example.com/in",
			FailingSince: soon.Add(-25 * time.Hour), LastError: "HTTP 503"}, mailer.KindWebhookDisabled, "", "", false},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		var subject string
		for _, s := range events.Catalog() {
			if s.Payload == reflect.TypeOf(tt.payload) {
				subject = s.Subject
			}
		}
		covered[subject] = true
		t.Run(subject, func(t *testing.T) {
			l, s := &fakeLedger{}, &fakeSender{}
			ev := envelope(t, keys, subject, tt.payload)
			out, err := notify.New(l, s, keys, "https://app.test").Handle(context.Background(), ev)
			if err != nil || out != notify.OutcomeSent || len(s.sent) != 1 {
				t.Fatalf("Handle = %q, %v (sent %d)", out, err, len(s.sent))
			}
			e := s.sent[0]
			if e.Kind != tt.kind || e.To != to || e.Data.Name != name || e.Data.Link != tt.link || e.Data.How != tt.how ||
				e.Data.ExpiresAt.IsZero() == tt.expiries {
				t.Fatalf("email = %+v", e)
			}
			if tt.expiries && !e.Data.ExpiresAt.Equal(soon) {
				t.Fatalf("expires at %v, want %v", e.Data.ExpiresAt, soon)
			}
		})
	}
	for _, typ := range notify.Types() {
		if !covered[typ] {
			t.Errorf("%s: no case", typ)
		}
	}
}

// The webhook notice names the endpoint, its id and last error, each kept to one line,
// and a payload without a webhook is dropped.
func TestHandleWebhookDisabled(t *testing.T) {
	keys := testKeys(t, "k1")
	id := uuid.NewString()
	since := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	l, s := &fakeLedger{}, &fakeSender{}
	ev := envelope(t, keys, events.SubjectWebhookDisabled, events.WebhookDisabled{UserID: uuid.NewString(), Email: "admin@example.com",
		Name: "Ada", WebhookID: id, URL: "https://hooks.example.com/in\r\nBcc: x", FailingSince: since, LastError: "HTTP 503\n"})
	out, err := notify.New(l, s, keys, "https://app.test").Handle(context.Background(), ev)
	if err != nil || out != notify.OutcomeSent || len(s.sent) != 1 {
		t.Fatalf("Handle = %q, %v (sent %d)", out, err, len(s.sent))
	}
	d := s.sent[0].Data
	if s.sent[0].Kind != mailer.KindWebhookDisabled || d.WebhookID != id || d.WebhookURL != "https://hooks.example.com/in  Bcc: x" ||
		d.LastError != "HTTP 503" || !d.FailingSince.Equal(since) || d.Link != "" {
		t.Errorf("email = %+v", s.sent[0])
	}
	bad := envelope(t, keys, events.SubjectWebhookDisabled, map[string]any{"email": "admin@example.com", "webhook_id": "nope", "url": "https://x.test"})
	if _, err := notify.New(&fakeLedger{}, &fakeSender{}, keys, "https://app.test").Handle(context.Background(), bad); !errors.Is(err, retry.ErrPermanent) {
		t.Errorf("a notice without a webhook id: %v, want ErrPermanent", err)
	}
}

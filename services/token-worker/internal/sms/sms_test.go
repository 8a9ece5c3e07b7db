package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
	"github.com/talentforge/auth/services/token-worker/internal/sms"
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

type message struct{ to, body string }

type fakeProvider struct {
	err  error
	sent []message
}

func (f *fakeProvider) Send(_ context.Context, to, body string) error {
	f.sent = append(f.sent, message{to, body})
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
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const phone = "+14155550167"
	req := func(purpose, code string, expires time.Time) events.SMSCodeRequested {
		return events.SMSCodeRequested{UserID: "u", Phone: phone, Purpose: purpose, Code: code, ExpiresAt: expires}
	}
	soon := now.Add(10 * time.Minute)
	tests := []struct {
		name      string
		ev        events.Envelope
		provider  sms.Provider
		ledger    sentmail.Result
		sendErr   error
		outcome   string
		errIs     error
		anyErr    bool
		wantBody  string
		wantClaim bool
	}{
		{name: "sign in", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			outcome: sms.OutcomeSent, wantClaim: true,
			wantBody: "Your sign-in code is 123456. It expires in 10 minutes. Do not share it."},
		{name: "phone verification, minutes rounded up", ev: envelope(t, keys, events.SubjectSMSCodeRequested,
			req(events.SMSPurposePhoneVerification, "009876", now.Add(4*time.Minute+time.Second))),
			outcome: sms.OutcomeSent, wantClaim: true, wantBody: "Your verification code is 009876. It expires in 5 minutes."},
		{name: "under a minute left", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", now.Add(time.Second))),
			outcome: sms.OutcomeSent, wantClaim: true, wantBody: "Your sign-in code is 123456. It expires in 1 minute. Do not share it."},
		{name: "already sent", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			ledger: sentmail.Done, outcome: sms.OutcomeDuplicate, wantClaim: true},
		{name: "capped", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			ledger: sentmail.Capped, outcome: sms.OutcomeCapped, wantClaim: true},
		{name: "busy", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			ledger: sentmail.Busy, errIs: retry.ErrUnavailable, wantClaim: true},
		{name: "expired", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", now)),
			outcome: sms.OutcomeExpired},
		{name: "none provider drops", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			provider: sms.NewBreaker(sms.None{}, sms.BreakerConfig{}), outcome: sms.OutcomeDropped},
		{name: "unknown key is retried", ev: envelope(t, testKeys(t, "k0"), events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			anyErr: true},
		{name: "a code that is no digits", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "12a456", soon)),
			errIs: retry.ErrPermanent},
		{name: "no sealed code", ev: events.Envelope{ID: uuid.NewString(), Type: events.SubjectSMSCodeRequested,
			Payload: json.RawMessage(`{"phone":"+14155550167","purpose":"sign_in","code":"123456","expires_at":"2026-03-01T10:10:00Z"}`)},
			errIs: retry.ErrPermanent},
		{name: "not E.164", ev: envelope(t, keys, events.SubjectSMSCodeRequested, events.SMSCodeRequested{Phone: "4155550167",
			Purpose: events.SMSPurposeSignIn, Code: "123456", ExpiresAt: soon}), errIs: retry.ErrPermanent},
		{name: "unknown purpose", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req("marketing", "123456", soon)),
			errIs: retry.ErrPermanent},
		{name: "no expiry", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", time.Time{})),
			errIs: retry.ErrPermanent},
		{name: "bad payload", ev: events.Envelope{ID: uuid.NewString(), Type: events.SubjectSMSCodeRequested, Payload: json.RawMessage(`[1]`)},
			errIs: retry.ErrPermanent},
		{name: "not an SMS event", ev: envelope(t, keys, events.SubjectPasswordResetRequested, map[string]any{"email": "a@example.com"}),
			outcome: sms.OutcomeIgnored},
		{name: "provider fails", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			sendErr: errors.New("twilio answered 500"), anyErr: true, wantClaim: true,
			wantBody: "Your sign-in code is 123456. It expires in 10 minutes. Do not share it."},
		{name: "provider refuses the number", ev: envelope(t, keys, events.SubjectSMSCodeRequested, req(events.SMSPurposeSignIn, "123456", soon)),
			sendErr: retry.Permanent(errors.New("twilio answered 400, error 21211")), errIs: retry.ErrPermanent, wantClaim: true,
			wantBody: "Your sign-in code is 123456. It expires in 10 minutes. Do not share it."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, p := &fakeLedger{result: tt.ledger}, &fakeProvider{err: tt.sendErr}
			provider := tt.provider
			if provider == nil {
				provider = p
			}
			svc := sms.New(l, provider, keys, sms.WithCap(3), sms.WithClock(func() time.Time { return now }))
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
			if err != nil && strings.Contains(err.Error(), "123456") {
				t.Errorf("the error names the code: %v", err)
			}
			if (len(l.claims) == 1) != tt.wantClaim {
				t.Fatalf("claims %d, want one %v", len(l.claims), tt.wantClaim)
			}
			if tt.wantClaim {
				c := l.claims[0]
				if c.EventID != tt.ev.ID || c.Recipient != phone || c.Cap != 3 || !strings.HasPrefix(c.Kind, "sms_") {
					t.Errorf("claim = %+v", c)
				}
			}
			if (tt.wantBody != "") != (len(p.sent) == 1) {
				t.Fatalf("sent %d messages", len(p.sent))
			}
			if tt.wantBody != "" && (p.sent[0].to != phone || p.sent[0].body != tt.wantBody) {
				t.Errorf("sent %+v, want %q to %s", p.sent[0], tt.wantBody, phone)
			}
			if tt.sendErr != nil && (len(l.released) != 1 || len(l.sent) != 0) {
				t.Errorf("a failed send: released %v, marked sent %v", l.released, l.sent)
			}
			if tt.sendErr == nil && tt.wantBody != "" && len(l.sent) != 1 {
				t.Error("a sent SMS was not recorded")
			}
		})
	}
}

func TestClaimKinds(t *testing.T) {
	keys := testKeys(t, "k1")
	for _, purpose := range []string{events.SMSPurposeSignIn, events.SMSPurposePhoneVerification} {
		l := &fakeLedger{}
		ev := envelope(t, keys, events.SubjectSMSCodeRequested, events.SMSCodeRequested{Phone: "+4915112345678", Purpose: purpose,
			Code: "111111", ExpiresAt: time.Now().Add(10 * time.Minute)})
		if _, err := sms.New(l, &fakeProvider{}, keys).Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if got := l.claims[0].Kind; got != "sms_"+purpose {
			t.Errorf("kind %q, want sms_%s", got, purpose)
		}
	}
}

// TestNoneDropsWithOneWarning: without a provider each SMS is dropped with one warning
// that names neither the code nor the number.
func TestNoneDropsWithOneWarning(t *testing.T) {
	keys := testKeys(t, "k1")
	core, logs := observer.New(zapcore.DebugLevel)
	l := &fakeLedger{}
	svc := sms.New(l, sms.None{}, keys, sms.WithLogger(zap.New(core)))
	ev := envelope(t, keys, events.SubjectSMSCodeRequested, events.SMSCodeRequested{Phone: "+14155550167", Purpose: events.SMSPurposeSignIn,
		Code: "246810", ExpiresAt: time.Now().Add(10 * time.Minute)})
	out, err := svc.Handle(context.Background(), ev)
	if err != nil || out != sms.OutcomeDropped {
		t.Fatalf("Handle = %q, %v; want dropped", out, err)
	}
	if len(l.claims) != 0 {
		t.Error("a dropped SMS was claimed in the ledger")
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
		t.Fatalf("logs = %v, want one warning", entries)
	}
	line := entries[0].Message
	for k, v := range entries[0].ContextMap() {
		line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " "))
	}
	for _, secret := range []string{"246810", "+14155550167", "5550167"} {
		if strings.Contains(line, secret) {
			t.Errorf("the warning %q names %s", line, secret)
		}
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTypesAreTheCatalogs(t *testing.T) {
	var want []string
	for _, s := range events.Catalog() {
		if s.ReadBy(events.ReaderSMS) {
			want = append(want, s.Subject)
		}
	}
	if got := sms.Types(); !slices.Equal(got, want) {
		t.Fatalf("sms handles %v, the catalog says the worker texts %v", got, want)
	}
}

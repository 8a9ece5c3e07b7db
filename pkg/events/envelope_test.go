package events

import (
	"encoding/json"
	"errors"
	"github.com/talentforge/auth/pkg/keyring"
	"strings"
	"testing"
	"time"
)

func TestNewEnvelopeSealsTheToken(t *testing.T) {
	keys, _ := testKeyring(t, "k1")
	const raw = "Zm9vYmFyLXJhdy10b2tlbi12YWx1ZQ"
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	env, err := NewEnvelope(keys, "0190-id", "auth.email.verification_requested", at, "req-1",
		map[string]any{"user_id": "u1", "email": "a@example.com", "token": raw, "expires_at": at})
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != "0190-id" || env.Type != "auth.email.verification_requested" || env.UserID != "u1" ||
		env.ActorID != "" || env.RequestID != "req-1" || !env.OccurredAt.Equal(at) || env.OccurredAt.Location() != time.UTC {
		t.Fatalf("envelope = %+v", env)
	}
	wire, _ := json.Marshal(env)
	if strings.Contains(string(wire), raw) {
		t.Fatalf("the raw token is in the envelope: %s", wire)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p["token"]; ok {
		t.Fatalf("payload keeps a token field: %s", env.Payload)
	}
	if string(p["email"]) != `"a@example.com"` || string(p["user_id"]) != `"u1"` || p["expires_at"] == nil {
		t.Fatalf("payload lost fields: %s", env.Payload)
	}
	var sealed keyring.Sealed
	if err := json.Unmarshal(p["token_sealed"], &sealed); err != nil || sealed.KID != "k1" {
		t.Fatalf("token_sealed = %s (%v)", p["token_sealed"], err)
	}

	// The consumer side: decode the wire bytes and open the token.
	var got Envelope
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if tok, err := got.Token(keys); err != nil || tok != raw {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	// The sealed token is bound to its event: copied into another event it fails.
	moved := got
	moved.ID = "another-id"
	if _, err := moved.Token(keys); err == nil {
		t.Fatal("a token moved to another event opened")
	}
	other, _ := testKeyring(t, "k2")
	if _, err := got.Token(other); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("Token with a keyring lacking k1 = %v, want keyring.ErrUnknownKey", err)
	}
}

func TestNewEnvelopeSealsTheCode(t *testing.T) {
	keys, _ := testKeyring(t, "k1")
	const code, tok = "482913", "dG9rZW4tb2YtdGhlLWxpbms"
	env, err := NewEnvelope(keys, "0190-id", SubjectOTPRequested, time.Now(), "",
		OTPRequested{UserID: "u1", Email: "a@example.com", Code: code, Token: tok, ExpiresAt: time.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(env)
	if strings.Contains(string(wire), code) || strings.Contains(string(wire), tok) {
		t.Fatalf("a raw secret is in the envelope: %s", wire)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p["code"]; ok {
		t.Fatalf("payload keeps a code field: %s", env.Payload)
	}
	var sealed keyring.Sealed
	if err := json.Unmarshal(p["code_sealed"], &sealed); err != nil || sealed.KID != "k1" {
		t.Fatalf("code_sealed = %s (%v)", p["code_sealed"], err)
	}
	var got Envelope
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if c, err := got.Code(keys); err != nil || c != code {
		t.Fatalf("Code = %q, %v", c, err)
	}
	if tk, err := got.Token(keys); err != nil || tk != tok {
		t.Fatalf("Token = %q, %v", tk, err)
	}
	// Each is bound to its event, and opens only under its own key.
	moved := got
	moved.ID = "another-id"
	if _, err := moved.Code(keys); err == nil {
		t.Fatal("a code moved to another event opened")
	}
	other, _ := testKeyring(t, "k2")
	if _, err := got.Code(other); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("Code with a keyring lacking k1 = %v, want keyring.ErrUnknownKey", err)
	}
	// An SMS request carries the code alone.
	sms, err := NewEnvelope(keys, "0190-id2", SubjectSMSCodeRequested, time.Now(), "",
		SMSCodeRequested{UserID: "u1", Phone: "+14155550100", Purpose: SMSPurposeSignIn, Code: code, ExpiresAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sms.Payload), code) {
		t.Fatalf("the raw code is in the SMS payload: %s", sms.Payload)
	}
	if c, err := sms.Code(keys); err != nil || c != code {
		t.Fatalf("Code = %q, %v", c, err)
	}
	if _, err := sms.Token(keys); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Token of an SMS request = %v, want ErrNoToken", err)
	}
}

func TestNewEnvelopeFields(t *testing.T) {
	keys, _ := testKeyring(t, "k1")
	at := time.Now()
	tests := []struct {
		name          string
		payload       any
		user, actor   string
		payloadJSON   string
		wantErr       bool
		noKeysWantErr bool
	}{
		{name: "audit event", payload: map[string]any{"user_id": "u2", "actor_id": "admin1", "actor_session_id": "s"},
			user: "u2", actor: "admin1", payloadJSON: `{"actor_id":"admin1","actor_session_id":"s","user_id":"u2"}`},
		{name: "no user", payload: map[string]any{"role": "r", "actor_id": "a"}, actor: "a",
			payloadJSON: `{"actor_id":"a","role":"r"}`},
		{name: "a struct payload", payload: struct {
			UserID string `json:"user_id"`
			How    string `json:"how"`
		}{"u3", "reset"}, user: "u3", payloadJSON: `{"how":"reset","user_id":"u3"}`},
		{name: "a non-string user_id is not copied", payload: map[string]any{"user_id": 7}, payloadJSON: `{"user_id":7}`},
		{name: "nil payload", payload: nil, payloadJSON: `{}`},
		{name: "not an object", payload: []string{"a"}, wantErr: true},
		{name: "a number token", payload: map[string]any{"token": 5}, wantErr: true},
		{name: "an empty token", payload: map[string]any{"token": ""}, wantErr: true},
		{name: "a token and no keyring", payload: map[string]any{"token": "t"}, payloadJSON: "-", noKeysWantErr: true},
		{name: "a number code", payload: map[string]any{"code": 123456}, wantErr: true},
		{name: "an empty code", payload: map[string]any{"code": ""}, wantErr: true},
		{name: "a code and no keyring", payload: map[string]any{"code": "123456"}, payloadJSON: "-", noKeysWantErr: true},
		{name: "unencodable", payload: map[string]any{"c": make(chan int)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := NewEnvelope(keys, "id", "auth.test", at, "", tt.payload)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewEnvelope = %+v, want an error", env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.UserID != tt.user || env.ActorID != tt.actor {
				t.Fatalf("user %q actor %q, want %q %q", env.UserID, env.ActorID, tt.user, tt.actor)
			}
			if tt.payloadJSON != "-" && string(env.Payload) != tt.payloadJSON {
				t.Fatalf("payload %s, want %s", env.Payload, tt.payloadJSON)
			}
			_, err = NewEnvelope(nil, "id", "auth.test", at, "", tt.payload)
			if (err != nil) != tt.noKeysWantErr {
				t.Fatalf("without a keyring: err = %v, want error %v", err, tt.noKeysWantErr)
			}
		})
	}
	if _, err := NewEnvelope(keys, "", "auth.test", at, "", nil); err == nil {
		t.Fatal("an event without an id was built")
	}
	if _, err := NewEnvelope(keys, "id", "", at, "", nil); err == nil {
		t.Fatal("an event without a type was built")
	}
	env, _ := NewEnvelope(keys, "id", "auth.test", at, "", map[string]any{"user_id": "u"})
	if _, err := env.Token(keys); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Token of an event without one = %v, want ErrNoToken", err)
	}
	if _, err := env.Code(keys); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Code of an event without one = %v, want ErrNoToken", err)
	}
}

func TestEnvelopeWireNames(t *testing.T) {
	env := Envelope{ID: "i", Type: "auth.x", OccurredAt: time.Unix(0, 0).UTC(), UserID: "u", ActorID: "a",
		RequestID: "r", Payload: json.RawMessage(`{}`)}
	b, _ := json.Marshal(env)
	want := `{"id":"i","type":"auth.x","occurred_at":"1970-01-01T00:00:00Z","user_id":"u","actor_id":"a","request_id":"r","payload":{}}`
	if string(b) != want {
		t.Fatalf("wire form %s, want %s (docs/events.md documents it)", b, want)
	}
}

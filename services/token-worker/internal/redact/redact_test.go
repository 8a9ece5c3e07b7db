package redact_test

import (
	"encoding/json"
	"testing"

	"github.com/talentforge/auth/services/token-worker/internal/redact"
)

func TestPayload(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"user_id":"u","token":"raw","token_sealed":{"kid":"k"},"expires_at":"x"}`, `{"expires_at":"x","user_id":"u"}`},
		{`{"password":"p","new_password":"q","password_hash":"h","client_secret":"s","ip":"1.2.3.4"}`, `{"ip":"1.2.3.4"}`},
		{`{"code":"123456","code_sealed":{},"recovery_codes":["a"],"OTP":"1","reason":"invalid_credentials"}`, `{"reason":"invalid_credentials"}`},
		{`{"nested":{"refresh_token":"r","keep":1},"list":[{"access_token":"a","n":2}]}`, `{"list":[{"n":2}],"nested":{"keep":1}}`},
		{`{"key_hash":"h","SecretSealed":"s","email":"a@example.com"}`, `{"email":"a@example.com"}`},
		{`null`, `{}`},
		{``, `{}`},
	}
	for _, tt := range tests {
		got, err := redact.Payload(json.RawMessage(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Payload(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := redact.Payload(json.RawMessage(`{"a":`)); err == nil {
		t.Error("Payload accepted broken JSON")
	}
}

// What leaves the platform loses digests too; the audit log keeps them.
func TestExternalDropsDigests(t *testing.T) {
	raw := json.RawMessage(`{"user_id":"u-1","email_sha256":"ab12","reason":"bad_password","token_sealed":{"kid":"k"}}`)
	ext, err := redact.External(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(ext) != `{"reason":"bad_password","user_id":"u-1"}` {
		t.Errorf("External: %s", ext)
	}
	audit, err := redact.Payload(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(audit) != `{"email_sha256":"ab12","reason":"bad_password","user_id":"u-1"}` {
		t.Errorf("Payload: %s", audit)
	}
}

package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/talentforge/auth/pkg/softauthn"
)

// The passkey origin of the stack: auth's default PUBLIC_URL, http://localhost:8081,
// makes the relying party localhost with that one origin.
const passkeyOrigin = "http://localhost:8081"

// A user adds a passkey, gets the notice email, signs in with the passkey alone, removes
// it and gets the second notice: the built binaries, PostgreSQL, Redis, NATS and the
// worker's SMTP, as processes.
func TestPasskeyThroughTheStack(t *testing.T) {
	s := startStack(t)
	email := "e2e-pk-" + randomHex(4) + "@example.com"
	s.mustPost("/v1/auth/register", map[string]string{"email": email, "password": password, "name": "Ada"}, http.StatusAccepted)
	verify := s.waitMail(email, 1)[0]
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, verify, "verify-email")}, http.StatusOK)
	var pair struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(s.mustPost("/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK), &pair); err != nil {
		t.Fatal(err)
	}

	a := softauthn.New()
	var begin struct {
		FlowID    string          `json:"flow_id"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	status, body := postJSON(t, s.authURL+"/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken)
	if status != http.StatusOK || json.Unmarshal(body, &begin) != nil {
		t.Fatalf("begin: %d %s", status, body)
	}
	cred, _, err := a.Create(begin.PublicKey, softauthn.Options{Origin: passkeyOrigin})
	if err != nil {
		t.Fatal(err)
	}
	status, body = postJSON(t, s.authURL+"/v1/users/me/passkeys/finish",
		map[string]any{"flow_id": begin.FlowID, "name": "Laptop", "credential": cred}, pair.AccessToken)
	var added struct {
		ID string `json:"id"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &added) != nil {
		t.Fatalf("finish: %d %s", status, body)
	}
	s.waitMailSaying(email, "A passkey was added")

	status, body = postJSON(t, s.authURL+"/v1/auth/passkey/begin", map[string]any{}, "")
	if status != http.StatusOK || json.Unmarshal(body, &begin) != nil {
		t.Fatalf("sign-in begin: %d %s", status, body)
	}
	assertion, err := a.Get(begin.PublicKey, softauthn.Options{Origin: passkeyOrigin})
	if err != nil {
		t.Fatal(err)
	}
	var signedIn struct {
		AccessToken string `json:"access_token"`
	}
	status, body = postJSON(t, s.authURL+"/v1/auth/passkey/finish", map[string]any{"flow_id": begin.FlowID, "credential": assertion}, "")
	if status != http.StatusOK || json.Unmarshal(body, &signedIn) != nil {
		t.Fatalf("sign-in finish: %d %s", status, body)
	}
	if amr := claim(t, signedIn.AccessToken, "amr"); !slices.Equal(amr, []string{"webauthn"}) {
		t.Fatalf("amr = %v", amr)
	}
	if status, body := get(t, s.authURL+"/v1/auth/verify", signedIn.AccessToken); status != http.StatusOK {
		t.Fatalf("verify with the passkey session: %d %s", status, body)
	}

	req, _ := http.NewRequest(http.MethodDelete, s.authURL+"/v1/users/me/passkeys/"+added.ID, nil)
	req.Header.Set("Authorization", "Bearer "+signedIn.AccessToken)
	if status, body := do(t, req); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	s.waitMailSaying(email, "A passkey was removed")
}

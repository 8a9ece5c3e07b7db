package passkey

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/softauthn"
)

// Whatever a client posts as a credential, the relying party answers with a Refusal (a
// 4xx), never a panic or another error (a 500).
func FuzzResponses(f *testing.F) {
	rp, err := New(Config{RPID: "auth.test", RPName: "T", Origins: []string{"http://auth.test"}})
	if err != nil {
		f.Fatal(err)
	}
	u := User{ID: uuid.NewString(), Email: "a@example.com", DisplayName: "A"}
	opts, reg, err := rp.BeginRegistration(u)
	if err != nil {
		f.Fatal(err)
	}
	a := softauthn.New()
	created, _, err := a.Create(opts, softauthn.Options{Origin: "http://auth.test"})
	if err != nil {
		f.Fatal(err)
	}
	cred, err := rp.FinishRegistration(u, reg, created)
	if err != nil {
		f.Fatal(err)
	}
	u.Credentials = []Credential{cred}
	lopts, login, err := rp.BeginLogin(nil)
	if err != nil {
		f.Fatal(err)
	}
	asserted, err := a.Get(lopts, softauthn.Options{Origin: "http://auth.test"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(created))
	f.Add([]byte(asserted))
	f.Add([]byte(`{"id":"","type":"public-key","response":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // the HTTP layer refuses it first (invalid_json)
		}
		var r *Refusal
		if _, err := rp.FinishRegistration(u, reg, data); err != nil && !errors.As(err, &r) {
			t.Fatalf("registration: %v is no refusal", err)
		}
		as, err := ParseAssertion(data)
		if err != nil {
			if !errors.As(err, &r) {
				t.Fatalf("parse: %v is no refusal", err)
			}
			return
		}
		if _, err := rp.FinishLogin(u, login, as); err != nil && !errors.As(err, &r) {
			t.Fatalf("login: %v is no refusal", err)
		}
	})
}

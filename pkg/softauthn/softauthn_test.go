package softauthn

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

const origin = "http://localhost:8080"

type testUser struct {
	id    []byte
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return "alice" }
func (u *testUser) WebAuthnDisplayName() string                { return "Alice" }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{RPID: "localhost", RPDisplayName: "T", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register runs a passkey registration with o and returns the RP's verdict.
func register(t *testing.T, rp *webauthn.WebAuthn, a *Authenticator, u *testUser, o Options) (*webauthn.Credential, error) {
	t.Helper()
	creation, session, err := rp.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		t.Fatal(err)
	}
	answer, _, err := a.Create(mustJSON(t, creation.Response), o)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return nil, err
	}
	return rp.CreateCredential(u, *session, parsed)
}

// login runs a discoverable login with o and returns the RP's verdict.
func login(t *testing.T, rp *webauthn.WebAuthn, a *Authenticator, u *testUser, o Options) (*webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Get(mustJSON(t, assertion.Response), o)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return nil, err
	}
	_, cred, err := rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		if !bytes.Equal(userHandle, u.id) {
			return nil, errors.New("unknown user")
		}
		return u, nil
	}, *session, parsed)
	return cred, err
}

// setup registers one passkey for a fresh user.
func setup(t *testing.T) (*webauthn.WebAuthn, *Authenticator, *testUser) {
	t.Helper()
	rp, a, u := newRP(t), New(), &testUser{id: []byte("user-0123456789")}
	cred, err := register(t, rp, a, u, Options{Origin: origin})
	if err != nil {
		t.Fatalf("registration rejected: %v", err)
	}
	u.creds = append(u.creds, *cred)
	return rp, a, u
}

func TestRegisterAndLogin(t *testing.T) {
	rp, a, u := setup(t)
	if !u.creds[0].Flags.UserVerified || u.creds[0].AttestationFormat != "none" {
		t.Errorf("credential flags/format = %+v / %q", u.creds[0].Flags, u.creds[0].AttestationFormat)
	}
	cred, err := login(t, rp, a, u, Options{Origin: origin})
	if err != nil {
		t.Fatalf("login rejected: %v", err)
	}
	if cred.Authenticator.SignCount != 1 || cred.Authenticator.CloneWarning {
		t.Errorf("SignCount = %d, CloneWarning = %v; want 1, false", cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
	}
}

func TestLoginWithAllowCredentials(t *testing.T) {
	rp, a, u := setup(t)
	assertion, session, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Get(mustJSON(t, assertion), Options{Origin: origin}) // whole {"publicKey":...} form
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.ValidateLogin(u, *session, parsed); err != nil {
		t.Fatalf("login rejected: %v", err)
	}
}

func TestRegistrationRejected(t *testing.T) {
	for name, o := range map[string]Options{
		"origin":    {Origin: "http://evil.example:8080"},
		"rpid":      {Origin: origin, RPID: "evil.example"},
		"no uv":     {Origin: origin, NoUV: true},
		"challenge": {Origin: origin, Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		"type":      {Origin: origin, Type: "webauthn.get"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := register(t, newRP(t), New(), &testUser{id: []byte("u")}, o)
			if err == nil {
				t.Fatal("registration accepted")
			}
			t.Log(describe(err))
		})
	}
}

func TestLoginRejected(t *testing.T) {
	rp, a, u := setup(t)
	for name, o := range map[string]Options{
		"origin":      {Origin: "http://evil.example:8080"},
		"rpid":        {Origin: origin, RPID: "evil.example"},
		"no uv":       {Origin: origin, NoUV: true},
		"challenge":   {Origin: origin, Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		"type":        {Origin: origin, Type: "webauthn.create"},
		"user handle": {Origin: origin, UserHandle: []byte("someone-else")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := login(t, rp, a, u, o)
			if err == nil {
				t.Fatal("login accepted")
			}
			t.Log(describe(err))
		})
	}
}

// describe shows why the RP refused, so -v tells a real rejection from a
// parse error.
func describe(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Details + ": " + perr.DevInfo
	}
	return err.Error()
}

// go-webauthn accepts a counter that went backwards but flags a possible clone.
func TestLowerSignCountFlagsClone(t *testing.T) {
	rp, a, u := setup(t)
	cred, err := login(t, rp, a, u, Options{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	u.creds[0] = *cred // the RP stores the new counter (1)
	zero := uint32(0)
	cred, err = login(t, rp, a, u, Options{Origin: origin, SignCount: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Authenticator.CloneWarning {
		t.Error("CloneWarning not set for a lower sign count")
	}
}

func TestConcurrentGet(t *testing.T) {
	_, a, u := setup(t)
	opts := json.RawMessage(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rpId":"localhost"}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := a.Get(opts, Options{Origin: origin, Credential: u.creds[0].ID}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := a.creds[string(u.creds[0].ID)].SignCount; got != 8 {
		t.Errorf("SignCount = %d, want 8", got)
	}
}

// The answers must carry exactly the members of PublicKeyCredential.toJSON().
func TestWireMembers(t *testing.T) {
	a := New()
	reg, _, err := a.Create(json.RawMessage(`{"rp":{"id":"localhost"},"user":{"id":"dQ"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA"}`), Options{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	get, err := a.Get(json.RawMessage(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rpId":"localhost"}`), Options{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		answer json.RawMessage
		want   string
	}{
		{reg, "attestationObject authenticatorData clientDataJSON publicKey publicKeyAlgorithm transports"},
		{get, "authenticatorData clientDataJSON signature userHandle"},
	} {
		var top map[string]json.RawMessage
		var resp map[string]any
		if err := json.Unmarshal(c.answer, &top); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(top["response"], &resp); err != nil {
			t.Fatal(err)
		}
		if got := keys(top); got != "authenticatorAttachment clientExtensionResults id rawId response type" {
			t.Errorf("top-level members = %s", got)
		}
		if got := keys(resp); got != c.want {
			t.Errorf("response members = %s, want %s", got, c.want)
		}
	}
}

func keys[V any](m map[string]V) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), " ")
}

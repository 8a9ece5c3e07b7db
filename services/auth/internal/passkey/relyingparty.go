// Package passkey is the auth service's WebAuthn relying party: the ceremonies of
// github.com/go-webauthn/webauthn with the service's rules (discoverable credentials,
// user verification required, no attestation asked for), the credential as stored, the
// single-use ceremony flows in Redis, and the reasons a ceremony was refused, for the
// audit log.
package passkey

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
)

// Credential is a passkey as the store keeps it.
type Credential struct {
	ID                string // ours, a UUID
	UserID            string
	CredentialID      []byte // the authenticator's
	PublicKey         []byte // COSE
	SignCount         uint32
	Transports        []string
	AAGUID            []byte
	AttestationFormat string
	BackupEligible    bool
	BackupState       bool
	Name              string
	CreatedAt         time.Time
	LastUsedAt        *time.Time
}

func (c Credential) webauthn() webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: c.CredentialID, PublicKey: c.PublicKey, AttestationFormat: c.AttestationFormat, Transport: tr,
		// Every passkey was registered with user verification (RP.BeginRegistration).
		Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: c.BackupEligible,
			BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// User is the account a ceremony is for: the user handle is the account id's 16 bytes,
// which says nothing about the person.
type User struct {
	ID          string
	Email       string
	DisplayName string
	Credentials []Credential
}

func (u User) handle() []byte {
	id, err := uuid.Parse(u.ID)
	if err != nil {
		return nil
	}
	return id[:]
}

type waUser struct{ User }

func (u waUser) WebAuthnID() []byte          { return u.handle() }
func (u waUser) WebAuthnName() string        { return u.Email }
func (u waUser) WebAuthnDisplayName() string { return u.DisplayName }
func (u waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.Credentials))
	for i, c := range u.Credentials {
		out[i] = c.webauthn()
	}
	return out
}

// UserID returns the account id of a user handle ("" when it is none of ours).
func UserID(handle []byte) string {
	id, err := uuid.FromBytes(handle)
	if err != nil {
		return ""
	}
	return id.String()
}

// Reasons a ceremony was refused (the audit log's login_failed reasons).
const (
	ReasonInvalid          = "invalid_passkey"
	ReasonUnknown          = "passkey_unknown"
	ReasonOrigin           = "passkey_origin"
	ReasonRPID             = "passkey_rp_id"
	ReasonChallenge        = "passkey_challenge"
	ReasonUserHandle       = "passkey_user_handle"
	ReasonSignCount        = "passkey_sign_count"
	ReasonUserVerification = "passkey_user_verification"
)

// Refusal is a ceremony the relying party refused, and why.
type Refusal struct {
	Reason string
	Err    error
}

func (r *Refusal) Error() string { return "passkey refused (" + r.Reason + "): " + r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(reason string, err error) *Refusal { return &Refusal{Reason: reason, Err: err} }

// Config is the relying party (WEBAUTHN_RP_ID, _NAME, _ORIGINS).
type Config struct {
	RPID    string
	RPName  string
	Origins []string
}

// RP runs the ceremonies.
type RP struct {
	wa     *webauthn.WebAuthn
	rpHash [32]byte
	cfg    Config
}

// New returns the relying party.
func New(cfg Config) (*RP, error) {
	wa, err := webauthn.New(&webauthn.Config{RPID: cfg.RPID, RPDisplayName: cfg.RPName, RPOrigins: cfg.Origins,
		// The browser's timeout is the flow's life (FlowTTL); the flow store enforces it.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: FlowTTL, TimeoutUVD: FlowTTL},
			Registration: webauthn.TimeoutConfig{Timeout: FlowTTL, TimeoutUVD: FlowTTL},
		}})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party (WEBAUTHN_RP_*): %w", err)
	}
	return &RP{wa: wa, rpHash: sha256.Sum256([]byte(cfg.RPID)), cfg: cfg}, nil
}

// BeginRegistration returns the creation options (WebAuthn's JSON form of
// PublicKeyCredentialCreationOptions) and the ceremony's state: a discoverable
// credential with user verification, no attestation asked for, none of u's passkeys
// again.
func (rp *RP) BeginRegistration(u User) (json.RawMessage, webauthn.SessionData, error) {
	exclude := make([]protocol.CredentialDescriptor, len(u.Credentials))
	for i, c := range u.Credentials {
		wc := c.webauthn()
		exclude[i] = wc.Descriptor()
	}
	rk := true
	creation, sess, err := rp.wa.BeginRegistration(waUser{u},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{RequireResidentKey: &rk,
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, webauthn.SessionData{}, fmt.Errorf("begin registration: %w", err)
	}
	opts, err := json.Marshal(creation.Response)
	return opts, *sess, err
}

// FinishRegistration checks a registration response (the browser's toJSON() of the
// PublicKeyCredential) against its ceremony and returns the new credential.
func (rp *RP) FinishRegistration(u User, sess webauthn.SessionData, response []byte) (Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Credential{}, refuse(ReasonInvalid, err)
	}
	if r := rp.explain(sess, parsed.Response.CollectedClientData, parsed.Response.AttestationObject.AuthData); r != "" {
		return Credential{}, refuse(r, errors.New(r))
	}
	c, err := rp.wa.CreateCredential(waUser{u}, sess, parsed)
	if err != nil {
		return Credential{}, refuse(ReasonInvalid, err)
	}
	// Without attestation nothing vouches for the key: at least it must be one (a point
	// on its curve, a sound RSA modulus), or the passkey could never sign in.
	if _, err := webauthncose.ParsePublicKey(c.PublicKey); err != nil {
		return Credential{}, refuse(ReasonInvalid, fmt.Errorf("credential public key: %w", err))
	}
	tr := make([]string, len(c.Transport))
	for i, t := range c.Transport {
		tr[i] = string(t)
	}
	return Credential{UserID: u.ID, CredentialID: c.ID, PublicKey: c.PublicKey, SignCount: c.Authenticator.SignCount,
		Transports: tr, AAGUID: c.Authenticator.AAGUID, AttestationFormat: c.AttestationFormat,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState}, nil
}

// BeginLogin returns the request options (PublicKeyCredentialRequestOptions in JSON)
// and the ceremony's state, with user verification required: without credentials for a
// discoverable sign-in (no allowCredentials, the authenticator offers its passkeys),
// else for those only (the second factor of a known account).
func (rp *RP) BeginLogin(u *User) (json.RawMessage, webauthn.SessionData, error) {
	uv := webauthn.WithUserVerification(protocol.VerificationRequired)
	var (
		assertion *protocol.CredentialAssertion
		sess      *webauthn.SessionData
		err       error
	)
	if u == nil {
		assertion, sess, err = rp.wa.BeginDiscoverableLogin(uv)
	} else {
		assertion, sess, err = rp.wa.BeginLogin(waUser{*u}, uv)
	}
	if err != nil {
		return nil, webauthn.SessionData{}, fmt.Errorf("begin login: %w", err)
	}
	opts, err := json.Marshal(assertion.Response)
	return opts, *sess, err
}

// Assertion is a parsed sign-in response, before it is checked.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses a sign-in response (the browser's toJSON()).
func ParseAssertion(response []byte) (Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Assertion{}, refuse(ReasonInvalid, err)
	}
	return Assertion{parsed: parsed}, nil
}

// CredentialID is the authenticator's id of the credential that signed.
func (a Assertion) CredentialID() []byte { return a.parsed.RawID }

// FinishLogin checks an assertion by one of u's credentials against its ceremony, and
// returns that credential with the new counter and backup state. A counter that did
// not grow (when the authenticator keeps one) is refused: a cloned key.
func (rp *RP) FinishLogin(u User, sess webauthn.SessionData, a Assertion) (Credential, error) {
	p := a.parsed
	i := slices.IndexFunc(u.Credentials, func(c Credential) bool { return bytes.Equal(c.CredentialID, p.RawID) })
	if i < 0 {
		return Credential{}, refuse(ReasonUnknown, errors.New("not a credential of this account"))
	}
	if r := rp.explain(sess, p.Response.CollectedClientData, p.Response.AuthenticatorData); r != "" {
		return Credential{}, refuse(r, errors.New(r))
	}
	if h := p.Response.UserHandle; len(h) > 0 && !bytes.Equal(h, u.handle()) {
		return Credential{}, refuse(ReasonUserHandle, errors.New("user handle of another account"))
	}
	var c *webauthn.Credential
	var err error
	if len(sess.UserID) == 0 {
		_, c, err = rp.wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return waUser{u}, nil }, sess, p)
	} else {
		c, err = rp.wa.ValidateLogin(waUser{u}, sess, p)
	}
	if err != nil {
		return Credential{}, refuse(ReasonInvalid, err)
	}
	if c.Authenticator.CloneWarning {
		return Credential{}, refuse(ReasonSignCount, fmt.Errorf("sign count %d after %d", p.Response.AuthenticatorData.Counter,
			u.Credentials[i].SignCount))
	}
	out := u.Credentials[i]
	out.SignCount = p.Response.AuthenticatorData.Counter
	out.BackupState = c.Flags.BackupState
	return out, nil
}

// explain names what is wrong with a response the library would refuse for a reason
// the audit log tells apart ("" when none of them): the library checks it all again.
func (rp *RP) explain(sess webauthn.SessionData, cd protocol.CollectedClientData, ad protocol.AuthenticatorData) string {
	switch {
	case cd.Challenge != sess.Challenge:
		return ReasonChallenge
	case !slices.Contains(rp.cfg.Origins, cd.Origin):
		return ReasonOrigin
	case !bytes.Equal(ad.RPIDHash, rp.rpHash[:]):
		return ReasonRPID
	case !ad.Flags.HasUserVerified():
		return ReasonUserVerification
	}
	return ""
}

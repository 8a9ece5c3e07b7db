// Package softauthn is a software WebAuthn authenticator for tests.
//
// It plays the part of a browser plus an ES256 (P-256) platform authenticator:
// it takes the "publicKey" options a relying party sends and answers with the
// JSON that PublicKeyCredential.toJSON() would produce, so tests can drive a
// real relying party over HTTP without a browser. Options lets a test bend an
// answer (wrong origin, wrong challenge, missing UV, ...) to check that the
// server rejects it.
package softauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator flag bits (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Authenticator holds the credentials (private keys) it created, keyed by
// credential id. It is safe for concurrent use.
type Authenticator struct {
	// BackupEligible and BackupState set the BE/BS flags of every answer. A
	// relying party compares BE between registration and login, so set them
	// before the first Create and leave them alone afterwards.
	BackupEligible, BackupState bool

	mu     sync.Mutex
	aaguid [16]byte
	creds  map[string]*Credential // by string(ID)
	last   map[string]*Credential // last created per RP ID, for discoverable Get
}

// Credential is one created credential.
type Credential struct {
	ID         []byte
	UserHandle []byte // user.id of the creation options
	RPID       string
	SignCount  uint32 // last counter value sent
	Key        *ecdsa.PrivateKey
}

// Options bend an answer for negative tests; the zero value (plus Origin) is
// a correct answer.
type Options struct {
	Origin     string  // clientDataJSON.origin; REQUIRED (e.g. "http://localhost:8080")
	RPID       string  // rpIdHash over this instead of the options' rp.id / rpId
	NoUV       bool    // clear the UV flag
	Challenge  string  // put this challenge (base64url) in clientDataJSON instead of the options'
	UserHandle []byte  // Get: assertion userHandle instead of the credential's (non-nil wins, even empty)
	SignCount  *uint32 // use this counter value (and store it)
	Credential []byte  // Get: which credential to use (by id)
	Type       string  // clientDataJSON.type instead of "webauthn.create"/"webauthn.get"
}

// New returns an empty authenticator with a random AAGUID and BE/BS off.
func New() *Authenticator {
	a := &Authenticator{creds: map[string]*Credential{}, last: map[string]*Credential{}}
	_, _ = rand.Read(a.aaguid[:]) // crypto/rand.Read never fails
	return a
}

// creationOptions is the part of PublicKeyCredentialCreationOptions we read.
type creationOptions struct {
	RP        struct{ ID string } `json:"rp"`
	User      struct{ ID string } `json:"user"`
	Challenge string              `json:"challenge"`
	Params    []struct {
		Type string `json:"type"`
		Alg  int    `json:"alg"`
	} `json:"pubKeyCredParams"`
	Exclude []descriptor `json:"excludeCredentials"`
}

// requestOptions is the part of PublicKeyCredentialRequestOptions we read.
type requestOptions struct {
	Challenge string       `json:"challenge"`
	RPID      string       `json:"rpId"`
	Allow     []descriptor `json:"allowCredentials"`
}

type descriptor struct {
	ID string `json:"id"`
}

// Create answers PublicKeyCredentialCreationOptions in WebAuthn's JSON form
// (the object a server sends as "publicKey"; the whole {"publicKey": ...}
// wrapper is accepted too) with the registration response JSON and a copy of
// the new credential.
func (a *Authenticator) Create(publicKeyOptions json.RawMessage, o Options) (json.RawMessage, *Credential, error) {
	var opts creationOptions
	if err := decodeOptions(publicKeyOptions, &opts); err != nil {
		return nil, nil, err
	}
	if o.Origin == "" {
		return nil, nil, errors.New("softauthn: Options.Origin is required")
	}
	// A browser refuses with NotSupportedError when ES256 is not offered.
	if len(opts.Params) > 0 && !offersES256(opts) {
		return nil, nil, errors.New("softauthn: pubKeyCredParams does not offer ES256 (-7)")
	}
	userHandle, err := b64decode(opts.User.ID)
	if err != nil || len(userHandle) == 0 {
		return nil, nil, fmt.Errorf("softauthn: user.id is not base64url: %q", opts.User.ID)
	}
	rpID, err := effectiveRPID(opts.RP.ID, o.Origin)
	if err != nil {
		return nil, nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	cred := &Credential{ID: id, UserHandle: userHandle, RPID: rpID, Key: key}
	if o.SignCount != nil {
		cred.SignCount = *o.SignCount
	}

	coseKey, err := coseES256(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}

	a.mu.Lock()
	// A browser refuses with InvalidStateError when the authenticator already
	// holds an excluded credential; this is how servers stop double registration.
	for _, d := range opts.Exclude {
		if raw, err := b64decode(d.ID); err == nil && a.creds[string(raw)] != nil {
			a.mu.Unlock()
			return nil, nil, errors.New("softauthn: authenticator holds a credential in excludeCredentials")
		}
	}
	snapshot := *cred // what we answer with, before any Get can change it
	a.creds[string(id)] = cred
	a.last[rpID] = cred
	aaguid := a.aaguid
	a.mu.Unlock()

	authData := a.authData(or(o.RPID, rpID), flagAT, o, snapshot.SignCount)
	authData = append(authData, aaguid[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, coseKey...)

	attObj, err := ctap2.Marshal(struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}{"none", map[string]any{}, authData})
	if err != nil {
		return nil, nil, err
	}

	resp := map[string]any{
		"clientDataJSON":     b64(clientData(or(o.Type, "webauthn.create"), or(o.Challenge, opts.Challenge), o.Origin)),
		"attestationObject":  b64(attObj),
		"transports":         []string{"internal", "hybrid"},
		"publicKeyAlgorithm": -7,
		"publicKey":          b64(spki),
		"authenticatorData":  b64(authData),
	}
	out, err := credentialJSON(id, resp)
	return out, &snapshot, err
}

// Get answers PublicKeyCredentialRequestOptions in JSON form with the
// assertion JSON. With an empty allowCredentials (discoverable login) it uses
// o.Credential or the last credential created for the RP ID. Each Get
// increments the credential's sign count by 1, unless o.SignCount is set.
func (a *Authenticator) Get(publicKeyOptions json.RawMessage, o Options) (json.RawMessage, error) {
	var opts requestOptions
	if err := decodeOptions(publicKeyOptions, &opts); err != nil {
		return nil, err
	}
	if o.Origin == "" {
		return nil, errors.New("softauthn: Options.Origin is required")
	}
	rpID, err := effectiveRPID(opts.RPID, o.Origin)
	if err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var cred *Credential
	switch {
	case o.Credential != nil:
		cred = a.creds[string(o.Credential)]
	case len(opts.Allow) == 0:
		cred = a.last[rpID]
	default:
		for _, d := range opts.Allow {
			if raw, err := b64decode(d.ID); err == nil && a.creds[string(raw)] != nil {
				cred = a.creds[string(raw)]
				break
			}
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("softauthn: no matching credential for rpId %q", rpID)
	}
	if o.SignCount != nil {
		cred.SignCount = *o.SignCount
	} else {
		cred.SignCount++
	}

	authData := a.authData(or(o.RPID, rpID), 0, o, cred.SignCount)
	cdj := clientData(or(o.Type, "webauthn.get"), or(o.Challenge, opts.Challenge), o.Origin)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		return nil, err
	}
	userHandle := cred.UserHandle
	if o.UserHandle != nil {
		userHandle = o.UserHandle
	}
	return credentialJSON(cred.ID, map[string]any{
		"clientDataJSON":    b64(cdj),
		"authenticatorData": b64(authData),
		"signature":         b64(sig),
		"userHandle":        b64(userHandle),
	})
}

// authData returns rpIdHash | flags | signCount; Create appends the attested
// credential data.
func (a *Authenticator) authData(rpID string, extra byte, o Options, count uint32) []byte {
	flags := flagUP | extra
	if !o.NoUV {
		flags |= flagUV
	}
	if a.BackupEligible {
		flags |= flagBE
	}
	if a.BackupState {
		flags |= flagBS
	}
	h := sha256.Sum256([]byte(rpID))
	return binary.BigEndian.AppendUint32(append(h[:], flags), count)
}

// ctap2 encodes CBOR canonically (sorted map keys), as authenticators must.
var ctap2 = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// coseES256 encodes pub as a COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256.
func coseES256(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 | X (32) | Y (32)
	if err != nil {
		return nil, err
	}
	return ctap2.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
}

// clientData builds clientDataJSON with the members in the order browsers use.
func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, challenge, origin, false})
	return b
}

// credentialJSON wraps a response the way PublicKeyCredential.toJSON() does.
func credentialJSON(id []byte, response map[string]any) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"id":                      b64(id),
		"rawId":                   b64(id),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"response":                response,
		"clientExtensionResults":  map[string]any{},
	})
}

// decodeOptions unmarshals options, unwrapping {"publicKey": ...} if present.
func decodeOptions(data json.RawMessage, v any) error {
	var wrapper struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(data, &wrapper); err != nil {
		return fmt.Errorf("softauthn: options: %w", err)
	}
	if wrapper.PublicKey != nil {
		data = wrapper.PublicKey
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("softauthn: options: %w", err)
	}
	return nil
}

func offersES256(opts creationOptions) bool {
	for _, p := range opts.Params {
		if p.Type == "public-key" && p.Alg == -7 {
			return true
		}
	}
	return false
}

// effectiveRPID is rpID, or the origin's host when the server left it out
// (the browser default).
func effectiveRPID(rpID, origin string) (string, error) {
	if rpID != "" {
		return rpID, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("softauthn: no rp id and bad origin %q", origin)
	}
	return u.Hostname(), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// b64decode accepts base64url with or without padding, like servers send.
func b64decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// or returns override if set, else def.
func or(override, def string) string {
	if override != "" {
		return override
	}
	return def
}

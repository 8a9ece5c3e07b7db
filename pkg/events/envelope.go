package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"time"
)

// Payload fields that mean something to the envelope.
const (
	// FieldToken is a raw verification or reset token. It is never stored or sent as
	// is: NewEnvelope replaces it with FieldTokenSealed.
	FieldToken = "token"
	// FieldTokenSealed is the token as a Sealed value whose additional data is the
	// event id.
	FieldTokenSealed = "token_sealed"
	// FieldCode is a raw one-time code, sealed as FieldCodeSealed like a token.
	FieldCode       = "code"
	FieldCodeSealed = "code_sealed"
	// FieldUserID names the user the event is about; NewEnvelope copies it to UserID.
	FieldUserID = "user_id"
	// FieldActorID names who caused the event (an admin); copied to ActorID.
	FieldActorID = "actor_id"
)

// ErrNoToken is returned by Envelope.Token for an event that carries no token.
var ErrNoToken = errors.New("events: the event carries no token")

// NewEnvelope builds the envelope of one event. payload must encode to a JSON object
// (nil gives {}). Its "token" and "code" fields, when present, are sealed with keys under
// the event id and stored as "token_sealed" and "code_sealed", so the raw secret is in no
// byte of the result; its
// "user_id" and "actor_id" strings are copied to the envelope (and stay in the payload).
func NewEnvelope(keys *keyring.Keyring, id, typ string, occurredAt time.Time, requestID string, payload any) (Envelope, error) {
	env := Envelope{ID: id, Type: typ, OccurredAt: occurredAt.UTC(), RequestID: requestID}
	if id == "" || typ == "" {
		return Envelope{}, errors.New("events: an event needs an id and a type")
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: encode %s payload: %w", typ, err)
	}
	fields := map[string]json.RawMessage{}
	if !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return Envelope{}, fmt.Errorf("events: the %s payload is not a JSON object", typ)
		}
	}
	for _, f := range [...]struct{ plain, sealed string }{{FieldToken, FieldTokenSealed}, {FieldCode, FieldCodeSealed}} {
		if err := sealField(keys, fields, id, typ, f.plain, f.sealed); err != nil {
			return Envelope{}, err
		}
	}
	env.UserID = stringField(fields, FieldUserID)
	env.ActorID = stringField(fields, FieldActorID)
	if env.Payload, err = json.Marshal(fields); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// sealField replaces the secret field plain of fields, when present, by its Sealed
// value under the event id, stored as sealed.
func sealField(keys *keyring.Keyring, fields map[string]json.RawMessage, id, typ, plain, sealed string) error {
	raw, ok := fields[plain]
	if !ok {
		return nil
	}
	var secret string
	if err := json.Unmarshal(raw, &secret); err != nil || secret == "" {
		return fmt.Errorf("events: the %s %s is not a non-empty string", typ, plain)
	}
	if keys == nil {
		return fmt.Errorf("events: %s carries a %s and there is no key to seal it", typ, plain)
	}
	s, err := keys.Seal([]byte(secret), id)
	if err != nil {
		return err
	}
	if fields[sealed], err = json.Marshal(s); err != nil {
		return err
	}
	delete(fields, plain)
	return nil
}

func stringField(fields map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := fields[key]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// Token opens the sealed token of the event's payload: the consumer's side of
// NewEnvelope. It returns ErrNoToken when there is none and keyring.ErrUnknownKey when it was
// sealed with a key that keys lacks.
func (e Envelope) Token(keys *keyring.Keyring) (string, error) { return e.open(keys, FieldTokenSealed) }

// Code opens the sealed one-time code of the payload, as Token does the token
// (ErrNoToken when there is none).
func (e Envelope) Code(keys *keyring.Keyring) (string, error) { return e.open(keys, FieldCodeSealed) }

func (e Envelope) open(keys *keyring.Keyring, field string) (string, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		return "", fmt.Errorf("events: decode %s payload: %w", e.Type, err)
	}
	var sealed *keyring.Sealed
	if raw, ok := p[field]; ok {
		if err := json.Unmarshal(raw, &sealed); err != nil {
			return "", fmt.Errorf("events: decode %s %s: %w", e.Type, field, err)
		}
	}
	if sealed == nil {
		return "", ErrNoToken
	}
	b, err := keys.Open(*sealed, e.ID)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

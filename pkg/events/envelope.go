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
	// FieldUserID names the user the event is about; NewEnvelope copies it to UserID.
	FieldUserID = "user_id"
	// FieldActorID names who caused the event (an admin); copied to ActorID.
	FieldActorID = "actor_id"
)

// ErrNoToken is returned by Envelope.Token for an event that carries no token.
var ErrNoToken = errors.New("events: the event carries no token")

// NewEnvelope builds the envelope of one event. payload must encode to a JSON object
// (nil gives {}). Its "token" field, when present, is sealed with keys under the event
// id and stored as "token_sealed", so the raw token is in no byte of the result; its
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
	if tok, ok := fields[FieldToken]; ok {
		var plain string
		if err := json.Unmarshal(tok, &plain); err != nil || plain == "" {
			return Envelope{}, fmt.Errorf("events: the %s token is not a non-empty string", typ)
		}
		if keys == nil {
			return Envelope{}, fmt.Errorf("events: %s carries a token and there is no key to seal it", typ)
		}
		sealed, err := keys.Seal([]byte(plain), id)
		if err != nil {
			return Envelope{}, err
		}
		if fields[FieldTokenSealed], err = json.Marshal(sealed); err != nil {
			return Envelope{}, err
		}
		delete(fields, FieldToken)
	}
	env.UserID = stringField(fields, FieldUserID)
	env.ActorID = stringField(fields, FieldActorID)
	if env.Payload, err = json.Marshal(fields); err != nil {
		return Envelope{}, err
	}
	return env, nil
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
func (e Envelope) Token(keys *keyring.Keyring) (string, error) {
	var p struct {
		Sealed *keyring.Sealed `json:"token_sealed"`
	}
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		return "", fmt.Errorf("events: decode %s payload: %w", e.Type, err)
	}
	if p.Sealed == nil {
		return "", ErrNoToken
	}
	b, err := keys.Open(*p.Sealed, e.ID)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

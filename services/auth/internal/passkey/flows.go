package passkey

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/mfachallenge"
)

// FlowTTL is how long a ceremony may take, from its begin to its finish.
const FlowTTL = 5 * time.Minute

// The purposes of a flow; a flow finishes only the ceremony it was begun for.
const (
	PurposeRegister = "register" // adding a passkey to the signed-in account
	PurposeLogin    = "login"    // signing in with a passkey alone
	PurposeMFA      = "mfa"      // a passkey as the second factor after a password
)

// ErrFlowNotFound: unknown, used, expired, or begun for another purpose.
var ErrFlowNotFound = errors.New("passkey flow not found")

// State is the relying party's record of a ceremony (challenge, user handle, options).
type State = webauthn.SessionData

// Flow is a ceremony's state between its begin and its finish.
type Flow struct {
	Purpose string `json:"purpose"`
	// UserID: the account it is for (register, mfa).
	UserID string `json:"user_id,omitempty"`
	// SessionID: the session that began a registration; only it may finish it.
	SessionID string `json:"session_id,omitempty"`
	// MFATokenHash: the pending second factor it answers (mfa).
	MFATokenHash []byte `json:"mfa_token_hash,omitempty"`
	Ceremony     State  `json:"ceremony"`
}

// Flows keeps flows in Redis under the SHA-256 of their id, single use.
type Flows struct{ rdb redis.UniversalClient }

// NewFlows returns the store.
func NewFlows(rdb redis.UniversalClient) *Flows { return &Flows{rdb: rdb} }

// flowKey is where a flow id's flow lives: under its hash, never the id.
func flowKey(id string) (string, bool) {
	hash, ok := mfachallenge.HashToken(id)
	return "passkey:flow:" + hex.EncodeToString(hash), ok
}

// Start stores f for FlowTTL under a new id of 256 bits from the CSPRNG (the shape of
// every single-use token here, mfachallenge.NewToken).
func (s *Flows) Start(ctx context.Context, f Flow) (string, error) {
	id, hash := mfachallenge.NewToken()
	v, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	if err := s.rdb.Set(ctx, "passkey:flow:"+hex.EncodeToString(hash), v, FlowTTL).Err(); err != nil {
		return "", fmt.Errorf("start passkey flow: %w", err)
	}
	return id, nil
}

// Take ends the flow and returns it: of parallel finishes only one gets it, whatever
// their outcome, and a flow of another purpose is ended too.
func (s *Flows) Take(ctx context.Context, id, purpose string) (Flow, error) {
	k, ok := flowKey(id)
	if !ok {
		return Flow{}, ErrFlowNotFound
	}
	v, err := s.rdb.GetDel(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return Flow{}, ErrFlowNotFound
	}
	if err != nil {
		return Flow{}, fmt.Errorf("take passkey flow: %w", err)
	}
	var f Flow
	if err := json.Unmarshal(v, &f); err != nil || f.Purpose != purpose {
		return Flow{}, ErrFlowNotFound
	}
	return f, nil
}

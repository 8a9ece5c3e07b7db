package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Proving an address (a verification or a reset link used) takes back everything a
// provider sign-in got while the address was unproven: identities linked then are
// unlinked and every session ends. A verification link the oauth service sent for a
// sign-in it could not trust links that one identity, as the owner's click proves it.
// The rows are written here exactly as the oauth service writes them.

type proofEnv struct {
	*apitest.Env
	t *testing.T
}

func (e proofEnv) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.App.DB.NewRaw(query, args...).Exec(context.Background()); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

func (e proofEnv) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.App.DB.NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// oauthAccount is an account a provider sign-in created for an address it did not
// vouch for (the identity marked linked-while-unproven, as oauth's store links it), with
// a live session and its access token, as the oauth service's /v1/oauth/token opens.
func (e proofEnv) oauthAccount(email, provider, subject string) (userID, accessToken string) {
	e.t.Helper()
	userID = uuid.NewString()
	e.exec(`INSERT INTO users (id, email, name) VALUES (?, ?, 'Squatter')`, userID, email)
	e.exec(`INSERT INTO user_roles (user_id, role) VALUES (?, 'user')`, userID)
	e.exec(`INSERT INTO identities (provider, subject, user_id, email, email_verified, attached_unverified)
		VALUES (?, ?, ?, ?, false, true)`, provider, subject, userID, email)
	at, _ := openSession(e.t, e.Env, userID, email, "0", "oauth")
	apitest.Expect(e.t, e.Do(http.MethodGet, "/v1/auth/verify", nil, at), http.StatusOK, "")
	return userID, at
}

// TestResetUnlinksIdentityOfUnprovenAddress: a squatter signed in with a provider that
// did not vouch for victim@ (verification not required, or an account from before the
// fix). The owner resets the password: the squatter's identity is gone, its session
// ends at once, and the events say so.
func TestResetUnlinksIdentityOfUnprovenAddress(t *testing.T) {
	t.Parallel()
	e := proofEnv{apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"}), t}
	email := apitest.Email("proof-reset")
	uid, squatter := e.oauthAccount(email, "acme", "sub-squatter-"+uuid.NewString()[:8])

	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	tok := waitOutboxToken(t, e.Env, email, "auth.email.password_reset_requested")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "the owner's own passphrase 3"}, ""), http.StatusNoContent, "")

	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = ?`, uid); n != 0 {
		t.Fatalf("%d identities linked while the address was unproven survived its proof", n)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, squatter), http.StatusUnauthorized, "")
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.identity_unlinked'
		AND payload->'payload'->>'user_id' = ? AND payload->'payload'->>'how' = 'address_proven'`, uid); n != 1 {
		t.Fatalf("identity_unlinked events = %d, want 1", n)
	}
	owner := e.Login(email, "the owner's own passphrase 3")
	if !owner.User.EmailVerified {
		t.Fatal("the reset did not verify the address")
	}
}

// TestVerificationLinkLinksItsIdentityOnly: the oauth service answered an unproven
// sign-in with a verification link bound to that identity. Using it verifies the
// address, links that identity (proven), unlinks any other identity linked while the
// address was unproven and drops a password set then; sessions opened before end.
func TestVerificationLinkLinksItsIdentityOnly(t *testing.T) {
	t.Parallel()
	e := proofEnv{apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"}), t}
	email := apitest.Email("proof-link")
	squatSub, ownerSub := "sub-squatter-"+uuid.NewString()[:8], "sub-owner-"+uuid.NewString()[:8]
	uid, squatter := e.oauthAccount(email, "github", squatSub)
	// A password someone set before anyone proved the address.
	e.exec(`UPDATE users SET password_hash = 'set-while-unproven' WHERE id = ?`, uid)

	var b [32]byte
	_, _ = rand.Read(b[:])
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(raw))
	e.exec(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at, identity_provider, identity_subject, identity_email)
		VALUES (?, ?, 'email_verification', now() + interval '1 hour', 'acme', ?, ?)`, sum[:], uid, ownerSub, email)

	r := e.Do(http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": raw}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(t, &u)
	if !u.EmailVerified {
		t.Fatalf("not verified: %s", r.Body)
	}
	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = ? AND provider = 'github'`, uid); n != 0 {
		t.Fatal("the identity linked while the address was unproven survived its proof")
	}
	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = ? AND provider = 'acme' AND subject = ?
		AND NOT attached_unverified`, uid, ownerSub); n != 1 {
		t.Fatal("the link's own identity is not linked, proven")
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, squatter), http.StatusUnauthorized, "")
	if n := e.count(`SELECT count(*) FROM users WHERE id = ? AND password_hash IS NULL`, uid); n != 1 {
		t.Fatal("a password set while the address was unproven survived a link that proved an identity")
	}
	// Single use.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": raw}, ""), http.StatusBadRequest, "invalid_token")
}

package apitest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/postgres"
)

// Email returns an address no other test uses.
func Email(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:]) + "@example.com"
}

// Password is a policy-compliant password for tests.
const Password = "correct horse battery staple"

// Pair is a token pair answer.
type Pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	User         User   `json:"user"`
}

// User is the public user.
type User struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	Name          string   `json:"name"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
	MFAEnabled    bool     `json:"mfa_enabled"`
	Phone         *string  `json:"phone"`
	PhoneVerified bool     `json:"phone_verified"`
	CreatedAt     string   `json:"created_at"`
}

// OutboxToken returns the token of the newest outbox event of subject for email,
// opened from the event's sealed token with the service's EVENT_KEYS (as the token
// worker does): the outbox itself never holds it in clear.
func (e *Env) OutboxToken(email, subject string) string {
	e.T.Helper()
	env := e.OutboxEnvelope(email, subject)
	tok, err := env.Token(e.App.EventKeys)
	if err != nil || tok == "" {
		e.T.Fatalf("outbox event %s for %s has no token: %v", subject, email, err)
	}
	return tok
}

// OutboxCode returns the one-time code of the newest outbox event of subject for email,
// opened as OutboxToken opens a token.
func (e *Env) OutboxCode(email, subject string) string {
	e.T.Helper()
	code, err := e.OutboxEnvelope(email, subject).Code(e.App.EventKeys)
	if err != nil || code == "" {
		e.T.Fatalf("outbox event %s for %s has no code: %v", subject, email, err)
	}
	return code
}

// OutboxSMS returns the newest SMS event (auth.sms.code_requested) to phone and its
// opened code; ok is false when there is none.
func (e *Env) OutboxSMS(phone string) (env events.Envelope, code string, ok bool) {
	e.T.Helper()
	var raw []byte
	err := e.App.DB.NewRaw(`SELECT payload FROM outbox WHERE subject = ? AND payload->'payload'->>'phone' = ?
		ORDER BY id DESC LIMIT 1`, events.SubjectSMSCodeRequested, phone).Scan(context.Background(), &raw)
	if postgres.IsNoRows(err) {
		return events.Envelope{}, "", false
	}
	if err != nil {
		e.T.Fatal(err)
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		e.T.Fatal(err)
	}
	if code, err = env.Code(e.App.EventKeys); err != nil {
		e.T.Fatalf("SMS event to %s: %v", phone, err)
	}
	return env, code, true
}

// OutboxEnvelope returns the newest outbox event of subject for email (the payload's
// "email"), as the relay will publish it.
func (e *Env) OutboxEnvelope(email, subject string) events.Envelope {
	e.T.Helper()
	var raw []byte
	err := e.App.DB.NewRaw(`SELECT payload FROM outbox WHERE subject = ? AND payload->'payload'->>'email' = ?
		ORDER BY id DESC LIMIT 1`, subject, email).Scan(context.Background(), &raw)
	if err != nil {
		e.T.Fatalf("no outbox event %s for %s: %v", subject, email, err)
	}
	var env events.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		e.T.Fatal(err)
	}
	return env
}

// OutboxPayload returns the payload of the newest outbox event of subject for email:
// the event's own fields, with "token_sealed" in place of a token.
func (e *Env) OutboxPayload(email, subject string) map[string]any {
	e.T.Helper()
	env := e.OutboxEnvelope(email, subject)
	var payload map[string]any
	if err := json.Unmarshal(env.Payload, &payload); err != nil {
		e.T.Fatal(err)
	}
	return payload
}

// OutboxCount counts the outbox events of subject for email.
func (e *Env) OutboxCount(email, subject string) int {
	e.T.Helper()
	n, err := e.App.DB.NewSelect().Table("outbox").
		Where("subject = ? AND payload->'payload'->>'email' = ?", subject, email).Count(context.Background())
	if err != nil {
		e.T.Fatal(err)
	}
	return int(n)
}

// Register registers email and, when verification is required, verifies it through
// the token the outbox holds.
func (e *Env) Register(email string) User {
	e.T.Helper()
	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": Password, "name": "Test"}, "")
	switch r.Status {
	case http.StatusAccepted:
		tok := e.OutboxToken(email, "auth.email.verification_requested")
		v := e.Do(http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": tok}, "")
		Expect(e.T, v, http.StatusOK, "")
		var u User
		v.JSON(e.T, &u)
		return u
	case http.StatusCreated:
		var u User
		r.JSON(e.T, &u)
		return u
	}
	e.T.Fatalf("register %s: %d %s", email, r.Status, r.Body)
	return User{}
}

// Login signs in and returns the pair.
func (e *Env) Login(email, password string) Pair {
	e.T.Helper()
	r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, "")
	Expect(e.T, r, http.StatusOK, "")
	var p Pair
	r.JSON(e.T, &p)
	return p
}

// NewUser registers, verifies and signs in a fresh user.
func (e *Env) NewUser(t testing.TB) (string, Pair) {
	t.Helper()
	email := Email("user")
	e.Register(email)
	return email, e.Login(email, Password)
}

package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The per-address email budget (RATE_LIMIT_EMAILS_PER_ADDRESS) is spent only by an
// email really written to the outbox: a request refused for validation, or one for an
// address that gets nothing, spends none of it, so nobody can use it up to keep an
// owner from the reset flow. A spent budget still answers the usual 202 and sends
// nothing, for known and unknown addresses alike.

const (
	ebBudget            = 5
	ebSubjectVerify     = "auth.email.verification_requested"
	ebSubjectNotice     = "auth.email.register_existing"
	ebWeakPassword      = "weak"
	ebBudgetPerAddress  = "5/h"
	ebPurposeBudgetWide = "1000/h"
)

func ebStart(t *testing.T) *rlEnv {
	t.Helper()
	return rlStart(t, map[string]string{
		"RATE_LIMIT_EMAILS_PER_ADDRESS": ebBudgetPerAddress,
		"RATE_LIMIT_REGISTER":           ebPurposeBudgetWide,
		"RATE_LIMIT_FORGOT":             ebPurposeBudgetWide,
		"RATE_LIMIT_RESEND":             ebPurposeBudgetWide,
	})
}

func (e *rlEnv) post(path string, body map[string]string) *apitest.Response {
	e.T.Helper()
	return e.send(http.MethodPost, path, body, rlIP(), "") // a fresh client IP each time
}

// The finding: five register calls with a weak password (422, nothing sent) used up
// the victim's budget, and the owner's own forgot-password then sent nothing.
func TestEmailBudgetNotSpentByRefusedRegister(t *testing.T) {
	t.Parallel()
	off := apitest.Start(t, nil) // limits off, same database: the setup spends nothing
	verified := apitest.Email("eb-verified")
	off.Register(verified)
	pending := apitest.Email("eb-pending") // registered, never verified
	apitest.Expect(t, off.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": pending, "password": apitest.Password}, ""), http.StatusAccepted, "")

	e := ebStart(t)
	for _, addr := range []string{verified, pending} {
		for i := 0; i < ebBudget+2; i++ {
			r := e.post("/v1/auth/register", map[string]string{"email": addr, "password": ebWeakPassword})
			apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
		}
	}

	// The owner of the verified account resets the password.
	apitest.Expect(t, e.post("/v1/auth/password/forgot", map[string]string{"email": verified}), http.StatusAccepted, "")
	if n := e.OutboxCount(verified, rlSubjectResetEmail); n != 1 {
		t.Fatalf("%d reset emails after %d refused registers, want 1: the refusals spent the address budget", n, ebBudget+2)
	}
	tok := e.OutboxToken(verified, rlSubjectResetEmail)
	apitest.Expect(t, e.post("/v1/auth/password/reset", map[string]string{"token": tok, "password": rlResetPassword}),
		http.StatusNoContent, "")
	e.NewIP()
	e.Login(verified, rlResetPassword)

	// The owner of the unverified one gets a new verification link.
	apitest.Expect(t, e.post("/v1/auth/email/resend", map[string]string{"email": pending}), http.StatusAccepted, "")
	if n := e.OutboxCount(pending, ebSubjectVerify); n != 2 {
		t.Fatalf("%d verification emails after resend, want 2 (register's and resend's)", n)
	}
}

// The budget still caps what an address is sent, and a spent budget answers exactly
// as a request for an address without an account does.
func TestEmailBudgetSpentBySentEmails(t *testing.T) {
	t.Parallel()
	off := apitest.Start(t, nil)
	known := apitest.Email("eb-known")
	off.Register(known)
	unknown := apitest.Email("eb-unknown")

	e := ebStart(t)
	forgot := func(addr string) *apitest.Response {
		return e.post("/v1/auth/password/forgot", map[string]string{"email": addr})
	}
	for i := 1; i <= ebBudget+2; i++ {
		r, ru := forgot(known), forgot(unknown)
		apitest.Expect(t, r, http.StatusAccepted, "")
		rlSameBody(t, r, ru, fmt.Sprintf("forgot %d, known vs unknown address", i))
		want := min(i, ebBudget)
		if n := e.OutboxCount(known, rlSubjectResetEmail); n != want {
			t.Fatalf("forgot %d: %d reset emails, want %d", i, n, want)
		}
	}
	// The last link sent still works: the cap never locks the owner out.
	tok := e.OutboxToken(known, rlSubjectResetEmail)
	apitest.Expect(t, e.post("/v1/auth/password/reset", map[string]string{"token": tok, "password": rlResetPassword}),
		http.StatusNoContent, "")

	// Registering an unknown address spends nothing before its one verification
	// email: the forgot requests above sent it nothing.
	apitest.Expect(t, e.post("/v1/auth/register", map[string]string{"email": unknown, "password": apitest.Password}),
		http.StatusAccepted, "")
	if n := e.OutboxCount(unknown, ebSubjectVerify); n != 1 {
		t.Fatalf("%d verification emails for a new account whose address was only asked about, want 1", n)
	}
}

// A register for a taken address mails its owner a notice. Notices are capped per
// address too, but in a budget of their own, so they cannot use up the one that
// carries the owner's reset and verification links.
func TestEmailBudgetRegisterNotices(t *testing.T) {
	t.Parallel()
	off := apitest.Start(t, nil)
	owner := apitest.Email("eb-owner")
	off.Register(owner)

	e := ebStart(t)
	for i := 1; i <= ebBudget+2; i++ {
		r := e.post("/v1/auth/register", map[string]string{"email": owner, "password": apitest.Password})
		apitest.Expect(t, r, http.StatusAccepted, "")
		if n := e.OutboxCount(owner, ebSubjectNotice); n != min(i, ebBudget) {
			t.Fatalf("register %d for a taken address: %d notices, want %d", i, n, min(i, ebBudget))
		}
	}
	apitest.Expect(t, e.post("/v1/auth/password/forgot", map[string]string{"email": owner}), http.StatusAccepted, "")
	if n := e.OutboxCount(owner, rlSubjectResetEmail); n != 1 {
		t.Fatalf("%d reset emails after %d notices, want 1", n, ebBudget+2)
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/softauthn"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// pkMFABegin starts the passkey second factor of a pending login.
func pkMFABegin(t *testing.T, e *apitest.Env, mfaToken string) pkCeremony {
	t.Helper()
	return pkBegin(t, e, "/v1/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": mfaToken}, "")
}

func pkMFAFinish(e *apitest.Env, mfaToken, flowID string, cred json.RawMessage) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/login/mfa", map[string]any{"mfa_token": mfaToken, "flow_id": flowID, "credential": cred}, "")
}

func pkMFAFactors(t *testing.T, e *apitest.Env, email string) (string, []string) {
	t.Helper()
	r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var a struct {
		MFARequired bool     `json:"mfa_required"`
		MFAToken    string   `json:"mfa_token"`
		Factors     []string `json:"factors"`
	}
	r.JSON(t, &a)
	if !a.MFARequired || a.MFAToken == "" {
		t.Fatalf("login answered %s", r.Body)
	}
	return a.MFAToken, a.Factors
}

// TestPasskeySecondFactor: with TOTP on, a password login says which second factors the
// account has; a passkey answers it (amr pwd+webauthn) for that login only, refused
// answers count like wrong codes and burn the mfa_token, and a passkey sign-in alone
// needs no TOTP.
func TestPasskeySecondFactor(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _, _, pair := mfaEnable(t, e)
	uid := pair.User.ID

	tok, factors := pkMFAFactors(t, e, email)
	if !slices.Equal(factors, []string{"totp", "recovery_code"}) {
		t.Fatalf("factors without a passkey = %v", factors)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""),
		http.StatusBadRequest, "no_passkeys")

	a := softauthn.New()
	pkAdd(t, e, a, pair.AccessToken, "Key")
	tok, factors = pkMFAFactors(t, e, email)
	if !slices.Equal(factors, []string{"totp", "recovery_code", "webauthn"}) {
		t.Fatalf("factors with a passkey = %v", factors)
	}
	c := pkMFABegin(t, e, tok)
	var opts struct {
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UV string `json:"userVerification"`
	}
	if err := json.Unmarshal(c.PublicKey, &opts); err != nil || len(opts.Allow) != 1 || opts.UV != "required" {
		t.Fatalf("second-factor options %s", c.PublicKey)
	}
	cred, err := a.Get(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}
	// A flow is for its mfa_token: another pending login of the same account cannot use it.
	tok2, _ := pkMFAFactors(t, e, email)
	apitest.Expect(t, pkMFAFinish(e, tok2, c.FlowID, cred), http.StatusBadRequest, "invalid_flow")
	c = pkMFABegin(t, e, tok)
	cred, _ = a.Get(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	r := pkMFAFinish(e, tok, c.FlowID, cred)
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"pwd", "webauthn"}) {
		t.Fatalf("amr = %v", amr)
	}
	// The mfa_token was used.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""),
		http.StatusUnauthorized, "invalid_mfa_code")
	// A discoverable flow is no second factor, nor a second-factor flow a sign-in.
	d := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	dcred, _ := a.Get(d.PublicKey, softauthn.Options{Origin: pkOrigin})
	apitest.Expect(t, pkMFAFinish(e, tok2, d.FlowID, dcred), http.StatusBadRequest, "invalid_flow")
	m := pkMFABegin(t, e, tok2)
	mcred, _ := a.Get(m.PublicKey, softauthn.Options{Origin: pkOrigin})
	apitest.Expect(t, pkFinishLogin(e, m.FlowID, mcred), http.StatusBadRequest, "invalid_flow")

	// MFAMaxFailures (5) refused passkeys burn the mfa_token, each one audited.
	for i := range 5 {
		m := pkMFABegin(t, e, tok2)
		bad, _ := a.Get(m.PublicKey, softauthn.Options{Origin: pkOrigin, NoUV: true})
		apitest.Expect(t, pkMFAFinish(e, tok2, m.FlowID, bad), http.StatusUnauthorized, "invalid_passkey")
		if got := pkLastFailure(t, e, uid); got != "passkey_user_verification" {
			t.Fatalf("attempt %d: reason %q", i, got)
		}
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok2}, ""),
		http.StatusUnauthorized, "invalid_mfa_code")

	// Both a code and a passkey, or neither: invalid_request.
	tok3, _ := pkMFAFactors(t, e, email)
	for _, body := range []map[string]any{{"mfa_token": tok3}, {"mfa_token": tok3, "code": "123456", "flow_id": c.FlowID, "credential": cred},
		{"mfa_token": tok3, "flow_id": c.FlowID}} {
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login/mfa", body, ""), http.StatusBadRequest, "invalid_request")
	}

	// A passkey alone signs in without the TOTP.
	alone := pkSignIn(t, e, a)
	if amr := mfaAMR(t, alone.AccessToken); !slices.Equal(amr, []string{"webauthn"}) {
		t.Fatalf("passkey sign-in amr = %v", amr)
	}
}

// TestPasskeyReauth: adding and removing a passkey are credential changes: past
// REAUTH_MAX_AGE they need current_password; a passkey sign-in is a fresh sign-in.
func TestPasskeyReauth(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REAUTH_MAX_AGE": reauthAge.String()})
	_, pair := e.NewUser(t)
	a := softauthn.New()
	added := pkAdd(t, e, a, pair.AccessToken, "Fresh")
	reauthStale(t)

	expectReauth(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken))
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]string{"current_password": "wrong one!"}, pair.AccessToken),
		http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]string{"current_password": apitest.Password}, pair.AccessToken),
		http.StatusOK, "")
	expectReauth(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/"+added.ID, nil, pair.AccessToken))
	// Renaming is no credential change.
	apitest.Expect(t, e.Do(http.MethodPatch, "/v1/users/me/passkeys/"+added.ID, map[string]string{"name": "Old"}, pair.AccessToken), http.StatusOK, "")

	fresh := pkSignIn(t, e, a)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]any{}, fresh.AccessToken), http.StatusOK, "")
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/"+added.ID, map[string]string{"current_password": apitest.Password}, pair.AccessToken),
		http.StatusNoContent, "")
}

// TestPasskeyDisabledAndUnverified: a disabled account's passkey opens nothing.
func TestPasskeyDisabledAccount(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, pair := e.NewUser(t)
	a := softauthn.New()
	pkAdd(t, e, a, pair.AccessToken, "Key")
	if _, err := e.App.DB.NewRaw("UPDATE users SET disabled_at = now() WHERE id = ?", pair.User.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.ForgetCachedUser(pair.User.ID)
	c, cred := pkAssert(t, e, a, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, c.FlowID, cred), http.StatusForbidden, "account_disabled")
}

// TestPasskeyThrottle: refused assertions count in the account's login throttle like
// wrong passwords, from any address; once it waits even a right passkey, and the
// password, get login's 429.
func TestPasskeyThrottle(t *testing.T) {
	t.Parallel()
	e := rlStart(t, ctThrottle)
	email := apitest.Email("rl-passkey")
	e.register(email)
	e.NewIP()
	at := e.Login(email, apitest.Password).AccessToken
	a := softauthn.New()
	pkAdd(t, e.Env, a, at, "Key")

	attempt := func(o softauthn.Options, ip string) *apitest.Response {
		t.Helper()
		b := e.send(http.MethodPost, "/v1/auth/passkey/begin", map[string]any{}, ip, "")
		apitest.Expect(t, b, http.StatusOK, "")
		var c pkCeremony
		b.JSON(t, &c)
		o.Origin = pkOrigin
		cred, err := a.Get(c.PublicKey, o)
		if err != nil {
			t.Fatal(err)
		}
		return e.send(http.MethodPost, "/v1/auth/passkey/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, ip, "")
	}
	for i := 1; i <= ctFailures; i++ {
		apitest.Expect(t, attempt(softauthn.Options{NoUV: true}, rlIP()), http.StatusUnauthorized, "invalid_passkey")
	}
	rlExpect429(t, attempt(softauthn.Options{}, rlIP()), "too_many_attempts", -1, time.Minute, 0)
	rlExpect429(t, e.login(email, apitest.Password, rlIP()), "too_many_attempts", -1, time.Minute, 0)
}

// TestPasskeyV2: the v2 finish sets the refresh cookie (never a body token) behind the
// CSRF guard, and errors are problems.
func TestPasskeyV2(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	_, pair := e.NewUser(t)
	a := softauthn.New()
	// Registration on v2 (the same handlers).
	r := e.Do(http.MethodPost, "/v2/users/me/passkeys/begin", map[string]any{}, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var c pkCeremony
	r.JSON(t, &c)
	cred, _, err := a.Create(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v2/users/me/passkeys/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, pair.AccessToken),
		http.StatusCreated, "")

	begin := func() (pkCeremony, json.RawMessage) {
		r := e.Request(http.MethodPost, "/v2/auth/passkey/begin", map[string]any{}, nil)
		apitest.Expect(t, r, http.StatusOK, "")
		var c pkCeremony
		r.JSON(t, &c)
		cred, err := a.Get(c.PublicKey, softauthn.Options{Origin: pkOrigin})
		if err != nil {
			t.Fatal(err)
		}
		return c, cred
	}
	c, cred = begin()
	body := map[string]any{"flow_id": c.FlowID, "credential": cred}
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/passkey/finish", body, nil), http.StatusForbidden, "csrf_failed")
	c, cred = begin()
	r = e.Request(http.MethodPost, "/v2/auth/passkey/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, v2XRW())
	p := v2Pair(t, r)
	v2ExpectLiveCookie(t, r, e.Cfg.RefreshTokenTTL)
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"webauthn"}) {
		t.Fatalf("amr = %v", amr)
	}
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/passkey/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, v2XRW()),
		http.StatusBadRequest, "invalid_flow")
}

// TestPasskeyFinishesAnOAuthSignIn: a pending login the oauth service started (amr
// oauth) is finished here with a passkey: amr oauth and webauthn.
func TestPasskeyFinishesAnOAuthSignIn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, _, _, pair := mfaEnable(t, e)
	a := softauthn.New()
	pkAdd(t, e, a, pair.AccessToken, "Key")
	raw, hash := mfachallenge.NewToken()
	if err := mfachallenge.New(e.App.Redis).Create(context.Background(), hash,
		mfachallenge.Challenge{UserID: pair.User.ID, AMR: []string{"oauth"}}, mfachallenge.TTL); err != nil {
		t.Fatal(err)
	}
	c := pkMFABegin(t, e, raw)
	cred, err := a.Get(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}
	r := pkMFAFinish(e, raw, c.FlowID, cred)
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"oauth", "webauthn"}) {
		t.Fatalf("amr = %v, want [oauth webauthn]", amr)
	}
}

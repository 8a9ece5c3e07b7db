package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/softauthn"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Feature flags through the admin API and the gates of the flows they switch off. Each
// service a test starts has a NATS_NAMESPACE of its own, and so a flags hash of its own
// in the shared Redis (flags.Key): a test that switches a flow off never touches
// another test's service. Two replicas share one hash by sharing the namespace.

// ffFlag is a flag as the admin API answers it.
type ffFlag struct {
	Name        string `json:"name"`
	Enabled     bool   `json:"enabled"`
	Description string `json:"description"`
}

// ffStart is a service whose ADMIN_EMAILS holds a fresh address, signed in as that
// admin.
func ffStart(t *testing.T, env map[string]string) (*apitest.Env, string, apitest.Pair) {
	t.Helper()
	adminEmail := apitest.Email("ff-admin")
	vars := map[string]string{"ADMIN_EMAILS": adminEmail}
	for k, v := range env {
		vars[k] = v
	}
	e := apitest.Start(t, vars)
	e.Register(adminEmail)
	return e, adminEmail, e.Login(adminEmail, apitest.Password)
}

func ffList(t *testing.T, e *apitest.Env, ver, at string) []ffFlag {
	t.Helper()
	r := e.Do(http.MethodGet, ver+"/admin/flags", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var body struct {
		Flags []ffFlag `json:"flags"`
	}
	r.JSON(t, &body)
	return body.Flags
}

func ffEnabled(t *testing.T, e *apitest.Env, at, name string) bool {
	t.Helper()
	for _, f := range ffList(t, e, "/v1", at) {
		if f.Name == name {
			return f.Enabled
		}
	}
	t.Fatalf("no flag %s", name)
	return false
}

// ffSet switches a flag through the admin API.
func ffSet(t *testing.T, e *apitest.Env, at, name string, on bool) {
	t.Helper()
	r := e.Do(http.MethodPut, "/v1/admin/flags/"+name, map[string]bool{"enabled": on}, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var f ffFlag
	r.JSON(t, &f)
	if f.Name != name || f.Enabled != on || f.Description == "" {
		t.Fatalf("PUT %s answered %s", name, r.Body)
	}
}

// ffOff expects 404 feature_disabled naming the flag, in v1's or v2's error form.
func ffOff(t *testing.T, r *apitest.Response, flag string) {
	t.Helper()
	var body struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &body)
	if r.Status != http.StatusNotFound || body.Error.Code+body.Code != "feature_disabled" ||
		!strings.Contains(body.Error.Message+body.Detail, "feature flag "+flag) {
		t.Fatalf("got %d %s, want 404 feature_disabled naming %s", r.Status, r.Body, flag)
	}
}

// ffWait polls cond. Replicas refresh every second (the contract: seen within 5 s);
// the 15 s bound only ends a broken test, it measures nothing.
func ffWait(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ffCurrentSession is the id of at's session.
func ffCurrentSession(t *testing.T, e *apitest.Env, at string) string {
	t.Helper()
	r := e.Do(http.MethodGet, "/v1/users/me/sessions", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var body struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	r.JSON(t, &body)
	for _, s := range body.Sessions {
		if s.Current {
			return s.ID
		}
	}
	t.Fatalf("no current session: %s", r.Body)
	return ""
}

// TestFlagsAdminAPI: the list (sorted, described, every flag on by default), a change
// and its audit event with the admin as actor, and the refusals: unknown flag, a body
// without a boolean, a caller who is no admin, no token.
func TestFlagsAdminAPI(t *testing.T) {
	t.Parallel()
	e, _, adm := ffStart(t, nil)
	for _, ver := range []string{"/v1", "/v2"} {
		list := ffList(t, e, ver, adm.AccessToken)
		var names []string
		for _, f := range list {
			names = append(names, f.Name)
			if !f.Enabled || f.Description == "" {
				t.Fatalf("%s: %+v", ver, f)
			}
		}
		if !slices.Equal(names, []string{"otp_login", "passkeys", "phone"}) {
			t.Fatalf("%s: flags %v", ver, names)
		}
	}

	ffSet(t, e, adm.AccessToken, "passkeys", false)
	if ffEnabled(t, e, adm.AccessToken, "passkeys") {
		t.Fatal("the replica that switched passkeys off lists it on")
	}
	r := e.Do(http.MethodPut, "/v2/admin/flags/passkeys", map[string]bool{"enabled": true}, adm.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	if !ffEnabled(t, e, adm.AccessToken, "passkeys") {
		t.Fatal("passkeys still off after the v2 PUT")
	}

	// Each change is an audit event with the admin and their session as actor.
	sid := ffCurrentSession(t, e, adm.AccessToken)
	var rows []struct {
		Envelope []byte `bun:"payload"`
	}
	if err := e.App.DB.NewRaw(`SELECT payload FROM outbox WHERE subject = ? AND payload->>'actor_id' = ? ORDER BY id`,
		events.SubjectFlagChanged, adm.User.ID).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d flag_changed events", len(rows))
	}
	for i, want := range []bool{false, true} {
		var env events.Envelope
		if err := json.Unmarshal(rows[i].Envelope, &env); err != nil {
			t.Fatal(err)
		}
		decoded, err := env.DecodePayload()
		if err != nil {
			t.Fatal(err)
		}
		p := *decoded.(*events.FlagChanged)
		if p.Flag != "passkeys" || p.Enabled != want || p.ActorID != adm.User.ID || p.ActorSessionID != sid || env.RequestID == "" {
			t.Fatalf("event %d: %+v (envelope %s)", i, p, rows[i].Envelope)
		}
	}

	// Refusals.
	for _, ver := range []string{"/v1", "/v2"} {
		r := e.Do(http.MethodPut, ver+"/admin/flags/no_such_flag", map[string]bool{"enabled": true}, adm.AccessToken)
		oaExpect(t, r, http.StatusNotFound, "unknown_flag")
		for _, body := range []string{`{}`, `{"enabled": null}`, `{"enabled": "true"}`, `{"enabled": 1}`, `{"enable": true}`} {
			r := e.Do(http.MethodPut, ver+"/admin/flags/passkeys", body, adm.AccessToken)
			oaExpect(t, r, http.StatusBadRequest, "invalid_request")
		}
		oaExpect(t, e.Do(http.MethodPut, ver+"/admin/flags/passkeys", `{"enabled": tru`, adm.AccessToken), http.StatusBadRequest, "invalid_json")
	}
	_, user := e.NewUser(t)
	for _, ver := range []string{"/v1", "/v2"} {
		oaExpect(t, e.Do(http.MethodGet, ver+"/admin/flags", nil, user.AccessToken), http.StatusForbidden, "forbidden")
		oaExpect(t, e.Do(http.MethodPut, ver+"/admin/flags/passkeys", map[string]bool{"enabled": false}, user.AccessToken),
			http.StatusForbidden, "forbidden")
		oaExpect(t, e.Do(http.MethodGet, ver+"/admin/flags", nil, ""), http.StatusUnauthorized, "unauthorized")
	}
	if !ffEnabled(t, e, adm.AccessToken, "passkeys") {
		t.Fatal("a refused change switched passkeys")
	}
}

// TestFlagsStartupValues: FEATURE_FLAGS sets the values a service starts with, its flows
// answering accordingly, and an admin's change overrides it.
func TestFlagsStartupValues(t *testing.T) {
	t.Parallel()
	e, _, adm := ffStart(t, map[string]string{"FEATURE_FLAGS": "passkeys=off, otp_login=false"})
	want := map[string]bool{"otp_login": false, "passkeys": false, "phone": true}
	for _, f := range ffList(t, e, "/v1", adm.AccessToken) {
		if f.Enabled != want[f.Name] {
			t.Fatalf("%s enabled=%v at start", f.Name, f.Enabled)
		}
	}
	ffOff(t, e.Do(http.MethodPost, "/v1/auth/passkey/begin", map[string]any{}, ""), "passkeys")
	ffOff(t, e.Do(http.MethodPost, "/v1/auth/otp", map[string]string{"email": apitest.Email("ff-otp")}, ""), "otp_login")
	ffSet(t, e, adm.AccessToken, "passkeys", true)
	pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
}

// TestFlagsSeenByEveryReplica: two replicas on one hash (one NATS_NAMESPACE, as one
// deployment): a change made on either is answered at once by that one and, polled, by
// the other, its routes included.
func TestFlagsSeenByEveryReplica(t *testing.T) {
	t.Parallel()
	ns := map[string]string{"NATS_NAMESPACE": natstest.Namespace(t)}
	a, adminEmail, admA := ffStart(t, ns)
	b := apitest.Start(t, map[string]string{"NATS_NAMESPACE": ns["NATS_NAMESPACE"], "ADMIN_EMAILS": adminEmail})
	admB := b.Login(adminEmail, apitest.Password)
	if !ffEnabled(t, b, admB.AccessToken, "otp_login") {
		t.Fatal("otp_login off at start")
	}

	ffSet(t, a, admA.AccessToken, "otp_login", false)
	ffOff(t, a.Do(http.MethodPost, "/v1/auth/otp", map[string]string{"email": apitest.Email("ff-rep")}, ""), "otp_login")
	ffWait(t, func() bool { return !ffEnabled(t, b, admB.AccessToken, "otp_login") }, "replica b to see otp_login off")
	ffOff(t, b.Do(http.MethodPost, "/v1/auth/otp", map[string]string{"email": apitest.Email("ff-rep")}, ""), "otp_login")

	ffSet(t, b, admB.AccessToken, "otp_login", true)
	ffWait(t, func() bool { return ffEnabled(t, a, admA.AccessToken, "otp_login") }, "replica a to see otp_login on")
	apitest.Expect(t, a.Do(http.MethodPost, "/v1/auth/otp", map[string]string{"email": apitest.Email("ff-rep")}, ""),
		http.StatusAccepted, "")
}

// ffCSRF is the header the v2 token routes need.
var ffCSRF = http.Header{"X-Requested-With": {"XMLHttpRequest"}}

// TestFlagsGatePasskeys: with passkeys off every passkey route of both versions, and a
// passkey answered at login/mfa, is 404 feature_disabled, and login offers no webauthn
// factor; a TOTP code still finishes the login. On again, all of it works.
func TestFlagsGatePasskeys(t *testing.T) {
	t.Parallel()
	e, _, adm := ffStart(t, nil)
	email, clock, _, pair := mfaEnable(t, e)
	a := softauthn.New()
	pk := pkAdd(t, e, a, pair.AccessToken, "Key")
	tok, factors := pkMFAFactors(t, e, email)
	if !slices.Contains(factors, "webauthn") {
		t.Fatalf("factors with a passkey = %v", factors)
	}
	c := pkMFABegin(t, e, tok)
	cred, err := a.Get(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}

	ffSet(t, e, adm.AccessToken, "passkeys", false)
	at := pair.AccessToken
	for _, ver := range []string{"/v1", "/v2"} {
		for _, rq := range []struct {
			method, path string
			body         any
			bearer       string
		}{
			{http.MethodPost, "/users/me/passkeys/begin", map[string]any{}, at},
			{http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": "f", "credential": map[string]any{}}, at},
			{http.MethodGet, "/users/me/passkeys", nil, at},
			{http.MethodPatch, "/users/me/passkeys/" + pk.ID, map[string]string{"name": "New"}, at},
			{http.MethodDelete, "/users/me/passkeys/" + pk.ID, map[string]any{}, at},
			{http.MethodGet, "/users/me/passkeys", nil, ""}, // before authentication: the flow is not there
			{http.MethodPost, "/auth/passkey/begin", map[string]any{}, ""},
			{http.MethodPost, "/auth/passkey/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, ""},
			{http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""},
			{http.MethodPost, "/auth/login/mfa", map[string]any{"mfa_token": tok, "flow_id": c.FlowID, "credential": cred}, ""},
		} {
			h := ffCSRF.Clone()
			if rq.bearer != "" {
				h.Set("Authorization", "Bearer "+rq.bearer)
			}
			ffOff(t, e.Request(rq.method, ver+rq.path, rq.body, h), "passkeys")
		}
	}
	tok2, factors := pkMFAFactors(t, e, email)
	if slices.Contains(factors, "webauthn") || !slices.Contains(factors, "totp") {
		t.Fatalf("factors with passkeys off = %v", factors)
	}
	mfaExpectPair(t, mfaFinish(e, tok2, clock.next(t)))

	ffSet(t, e, adm.AccessToken, "passkeys", true)
	if list := pkList(t, e, at); len(list) != 1 || list[0].ID != pk.ID {
		t.Fatalf("passkeys after the flag came back: %+v", list)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v2/users/me/passkeys", nil, at), http.StatusOK, "")
	// The pending login's passkey answer, refused while off, is taken now.
	apitest.Expect(t, pkMFAFinish(e, tok, c.FlowID, cred), http.StatusOK, "")
	if _, factors := pkMFAFactors(t, e, email); !slices.Contains(factors, "webauthn") {
		t.Fatalf("factors with passkeys on again = %v", factors)
	}
	pkSignIn(t, e, a)
}

// TestFlagsGateOTPAndPhone: phone off closes the phone routes and SMS sign-in (both
// versions) but not the emailed code; otp_login off closes every code sign-in; both on
// again, SMS and email sign-in work.
func TestFlagsGateOTPAndPhone(t *testing.T) {
	t.Parallel()
	e, _, adm := ffStart(t, map[string]string{"SMS_PROVIDER": "twilio"})
	email, p := e.NewUser(t)
	number := randomPhone(t)
	phoneSet(t, e, p.AccessToken, number)

	ffSet(t, e, adm.AccessToken, "phone", false)
	for _, ver := range []string{"/v1", "/v2"} {
		h := ffCSRF.Clone()
		ffOff(t, e.Request(http.MethodPost, ver+"/auth/otp", map[string]string{"phone": number}, h), "phone")
		ffOff(t, e.Request(http.MethodPost, ver+"/auth/otp/verify", map[string]string{"phone": number, "code": "123456"}, h), "phone")
		h.Set("Authorization", "Bearer "+p.AccessToken)
		ffOff(t, e.Request(http.MethodPost, ver+"/users/me/phone", map[string]string{"phone": randomPhone(t)}, h), "phone")
		ffOff(t, e.Request(http.MethodPost, ver+"/users/me/phone/verify", map[string]string{"code": "123456"}, h), "phone")
	}
	code, _ := otpEmailCode(t, e, email)
	expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": code}), "otp")

	ffSet(t, e, adm.AccessToken, "otp_login", false)
	for _, ver := range []string{"/v1", "/v2"} {
		ffOff(t, e.Request(http.MethodPost, ver+"/auth/otp", map[string]string{"email": email}, ffCSRF), "otp_login")
		ffOff(t, e.Request(http.MethodPost, ver+"/auth/otp/verify", map[string]string{"email": email, "code": "123456"}, ffCSRF), "otp_login")
		ffOff(t, e.Request(http.MethodPost, ver+"/auth/otp/verify", map[string]string{"token": "x"}, ffCSRF), "otp_login")
	}

	ffSet(t, e, adm.AccessToken, "otp_login", true)
	ffSet(t, e, adm.AccessToken, "phone", true)
	apitest.Expect(t, otpAsk(e, map[string]string{"phone": number}), http.StatusAccepted, "")
	_, smsCode, ok := e.OutboxSMS(number)
	if !ok {
		t.Fatal("no sign-in SMS once phone is on again")
	}
	expectAMR(t, otpVerify(e, map[string]string{"phone": number, "code": smsCode}), "sms")
	code, _ = otpEmailCode(t, e, email)
	expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": code}), "otp")
	phoneSet(t, e, p.AccessToken, randomPhone(t))
}

// oaFlagFlows runs the flag routes and the answers of switched-off flows through the
// OpenAPI validator (TestOpenAPIValidatesTraffic), and leaves every flag on.
func oaFlagFlows(c oaClient, adminEmail string) {
	t := c.t
	t.Helper()
	a := c.login(adminEmail)
	userEmail := apitest.Email("oa-flags")
	c.register(userEmail)
	up := c.login(userEmail)

	oaExpect(t, c.do(http.MethodGet, "/admin/flags", nil, a.Access), http.StatusOK, "")
	for _, name := range []string{"passkeys", "otp_login", "phone"} {
		oaExpect(t, c.do(http.MethodPut, "/admin/flags/"+name, map[string]bool{"enabled": false}, a.Access), http.StatusOK, "")
	}
	oaExpect(t, c.do(http.MethodGet, "/users/me/passkeys", nil, up.Access), http.StatusNotFound, "feature_disabled")
	oaExpect(t, c.do(http.MethodPost, "/auth/passkey/begin", map[string]any{}, ""), http.StatusNotFound, "feature_disabled")
	oaExpect(t, c.do(http.MethodPost, "/auth/otp", map[string]string{"email": userEmail}, ""), http.StatusNotFound, "feature_disabled")
	oaExpect(t, c.e.Request(http.MethodPost, c.ver+"/auth/otp/verify", map[string]string{"email": userEmail, "code": "123456"},
		c.tokenHeader("", "")), http.StatusNotFound, "feature_disabled")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": randomPhone(t)}, up.Access), http.StatusNotFound, "feature_disabled")
	for _, name := range []string{"passkeys", "otp_login", "phone"} {
		oaExpect(t, c.do(http.MethodPut, "/admin/flags/"+name, map[string]bool{"enabled": true}, a.Access), http.StatusOK, "")
	}

	oaExpect(t, c.do(http.MethodPut, "/admin/flags/no_such_flag", map[string]bool{"enabled": true}, a.Access), http.StatusNotFound, "unknown_flag")
	oaExpect(t, c.invalid(http.MethodPut, "/admin/flags/passkeys", map[string]any{}, oaHeader(a.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPut, "/admin/flags/passkeys", map[string]any{"enabled": "yes"}, oaHeader(a.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.do(http.MethodGet, "/admin/flags", nil, up.Access), http.StatusForbidden, "forbidden")
	oaExpect(t, c.do(http.MethodPut, "/admin/flags/passkeys", map[string]bool{"enabled": false}, up.Access), http.StatusForbidden, "forbidden")
	oaExpect(t, c.invalid(http.MethodGet, "/admin/flags", nil, nil), http.StatusUnauthorized, "unauthorized")
}

package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/softauthn"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Passkeys end to end: a software authenticator (an ES256 key, CBOR attestation objects
// and signed assertions built in softauthn) drives the real service, PostgreSQL and
// Redis through every route and every refusal. The tests' PUBLIC_URL is
// http://auth.test, so the relying party id is auth.test and its one origin
// http://auth.test.

const pkOrigin = "http://auth.test"

// pkCeremony is a begin's answer.
type pkCeremony struct {
	FlowID    string          `json:"flow_id"`
	PublicKey json.RawMessage `json:"publicKey"`
}

type pkView struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

func pkBegin(t *testing.T, e *apitest.Env, path string, body any, at string) pkCeremony {
	t.Helper()
	r := e.Do(http.MethodPost, path, body, at)
	apitest.Expect(t, r, http.StatusOK, "")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("%s: Cache-Control = %q", path, cc)
	}
	var c pkCeremony
	r.JSON(t, &c)
	if len(c.FlowID) != 43 || len(c.PublicKey) == 0 {
		t.Fatalf("%s answered %s", path, r.Body)
	}
	return c
}

// pkCreate begins a registration with at and answers it with the authenticator.
func pkCreate(t *testing.T, e *apitest.Env, a *softauthn.Authenticator, at string, o softauthn.Options) (pkCeremony, json.RawMessage) {
	t.Helper()
	c := pkBegin(t, e, "/v1/users/me/passkeys/begin", map[string]any{}, at)
	if o.Origin == "" {
		o.Origin = pkOrigin
	}
	cred, _, err := a.Create(c.PublicKey, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, cred
}

func pkFinishRegistration(e *apitest.Env, at, flowID, name string, cred json.RawMessage) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/users/me/passkeys/finish", map[string]any{"flow_id": flowID, "name": name, "credential": cred}, at)
}

// pkAdd registers a passkey named name for at's account.
func pkAdd(t *testing.T, e *apitest.Env, a *softauthn.Authenticator, at, name string) pkView {
	t.Helper()
	c, cred := pkCreate(t, e, a, at, softauthn.Options{})
	r := pkFinishRegistration(e, at, c.FlowID, name, cred)
	apitest.Expect(t, r, http.StatusCreated, "")
	var v pkView
	r.JSON(t, &v)
	return v
}

// pkAssert begins a discoverable sign-in and answers it.
func pkAssert(t *testing.T, e *apitest.Env, a *softauthn.Authenticator, o softauthn.Options) (pkCeremony, json.RawMessage) {
	t.Helper()
	c := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	if o.Origin == "" {
		o.Origin = pkOrigin
	}
	cred, err := a.Get(c.PublicKey, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, cred
}

func pkFinishLogin(e *apitest.Env, flowID string, cred json.RawMessage) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/passkey/finish", map[string]any{"flow_id": flowID, "credential": cred}, "")
}

// pkSignIn signs in with the authenticator's passkey and answers the pair.
func pkSignIn(t *testing.T, e *apitest.Env, a *softauthn.Authenticator) apitest.Pair {
	t.Helper()
	c, cred := pkAssert(t, e, a, softauthn.Options{})
	r := pkFinishLogin(e, c.FlowID, cred)
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	return p
}

func pkList(t *testing.T, e *apitest.Env, at string) []pkView {
	t.Helper()
	r := e.Do(http.MethodGet, "/v1/users/me/passkeys", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var body struct {
		Passkeys []pkView `json:"passkeys"`
	}
	r.JSON(t, &body)
	return body.Passkeys
}

// pkLastFailure is the reason of the newest login_failed event of the user ("" none).
func pkLastFailure(t *testing.T, e *apitest.Env, userID string) string {
	t.Helper()
	failed := auditPayloads(t, e, "auth.user.login_failed", userID)
	if len(failed) == 0 {
		return ""
	}
	r, _ := failed[len(failed)-1]["reason"].(string)
	return r
}

// TestPasskeyLifecycle: add (options as the contract says), list, sign in alone (amr
// webauthn, no second factor), rename, the exclude list, delete (other sessions end,
// the passkey signs in no more), with the notice events.
func TestPasskeyLifecycle(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, pair := e.NewUser(t)
	a := softauthn.New()

	c := pkBegin(t, e, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken)
	var opts struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Selection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(c.PublicKey, &opts); err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse(pair.User.ID)
	if opts.RP.ID != "auth.test" || opts.RP.Name != "TalentForge" || opts.User.ID != base64.RawURLEncoding.EncodeToString(uid[:]) ||
		opts.User.Name != email || opts.Selection.ResidentKey != "required" || opts.Selection.UserVerification != "required" ||
		opts.Attestation != "none" || len(opts.Challenge) < 43 {
		t.Fatalf("creation options %s", c.PublicKey)
	}
	// The flow lives 5 minutes, in Redis under the hash of its id (never the id).
	sum := sha256.Sum256([]byte(c.FlowID))
	if ttl := e.App.Redis.PTTL(context.Background(), "passkey:flow:"+hex.EncodeToString(sum[:])).Val(); ttl <= 290*time.Second || ttl > 5*time.Minute {
		t.Fatalf("flow TTL %v, want 5m", ttl)
	}
	cred, _, err := a.Create(c.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}
	r := pkFinishRegistration(e, pair.AccessToken, c.FlowID, " Laptop ", cred)
	apitest.Expect(t, r, http.StatusCreated, "")
	var added pkView
	r.JSON(t, &added)
	if added.Name != "Laptop" || added.LastUsedAt != nil || added.CreatedAt == "" || uuid.Validate(added.ID) != nil {
		t.Fatalf("finish answered %s", r.Body)
	}
	if p := e.OutboxPayload(email, "auth.passkey.added"); p["passkey_id"] != added.ID || p["passkey_name"] != "Laptop" || p["user_id"] != pair.User.ID {
		t.Fatalf("auth.passkey.added = %v", p)
	}
	// The same flow finishes once.
	apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, c.FlowID, "", cred), http.StatusBadRequest, "invalid_flow")

	// Sign-in: discoverable (no allowCredentials), user verification required.
	sc := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	var ropts map[string]any
	if err := json.Unmarshal(sc.PublicKey, &ropts); err != nil {
		t.Fatal(err)
	}
	if ropts["rpId"] != "auth.test" || ropts["userVerification"] != "required" || ropts["allowCredentials"] != nil || ropts["challenge"] == "" {
		t.Fatalf("request options %s", sc.PublicKey)
	}
	assertion, err := a.Get(sc.PublicKey, softauthn.Options{Origin: pkOrigin})
	if err != nil {
		t.Fatal(err)
	}
	r = pkFinishLogin(e, sc.FlowID, assertion)
	apitest.Expect(t, r, http.StatusOK, "")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	var pk apitest.Pair
	r.JSON(t, &pk)
	if pk.User.ID != pair.User.ID || pk.RefreshToken == "" || !slices.Equal(mfaAMR(t, pk.AccessToken), []string{"webauthn"}) {
		t.Fatalf("passkey sign-in answered %s", r.Body)
	}
	mfaMe(t, e, pk.AccessToken)
	ok := auditPayloads(t, e, "auth.user.login_succeeded", pair.User.ID)
	if last := ok[len(ok)-1]; !slices.Equal(toStrings(last["amr"]), []string{"webauthn"}) {
		t.Fatalf("login_succeeded = %v", last)
	}
	if l := pkList(t, e, pair.AccessToken); len(l) != 1 || l[0].ID != added.ID || l[0].LastUsedAt == nil {
		t.Fatalf("list = %+v", l)
	}

	// Rename: no re-authentication, names checked, another account's id not found.
	r = e.Do(http.MethodPatch, "/v1/users/me/passkeys/"+added.ID, map[string]string{"name": "Work laptop"}, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	for _, bad := range []string{"", strings.Repeat("x", 65), "a\x00b"} {
		apitest.Expect(t, e.Do(http.MethodPatch, "/v1/users/me/passkeys/"+added.ID, map[string]string{"name": bad}, pair.AccessToken),
			http.StatusBadRequest, "invalid_name")
	}
	_, other := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPatch, "/v1/users/me/passkeys/"+added.ID, map[string]string{"name": "mine"}, other.AccessToken),
		http.StatusNotFound, "")
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/"+added.ID, nil, other.AccessToken), http.StatusNotFound, "")
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/not-a-uuid", nil, pair.AccessToken), http.StatusNotFound, "")
	if l := pkList(t, e, other.AccessToken); len(l) != 0 {
		t.Fatalf("another account lists %+v", l)
	}

	// A second registration excludes the passkey the account holds.
	c2 := pkBegin(t, e, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken)
	if _, _, err := a.Create(c2.PublicKey, softauthn.Options{Origin: pkOrigin}); err == nil {
		t.Fatalf("excludeCredentials lacks the registered passkey: %s", c2.PublicKey)
	}

	// Delete: the passkey's own session ends with it, the caller's stays.
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/"+added.ID, nil, pair.AccessToken), http.StatusNoContent, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, pk.AccessToken), http.StatusUnauthorized, "")
	mfaMe(t, e, pair.AccessToken)
	if p := e.OutboxPayload(email, "auth.passkey.removed"); p["passkey_id"] != added.ID || p["passkey_name"] != "Work laptop" {
		t.Fatalf("auth.passkey.removed = %v", p)
	}
	if l := pkList(t, e, pair.AccessToken); len(l) != 0 {
		t.Fatalf("list after delete = %+v", l)
	}
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/passkeys/"+added.ID, nil, pair.AccessToken), http.StatusNotFound, "")
	c3, gone := pkAssert(t, e, a, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, c3.FlowID, gone), http.StatusUnauthorized, "invalid_passkey")
}

// pkTamper flips the bits of one byte (at, from the end when negative) of a response
// field of a credential's JSON.
func pkTamper(t *testing.T, cred json.RawMessage, field string, at int) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cred, &m); err != nil {
		t.Fatal(err)
	}
	resp := m["response"].(map[string]any)
	b, err := base64.RawURLEncoding.DecodeString(resp[field].(string))
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0xff
	resp[field] = base64.RawURLEncoding.EncodeToString(b)
	out, _ := json.Marshal(m)
	return out
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.(string))
	}
	return out
}

// TestPasskeySignInRefusals: every way an assertion can be wrong is refused with its
// code, and the audit log says why.
func TestPasskeySignInRefusals(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, pair := e.NewUser(t)
	uid := pair.User.ID
	a := softauthn.New()
	pkAdd(t, e, a, pair.AccessToken, "Phone")
	_, otherPair := e.NewUser(t)
	otherID := uuid.MustParse(otherPair.User.ID)

	refused := func(name string, o softauthn.Options, reason string) {
		t.Helper()
		c, cred := pkAssert(t, e, a, o)
		apitest.Expect(t, pkFinishLogin(e, c.FlowID, cred), http.StatusUnauthorized, "invalid_passkey")
		if got := pkLastFailure(t, e, uid); got != reason {
			t.Fatalf("%s: login_failed reason %q, want %q", name, got, reason)
		}
	}
	refused("wrong origin", softauthn.Options{Origin: "https://evil.example"}, "passkey_origin")
	refused("sub-origin not configured", softauthn.Options{Origin: "http://login.auth.test"}, "passkey_origin")
	refused("wrong rp id", softauthn.Options{RPID: "evil.example"}, "passkey_rp_id")
	refused("no user verification", softauthn.Options{NoUV: true}, "passkey_user_verification")
	refused("another account's user handle", softauthn.Options{UserHandle: otherID[:]}, "passkey_user_handle")
	refused("a create ceremony", softauthn.Options{Type: "webauthn.create"}, "invalid_passkey")

	// A signature that does not cover what was sent (the counter changed after signing).
	c0, cred0 := pkAssert(t, e, a, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, c0.FlowID, pkTamper(t, cred0, "authenticatorData", -1)), http.StatusUnauthorized, "invalid_passkey")
	if got := pkLastFailure(t, e, uid); got != "invalid_passkey" {
		t.Fatalf("bad signature: reason %q", got)
	}

	// A replay: the same answer again is refused (its flow is gone), and so is it for a
	// new flow (another challenge).
	c, cred := pkAssert(t, e, a, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, c.FlowID, cred), http.StatusOK, "")
	apitest.Expect(t, pkFinishLogin(e, c.FlowID, cred), http.StatusBadRequest, "invalid_flow")
	fresh := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	apitest.Expect(t, pkFinishLogin(e, fresh.FlowID, cred), http.StatusUnauthorized, "invalid_passkey")
	if got := pkLastFailure(t, e, uid); got != "passkey_challenge" {
		t.Fatalf("replay: reason %q", got)
	}
	// A challenge of another flow signed for this one.
	c1 := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	var o1 struct {
		Challenge string `json:"challenge"`
	}
	_ = json.Unmarshal(c1.PublicKey, &o1)
	refused("challenge of another flow", softauthn.Options{Challenge: o1.Challenge}, "passkey_challenge")

	// A counter that does not grow: a cloned key.
	one := uint32(1)
	refused("sign count backwards", softauthn.Options{SignCount: &one}, "passkey_sign_count")

	// Flows: unknown, of another purpose, malformed.
	_, cred = pkAssert(t, e, a, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, strings.Repeat("A", 43), cred), http.StatusBadRequest, "invalid_flow")
	apitest.Expect(t, pkFinishLogin(e, "short", cred), http.StatusBadRequest, "invalid_flow")
	reg := pkBegin(t, e, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken)
	apitest.Expect(t, pkFinishLogin(e, reg.FlowID, cred), http.StatusBadRequest, "invalid_flow")
	// ... which is used up by that attempt too.
	rc, rcred := pkCreate(t, e, softauthn.New(), pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, rc.FlowID, rcred), http.StatusBadRequest, "invalid_flow")
	apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, rc.FlowID, "", rcred), http.StatusBadRequest, "invalid_flow")

	// Garbage and a credential nobody registered.
	g := pkBegin(t, e, "/v1/auth/passkey/begin", map[string]any{}, "")
	apitest.Expect(t, pkFinishLogin(e, g.FlowID, json.RawMessage(`{"id":"x","type":"public-key"}`)), http.StatusUnauthorized, "invalid_passkey")
	stranger := softauthn.New()
	if _, _, err := stranger.Create(reg.PublicKey, softauthn.Options{Origin: pkOrigin}); err != nil {
		t.Fatal(err)
	}
	c, cred = pkAssert(t, e, stranger, softauthn.Options{})
	apitest.Expect(t, pkFinishLogin(e, c.FlowID, cred), http.StatusUnauthorized, "invalid_passkey")
	var n int
	if err := e.App.DB.NewRaw(`SELECT count(*) FROM outbox WHERE subject = 'auth.user.login_failed'
		AND payload->'payload'->>'reason' = 'passkey_unknown' AND NOT payload->'payload' ? 'user_id'
		AND NOT payload->'payload' ? 'email_sha256'`).Scan(context.Background(), &n); err != nil || n == 0 {
		t.Fatalf("no anonymous passkey_unknown event (%d, %v)", n, err)
	}
	for _, body := range []map[string]any{{}, {"flow_id": g.FlowID}, {"credential": cred}, {"flow_id": g.FlowID, "credential": nil}} {
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/passkey/finish", body, ""), http.StatusBadRequest, "invalid_request")
	}

	// After all that the passkey still works (its counter past the one stored), once
	// per answer, in a parallel burst too.
	ahead := uint32(1000)
	c, cred = pkAssert(t, e, a, softauthn.Options{SignCount: &ahead})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { codes[i] = pkFinishLogin(e, c.FlowID, cred).Status })
	}
	wg.Wait()
	if wins := slices.Index(codes, http.StatusOK); wins < 0 || slices.Contains(codes[wins+1:], http.StatusOK) {
		t.Fatalf("parallel finishes of one flow: %v, want exactly one 200", codes)
	}
}

// TestPasskeyRegistrationRefusals: a registration answer that is wrong, or a flow of
// another account or session, adds nothing; the limit holds.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, pair := e.NewUser(t)
	a := softauthn.New()
	for _, o := range []softauthn.Options{{Origin: "https://evil.example"}, {RPID: "evil.example"}, {NoUV: true},
		{Type: "webauthn.get"}, {Challenge: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}} {
		c, cred := pkCreate(t, e, a, pair.AccessToken, o)
		apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, c.FlowID, "", cred), http.StatusBadRequest, "invalid_passkey")
	}
	// A tampered attestation (the public key inside changed, the structure intact).
	c, cred := pkCreate(t, e, a, pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, c.FlowID, "", pkTamper(t, cred, "attestationObject", -40)),
		http.StatusBadRequest, "invalid_passkey")

	// Another account, and another session of the same account, cannot finish a flow.
	_, other := e.NewUser(t)
	c, cred = pkCreate(t, e, a, pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishRegistration(e, other.AccessToken, c.FlowID, "", cred), http.StatusBadRequest, "invalid_flow")
	second := e.Login(email, apitest.Password)
	c, cred = pkCreate(t, e, a, pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishRegistration(e, second.AccessToken, c.FlowID, "", cred), http.StatusBadRequest, "invalid_flow")
	c, cred = pkCreate(t, e, a, pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, c.FlowID, strings.Repeat("n", 65), cred), http.StatusBadRequest, "invalid_name")
	if l := pkList(t, e, pair.AccessToken); len(l) != 0 || e.OutboxCount(email, "auth.passkey.added") != 0 {
		t.Fatalf("refused registrations left %+v", l)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", nil, ""), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me/passkeys", nil, ""), http.StatusUnauthorized, "")

	// A registration answer replayed for another account's flow: another challenge.
	c, cred = pkCreate(t, e, softauthn.New(), pair.AccessToken, softauthn.Options{})
	apitest.Expect(t, pkFinishRegistration(e, pair.AccessToken, c.FlowID, "", cred), http.StatusCreated, "")
	oc := pkBegin(t, e, "/v1/users/me/passkeys/begin", map[string]any{}, other.AccessToken)
	apitest.Expect(t, pkFinishRegistration(e, other.AccessToken, oc.FlowID, "", cred), http.StatusBadRequest, "invalid_passkey")

	// The limit: MaxPasskeys (20) per account.
	for i := len(pkList(t, e, pair.AccessToken)); i < 20; i++ {
		pkAdd(t, e, softauthn.New(), pair.AccessToken, "key")
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken), http.StatusConflict, "too_many_passkeys")
}

// TestPasskeysOffOnAnIPAddress: WebAuthn has no relying party on an IP address, so with
// PUBLIC_URL on one and no WEBAUTHN_RP_ID the service starts with passkeys off.
func TestPasskeysOffOnAnIPAddress(t *testing.T) {
	t.Parallel()
	e, _ := oaStart(t, map[string]string{"PUBLIC_URL": "http://127.0.0.1:8081"}) // answers as described
	_, pair := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/passkeys/begin", map[string]any{}, pair.AccessToken), http.StatusNotFound, "feature_disabled")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me/passkeys", nil, pair.AccessToken), http.StatusNotFound, "feature_disabled")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/passkey/begin", map[string]any{}, ""), http.StatusNotFound, "feature_disabled")
	mfaMe(t, e, pair.AccessToken) // the rest works
}

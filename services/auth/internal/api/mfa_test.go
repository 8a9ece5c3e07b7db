package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/app"
)

// TOTP end to end against the real services, with codes computed here (RFC 6238:
// SHA1, 6 digits, 30 s) from the secret enrolment answers.

// mfaClock hands out codes of ever newer time steps within the server's ±1 step of
// skew, waiting for the clock when the next step is not valid yet: the service accepts
// each step once.
type mfaClock struct {
	secret string
	last   int64
}

func (c *mfaClock) stepCode(t testing.TB, step int64) string {
	t.Helper()
	code, err := hotp.GenerateCodeCustom(c.secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// next returns a code for a step never used before and valid now.
func (c *mfaClock) next(t testing.TB) string {
	t.Helper()
	for {
		now := time.Now().Unix() / 30
		step := max(c.last+1, now-1)
		// Keep a second of margin before a step leaves the window.
		if step == now-1 && time.Now().Unix()%30 >= 29 {
			step = now
			if step <= c.last {
				step = c.last + 1
			}
		}
		if step <= now+1 {
			c.last = step
			return c.stepCode(t, step)
		}
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)) + 100*time.Millisecond)
	}
}

// cur is a code valid now that the server refuses for replay or never checks: it does
// not advance the clock.
func (c *mfaClock) cur(t testing.TB) string {
	t.Helper()
	return c.stepCode(t, max(c.last, time.Now().Unix()/30))
}

// wrong is a code of no step near now.
func (c *mfaClock) wrong(t testing.TB) string {
	t.Helper()
	now := time.Now().Unix() / 30
	bad := map[string]bool{}
	for d := int64(-3); d <= 3; d++ {
		bad[c.stepCode(t, now+d)] = true
	}
	for _, cand := range []string{"000000", "123456", "999999", "424242", "700007"} {
		if !bad[cand] {
			return cand
		}
	}
	t.Fatal("no wrong code")
	return ""
}

type mfaEnrolment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
	QR         string `json:"qr_png_base64"`
}

type mfaLoginAnswer struct {
	MFARequired bool   `json:"mfa_required"`
	MFAToken    string `json:"mfa_token"`
	AccessToken string `json:"access_token"`
}

// mfaEnable enrols and confirms TOTP for a fresh user; it returns the user's address,
// the clock of the secret and the recovery codes.
func mfaEnable(t *testing.T, e *apitest.Env) (string, *mfaClock, []string, apitest.Pair) {
	t.Helper()
	email, pair := e.NewUser(t)
	r := e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var en mfaEnrolment
	r.JSON(t, &en)
	if en.Secret == "" || !strings.HasPrefix(en.OTPAuthURL, "otpauth://totp/") || !strings.Contains(en.OTPAuthURL, "secret="+en.Secret) ||
		!strings.Contains(en.OTPAuthURL, "issuer=TalentForge") {
		t.Fatalf("enrolment %s", r.Body)
	}
	if png, err := base64.StdEncoding.DecodeString(en.QR); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("qr_png_base64 is not a PNG: %v", err)
	}
	clock := &mfaClock{secret: en.Secret}
	// Pending until confirmed: the profile says off.
	if u := mfaMe(t, e, pair.AccessToken); u.MFAEnabled {
		t.Fatal("mfa_enabled before confirmation")
	}
	r = e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var conf struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &conf)
	if len(conf.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %s", r.Body)
	}
	return email, clock, conf.RecoveryCodes, pair
}

func mfaMe(t *testing.T, e *apitest.Env, at string) apitest.User {
	t.Helper()
	r := e.Do(http.MethodGet, "/v1/users/me", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(t, &u)
	return u
}

// mfaLogin signs in with the password and expects the MFA challenge.
func mfaLogin(t *testing.T, e *apitest.Env, email, pw string) string {
	t.Helper()
	r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": pw}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var a mfaLoginAnswer
	r.JSON(t, &a)
	var raw map[string]any
	r.JSON(t, &raw)
	// mfa_required, mfa_token and the account's factors, nothing more.
	factors, _ := raw["factors"].([]any)
	if !a.MFARequired || a.MFAToken == "" || a.AccessToken != "" || raw["refresh_token"] != nil || len(raw) != 3 ||
		len(factors) < 2 || factors[0] != "totp" || factors[1] != "recovery_code" {
		t.Fatalf("login with MFA on answered %s", r.Body)
	}
	return a.MFAToken
}

func mfaFinish(e *apitest.Env, token, code string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/login/mfa", map[string]string{"mfa_token": token, "code": code}, "")
}

func mfaAMR(t *testing.T, at string) []string {
	t.Helper()
	var claims struct {
		AMR []string `json:"amr"`
	}
	jwtClaims(t, at, &claims)
	return claims.AMR
}

func mfaExpectPair(t *testing.T, r *apitest.Response) apitest.Pair {
	t.Helper()
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("no pair: %s", r.Body)
	}
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"pwd", "otp"}) {
		t.Fatalf("amr = %v, want [pwd otp]", amr)
	}
	return p
}

// TestMFAFlow: enrol, confirm, login answers mfa_required without tokens, the mfa_token
// is no bearer token, a TOTP finishes the login once (replay refused), recovery codes
// work once each, and disabling with a code ends the prompt.
func TestMFAFlow(t *testing.T) {
	e := apitest.Start(t, nil)
	email, clock, codes, pair := mfaEnable(t, e)

	if u := mfaMe(t, e, pair.AccessToken); !u.MFAEnabled {
		t.Fatal("GET /v1/users/me: mfa_enabled false after confirmation")
	}
	if !strings.Contains(e.OutboxPayload(email, "auth.user.mfa_enabled")["user_id"].(string), "-") {
		t.Fatal("no auth.user.mfa_enabled event")
	}
	// Enabled: enrolment again is a conflict, and so is confirming again.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken), http.StatusConflict, "mfa_already_enabled")

	tok := mfaLogin(t, e, email, apitest.Password)
	// SECURITY-TESTS #8: the MFA-pending token is no bearer token.
	for _, path := range []string{"/v1/users/me", "/v1/auth/verify"} {
		apitest.Expect(t, e.Do(http.MethodGet, path, nil, tok), http.StatusUnauthorized, "")
	}
	code := clock.next(t)
	p := mfaExpectPair(t, mfaFinish(e, tok, code))
	if u := mfaMe(t, e, p.AccessToken); u.Email != email || !u.MFAEnabled {
		t.Fatalf("me = %+v", u)
	}
	// The token is single use, and the code too (#32: replay in the same window).
	apitest.Expect(t, mfaFinish(e, tok, clock.cur(t)), http.StatusUnauthorized, "invalid_mfa_code")
	tok = mfaLogin(t, e, email, apitest.Password)
	apitest.Expect(t, mfaFinish(e, tok, code), http.StatusUnauthorized, "invalid_mfa_code")
	// An older step than the last accepted one is refused too.
	apitest.Expect(t, mfaFinish(e, tok, clock.stepCode(t, clock.last-1)), http.StatusUnauthorized, "invalid_mfa_code")

	// A recovery code works once, in any case and without its dash.
	rc := strings.ToLower(strings.ReplaceAll(codes[0], "-", ""))
	mfaExpectPair(t, mfaFinish(e, tok, rc))
	tok = mfaLogin(t, e, email, apitest.Password)
	apitest.Expect(t, mfaFinish(e, tok, codes[0]), http.StatusUnauthorized, "invalid_mfa_code")
	mfaExpectPair(t, mfaFinish(e, tok, codes[1]))

	// Recovery codes rest hashed.
	var n int
	var hashes [][]byte
	if err := e.App.DB.NewRaw("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = ?", pair.User.ID).Scan(context.Background(), &hashes); err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		for _, c := range codes {
			if bytes.Contains(h, []byte(c)) || bytes.Contains(h, []byte(strings.ReplaceAll(c, "-", ""))) {
				t.Fatal("a recovery code rests in clear")
			}
		}
		n++
	}
	if n != 10 {
		t.Fatalf("%d recovery codes stored", n)
	}

	// Disable: a wrong code is 400, a current one turns MFA off.
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": clock.wrong(t)}, pair.AccessToken),
		http.StatusBadRequest, "invalid_mfa_code")
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": clock.next(t)}, pair.AccessToken),
		http.StatusNoContent, "")
	if u := mfaMe(t, e, pair.AccessToken); u.MFAEnabled {
		t.Fatal("mfa_enabled after disable")
	}
	if e.OutboxCount(email, "auth.user.mfa_disabled") != 1 {
		t.Fatal("no auth.user.mfa_disabled event")
	}
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": clock.cur(t)}, pair.AccessToken),
		http.StatusBadRequest, "mfa_not_enabled")
	p = e.Login(email, apitest.Password)
	if p.AccessToken == "" || !slices.Equal(mfaAMR(t, p.AccessToken), []string{"pwd"}) {
		t.Fatalf("login after disable: %+v", p)
	}
	// The old mfa_token is gone with it.
	apitest.Expect(t, mfaFinish(e, tok, clock.cur(t)), http.StatusUnauthorized, "invalid_mfa_code")
}

// TestMFAConfirmWrongCode: a wrong code does not confirm; enrolment can be restarted
// until it is confirmed.
func TestMFAConfirmWrongCode(t *testing.T) {
	e := apitest.Start(t, nil)
	email, pair := e.NewUser(t)
	r := e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var first mfaEnrolment
	r.JSON(t, &first)
	clock := &mfaClock{secret: first.Secret}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": clock.wrong(t)}, pair.AccessToken),
		http.StatusBadRequest, "invalid_mfa_code")
	// Disabling what is not on is refused.
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": clock.cur(t)}, pair.AccessToken),
		http.StatusBadRequest, "mfa_not_enabled")
	// A new enrolment replaces the pending secret: the old one's codes stop working.
	r = e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var second mfaEnrolment
	r.JSON(t, &second)
	if second.Secret == first.Secret {
		t.Fatal("the same secret twice")
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, pair.AccessToken),
		http.StatusBadRequest, "invalid_mfa_code")
	if u := mfaMe(t, e, pair.AccessToken); u.MFAEnabled {
		t.Fatal("mfa_enabled after failed confirmations")
	}
	// Password login still opens a session while MFA is pending.
	if p := e.Login(email, apitest.Password); p.AccessToken == "" {
		t.Fatal("no pair")
	}
	c2 := &mfaClock{secret: second.Secret}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": c2.next(t)}, pair.AccessToken),
		http.StatusOK, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": c2.cur(t)}, pair.AccessToken),
		http.StatusConflict, "mfa_already_enabled")
}

// TestMFAWrongCodesBurnToken (SECURITY-TESTS #33): five wrong codes invalidate the
// mfa_token, even for the right code afterwards.
func TestMFAWrongCodesBurnToken(t *testing.T) {
	e := apitest.Start(t, nil)
	email, clock, _, _ := mfaEnable(t, e)
	tok := mfaLogin(t, e, email, apitest.Password)
	for range 5 {
		apitest.Expect(t, mfaFinish(e, tok, clock.wrong(t)), http.StatusUnauthorized, "invalid_mfa_code")
	}
	code := clock.next(t)
	apitest.Expect(t, mfaFinish(e, tok, code), http.StatusUnauthorized, "invalid_mfa_code")
	// The code was not spent on the burnt token: a new login takes it.
	mfaExpectPair(t, mfaFinish(e, mfaLogin(t, e, email, apitest.Password), code))
	// Garbage tokens are refused the same way.
	for _, bad := range []string{"x", strings.Repeat("A", 43), tok + "A"} {
		apitest.Expect(t, mfaFinish(e, bad, clock.cur(t)), http.StatusUnauthorized, "invalid_mfa_code")
	}
}

// TestMFAWrongCodesThrottle (SECURITY-TESTS #32): wrong codes count toward the login
// throttle, and the password step does not reset it while MFA is on.
func TestMFAWrongCodesThrottle(t *testing.T) {
	e := rlStart(t, map[string]string{"LOGIN_THROTTLE_IP_FAILURES": "3", "LOGIN_THROTTLE_WAIT_INCREMENT": "1m",
		"LOGIN_THROTTLE_MAX_WAIT": "5m"})
	email, clock, _, _ := mfaEnable(t, e.Env)
	tok := mfaLogin(t, e.Env, email, apitest.Password)                                                    // attempt 1
	apitest.Expect(t, mfaFinish(e.Env, tok, clock.wrong(t)), http.StatusUnauthorized, "invalid_mfa_code") // 2
	apitest.Expect(t, mfaFinish(e.Env, tok, clock.wrong(t)), http.StatusUnauthorized, "invalid_mfa_code") // 3
	r := mfaFinish(e.Env, tok, clock.next(t))
	apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, ""),
		http.StatusTooManyRequests, "too_many_attempts")
}

// TestMFAParallelSameCode (SECURITY-TESTS #76): one TOTP code sent with ten mfa
// tokens at once signs in exactly once.
func TestMFAParallelSameCode(t *testing.T) {
	e := apitest.Start(t, nil)
	email, clock, _, _ := mfaEnable(t, e)
	toks := make([]string, 10)
	for i := range toks {
		toks[i] = mfaLogin(t, e, email, apitest.Password)
	}
	code := clock.next(t)
	statuses := make([]int, len(toks))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"mfa_token": tok, "code": code})
			<-start
			res, err := e.Client.Post(e.URL+"/v1/auth/login/mfa", "application/json", bytes.NewReader(b))
			if err != nil {
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if ok != 1 {
		t.Fatalf("%d successes with one code, want 1 (%v)", ok, statuses)
	}
}

// TestMFAPasswordResetKeepsMFA (SECURITY-TESTS #34): a reset does not bypass TOTP.
func TestMFAPasswordResetKeepsMFA(t *testing.T) {
	e := apitest.Start(t, nil)
	email, clock, _, _ := mfaEnable(t, e)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	tok := e.OutboxToken(email, "auth.email.password_reset_requested")
	const pw = "a fresh passphrase after the reset 77"
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset", map[string]string{"token": tok, "password": pw}, ""),
		http.StatusNoContent, "")
	mfaExpectPair(t, mfaFinish(e, mfaLogin(t, e, email, pw), clock.next(t)))
}

// TestMFASecretSealed: the secret is unreadable in the database without the key, and
// a service with another key cannot check codes (it fails closed).
func TestMFASecretSealed(t *testing.T) {
	e := apitest.Start(t, nil)
	email, clock, _, pair := mfaEnable(t, e)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(clock.secret)
	if err != nil {
		t.Fatal(err)
	}
	var row string
	var ct []byte
	if err := e.App.DB.NewRaw("SELECT row_to_json(m)::text, m.ct FROM mfa_totp m WHERE user_id = ?", pair.User.ID).
		Scan(context.Background(), &row, &ct); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{clock.secret, strings.ToLower(clock.secret), hex.EncodeToString(raw)} {
		if strings.Contains(strings.ToLower(row), strings.ToLower(needle)) {
			t.Fatalf("the secret rests readable: %s", row)
		}
	}
	if bytes.Contains(ct, raw) || bytes.Contains(ct, []byte(clock.secret)) || len(ct) == 0 {
		t.Fatal("the secret rests readable in ct")
	}

	other := apitest.Start(t, map[string]string{"MFA_ENCRYPTION_KEYS": "test:" + mfaKey()})
	tok := mfaLogin(t, other, email, apitest.Password)
	code := clock.next(t)
	r := mfaFinish(other, tok, code)
	if r.Status == http.StatusOK || strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("a service with another key signed in: %d %s", r.Status, r.Body)
	}
	// The right key still works (the code was not spent by the failure).
	mfaExpectPair(t, mfaFinish(e, mfaLogin(t, e, email, apitest.Password), code))
}

func mfaKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// TestMFAKeyRotation: enrolled under key A; with "B,A" logins work and new writes use
// B; re-encryption moves every row to B; with B alone logins still work.
func TestMFAKeyRotation(t *testing.T) {
	db := apitest.NewDatabase(t) // re-encryption touches every row: a database of its own
	keyA, keyB := "a:"+mfaKey(), "b:"+mfaKey()
	ea := apitest.Start(t, map[string]string{"DATABASE_URL": db, "MFA_ENCRYPTION_KEYS": keyA})
	email, clock, _, pair := mfaEnable(t, ea)
	kid := func(e *apitest.Env) string {
		var k string
		if err := e.App.DB.NewRaw("SELECT kid FROM mfa_totp WHERE user_id = ?", pair.User.ID).Scan(context.Background(), &k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k := kid(ea); k != "a" {
		t.Fatalf("kid %q, want a", k)
	}

	eba := apitest.Start(t, map[string]string{"DATABASE_URL": db, "MFA_ENCRYPTION_KEYS": keyB + "," + keyA})
	mfaExpectPair(t, mfaFinish(eba, mfaLogin(t, eba, email, apitest.Password), clock.next(t)))
	// A new enrolment under B,A is sealed with B.
	_, _, _, pair2 := mfaEnable(t, eba)
	var k2 string
	if err := eba.App.DB.NewRaw("SELECT kid FROM mfa_totp WHERE user_id = ?", pair2.User.ID).Scan(context.Background(), &k2); err != nil {
		t.Fatal(err)
	}
	if k2 != "b" {
		t.Fatalf("new secret sealed with %q, want b", k2)
	}

	n, err := eba.App.MFA.Reencrypt(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("reencrypt: %d, %v", n, err)
	}
	if k := kid(eba); k != "b" {
		t.Fatalf("kid %q after reencrypt, want b", k)
	}
	// Idempotent.
	if n, err := eba.App.MFA.Reencrypt(context.Background()); err != nil || n != 2 {
		t.Fatalf("second reencrypt: %d, %v", n, err)
	}

	eb := apitest.Start(t, map[string]string{"DATABASE_URL": db, "MFA_ENCRYPTION_KEYS": keyB})
	mfaExpectPair(t, mfaFinish(eb, mfaLogin(t, eb, email, apitest.Password), clock.next(t)))
	// A only: the rows are B's now, so it fails closed.
	onlyA := apitest.Start(t, map[string]string{"DATABASE_URL": db, "MFA_ENCRYPTION_KEYS": keyA})
	if r := mfaFinish(onlyA, mfaLogin(t, onlyA, email, apitest.Password), clock.cur(t)); r.Status == http.StatusOK {
		t.Fatal("key A opened a secret resealed with B")
	}
}

// TestStartNeedsMFAKeys: without MFA_ENCRYPTION_KEYS the service does not start, and
// says so in one line naming the variable.
func TestStartNeedsMFAKeys(t *testing.T) {
	cfg, err := config.Load("127.0.0.1:0", func(k string) (string, bool) {
		if k == "EVENT_KEYS" {
			return "test:" + mfaKey(), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, zap.NewNop())
	if err == nil {
		_ = a.Close()
		t.Fatal("the service started without MFA_ENCRYPTION_KEYS")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "MFA_ENCRYPTION_KEYS: ") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q", msg)
	}
}

// TestMFAFinishesAnOAuthSignIn: the oauth service starts a challenge for an MFA account
// signed in through a provider (pkg/mfachallenge, amr oauth); a code here finishes it,
// and the session's amr says both factors: oauth and otp.
func TestMFAFinishesAnOAuthSignIn(t *testing.T) {
	e := apitest.Start(t, nil)
	_, clock, _, pair := mfaEnable(t, e)
	raw, hash := mfachallenge.NewToken()
	if err := mfachallenge.New(e.App.Redis).Create(context.Background(), hash,
		mfachallenge.Challenge{UserID: pair.User.ID, AMR: []string{"oauth"}}, mfachallenge.TTL); err != nil {
		t.Fatal(err)
	}
	r := mfaFinish(e, raw, clock.next(t))
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"oauth", "otp"}) {
		t.Fatalf("amr = %v, want [oauth otp]", amr)
	}
}

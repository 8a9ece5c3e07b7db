package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// secResult is one answer of a parallel request.
type secResult struct {
	r   *apitest.Response
	err error
}

// secRace runs n requests at once (released together) and returns the answers
// in order. Transport errors fail the test.
func secRace(t testing.TB, n int, do func(i int) (*apitest.Response, error)) []*apitest.Response {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		out   = make([]secResult, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := do(i)
			out[i] = secResult{r, err}
		})
	}
	close(start)
	wg.Wait()
	res := make([]*apitest.Response, n)
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
		if o.r.Status >= 500 {
			t.Fatalf("request %d: server error %d %s", i, o.r.Status, o.r.Body)
		}
		res[i] = o.r
	}
	return res
}

func secRefresh(e *apitest.Env, rt string) (*apitest.Response, error) {
	return secPost(e, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, "")
}

func secPairOf(t testing.TB, r *apitest.Response) apitest.Pair {
	t.Helper()
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("token pair without tokens: %s", r.Body)
	}
	return p
}

// secRTWorks reports whether rt still refreshes. It uses the token: call it
// only on tokens whose use does not matter any more.
func secRTWorks(t testing.TB, e *apitest.Env, rt string) bool {
	t.Helper()
	r := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, "")
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		if c := r.Code(); c != "invalid_refresh_token" && c != "refresh_token_reused" {
			t.Fatalf("refresh refused with %s", r.Body)
		}
		return false
	}
	t.Fatalf("refresh: %d %s", r.Status, r.Body)
	return false
}

// TestConcurrencyRefreshWithinGrace: one refresh token in 20 parallel
// refreshes (default 10 s grace) yields one successor, handed to every caller.
func TestConcurrencyRefreshWithinGrace(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	rt0 := p.RefreshToken

	const n = 20
	res := secRace(t, n, func(int) (*apitest.Response, error) { return secRefresh(e, rt0) })
	var rt1, sid string
	for i, r := range res {
		if r.Status != http.StatusOK {
			t.Fatalf("refresh %d: %d %s; within the grace every caller gets the successor", i, r.Status, r.Body)
		}
		got := secPairOf(t, r)
		if rt1 == "" {
			rt1, sid = got.RefreshToken, secSegment(t, got.AccessToken, 1)["sid"].(string)
		}
		if got.RefreshToken != rt1 {
			t.Fatalf("refresh %d answered a different successor: two live refresh tokens", i)
		}
		if s := secSegment(t, got.AccessToken, 1)["sid"]; s != sid {
			t.Fatalf("refresh %d: access token for session %v, others for %s", i, s, sid)
		}
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, got.AccessToken), http.StatusOK, "")
	}
	if rt1 == rt0 {
		t.Fatal("refresh did not rotate the token")
	}

	// Still one session: no second family was opened.
	r := e.Do(http.MethodGet, "/v1/users/me/sessions", nil, p.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	r.JSON(t, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != sid {
		t.Fatalf("sessions after the race: %s", r.Body)
	}

	// The successor is the one live token: it rotates ...
	r = e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt1}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	rt2 := secPairOf(t, r).RefreshToken
	if rt2 == rt1 || rt2 == rt0 {
		t.Fatal("second refresh did not rotate")
	}
	// ... and the original, now two rotations old, is reuse: the session ends.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt0}, ""),
		http.StatusUnauthorized, "refresh_token_reused")
	if secRTWorks(t, e, rt2) {
		t.Fatal("the newest token survived reuse detection")
	}
	secWantUnauthorized(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken), "access token after reuse")
}

// TestConcurrencyRefreshWithoutGrace: with REFRESH_REUSE_GRACE=0s, 20 parallel
// refreshes of one token: exactly one 200, the rest 401, never two live tokens.
func TestConcurrencyRefreshWithoutGrace(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": "0s"})
	email, _ := e.NewUser(t)

	const n, rounds = 20, 25
	for round := range rounds {
		p := e.Login(email, apitest.Password)
		res := secRace(t, n, func(int) (*apitest.Response, error) { return secRefresh(e, p.RefreshToken) })
		ok := 0
		successors := map[string]bool{}
		for i, r := range res {
			switch r.Status {
			case http.StatusOK:
				ok++
				successors[secPairOf(t, r).RefreshToken] = true
			case http.StatusUnauthorized:
				if c := r.Code(); c != "refresh_token_reused" && c != "invalid_refresh_token" {
					t.Fatalf("round %d, refresh %d: %s", round, i, r.Body)
				}
			default:
				t.Fatalf("round %d, refresh %d: %d %s", round, i, r.Status, r.Body)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of %d parallel refreshes succeeded without a grace, want exactly 1 (%d distinct successors)",
				round, ok, n, len(successors))
		}
		if len(successors) > 1 {
			t.Fatalf("round %d: %d different successors: a forked session", round, len(successors))
		}
		live := 0
		for rt := range successors {
			if secRTWorks(t, e, rt) {
				live++
			}
		}
		if secRTWorks(t, e, p.RefreshToken) {
			live++
		}
		if live > 1 {
			t.Fatalf("round %d: %d live refresh tokens after the race", round, live)
		}
	}
}

// TestConcurrencyRefreshVersusRevocation: a refresh racing logout (or another
// revocation of the session) never resurrects it: once the revocation has
// answered, no refresh token of that family works.
func TestConcurrencyRefreshVersusRevocation(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)

	type revoke func(victim, other apitest.Pair, sid string) (*apitest.Response, error)
	kinds := map[string]revoke{
		"logout": func(v, _ apitest.Pair, _ string) (*apitest.Response, error) {
			return secPost(e, "/v1/auth/logout", map[string]string{}, v.AccessToken)
		},
		"logout with the refresh token": func(v, _ apitest.Pair, _ string) (*apitest.Response, error) {
			return secPost(e, "/v1/auth/logout", map[string]string{"refresh_token": v.RefreshToken}, v.AccessToken)
		},
		"logout-all from another device": func(_, o apitest.Pair, _ string) (*apitest.Response, error) {
			return secPost(e, "/v1/auth/logout-all", map[string]string{}, o.AccessToken)
		},
		"session deleted from another device": func(_, o apitest.Pair, sid string) (*apitest.Response, error) {
			req, err := http.NewRequest(http.MethodDelete, e.URL+"/v1/users/me/sessions/"+sid, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+o.AccessToken)
			return secSend(e.Client, req)
		},
	}
	for name, kind := range kinds {
		t.Run(name, func(t *testing.T) {
			ee := secEnv(e, t)
			for round := range 8 {
				victim := ee.Login(email, apitest.Password)
				other := ee.Login(email, apitest.Password)
				sid, _ := secSegment(t, victim.AccessToken, 1)["sid"].(string)
				res := secRace(t, 3, func(i int) (*apitest.Response, error) {
					if i == 0 {
						return kind(victim, other, sid)
					}
					return secRefresh(ee, victim.RefreshToken)
				})
				apitest.Expect(t, res[0], http.StatusNoContent, "")
				family := []string{victim.RefreshToken}
				ats := []string{victim.AccessToken}
				for _, r := range res[1:] {
					switch r.Status {
					case http.StatusOK:
						got := secPairOf(t, r)
						family = append(family, got.RefreshToken)
						ats = append(ats, got.AccessToken)
					case http.StatusUnauthorized:
					default:
						t.Fatalf("round %d: refresh %d %s", round, r.Status, r.Body)
					}
				}
				for _, at := range ats {
					secWantUnauthorized(t, ee.Do(http.MethodGet, "/v1/auth/verify", nil, at), "access token of the revoked session")
				}
				for i, rt := range family {
					if secRTWorks(t, ee, rt) {
						t.Fatalf("round %d: refresh token %d of the revoked family still works", round, i)
					}
				}
			}
		})
	}
}

// TestConcurrencyPasswordResetToken: one reset token redeemed in parallel with
// two passwords: exactly one 204, and exactly that password signs in.
func TestConcurrencyPasswordResetToken(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	for round := range 5 {
		email := apitest.Email("race-reset")
		e.Register(email)
		before := e.Login(email, apitest.Password)
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
		tok := e.OutboxToken(email, "auth.email.password_reset_requested")
		pws := []string{"violet otter river " + secHex(4), "amber falcon meadow " + secHex(4)}

		res := secRace(t, 2, func(i int) (*apitest.Response, error) {
			return secPost(e, "/v1/auth/password/reset", map[string]string{"token": tok, "password": pws[i]}, "")
		})
		winner := -1
		for i, r := range res {
			switch {
			case r.Status == http.StatusNoContent:
				if winner >= 0 {
					t.Fatalf("round %d: the reset token was redeemed twice", round)
				}
				winner = i
			case r.Status == http.StatusBadRequest && r.Code() == "invalid_token":
			default:
				t.Fatalf("round %d: reset %d: %d %s", round, i, r.Status, r.Body)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither reset succeeded", round)
		}
		for i, pw := range pws {
			r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": pw}, "")
			if i == winner {
				apitest.Expect(t, r, http.StatusOK, "")
			} else {
				apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
			}
		}
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, ""),
			http.StatusUnauthorized, "invalid_credentials")
		// The reset ended the session that existed before it.
		secWantUnauthorized(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, before.AccessToken), "session from before the reset")
		// And the token is spent.
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset", map[string]string{"token": tok, "password": "late comer password " + secHex(4)}, ""),
			http.StatusBadRequest, "invalid_token")
	}
}

func secHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// secVariants are ten spellings of one address (case, NFC/NFD, fullwidth,
// surrounding spaces) that normalise to "josé-<tag>@example.com".
func secVariants(tag string) (canonical string, variants []string) {
	up := strings.ToUpper(tag)
	full := func(s string) string { // fullwidth forms of ASCII letters and digits
		var b strings.Builder
		for _, r := range s {
			if r >= '!' && r <= '~' {
				r += 0xFF01 - '!'
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	canonical = "josé-" + tag + "@example.com"
	variants = []string{
		"josé-" + tag + "@example.com",
		"jose\u0301-" + tag + "@example.com",
		"JOSÉ-" + up + "@EXAMPLE.COM",
		"JOSE\u0301-" + up + "@example.com",
		"ｊosé-" + tag + "@example.com",
		"josé-" + tag + "@ＥXAMPLE.com",
		"  josé-" + tag + "@example.com ",
		"José-" + full(up) + "@Example.Com",
		"ｊｏｓé-" + full(tag) + "@example.com",
		"JoSé-" + tag + "@eXample.COM",
	}
	return canonical, variants
}

// TestConcurrencyRegisterEmailVariants: ten parallel registrations of variants
// of one address make exactly one account.
func TestConcurrencyRegisterEmailVariants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	count := func(t *testing.T, e *apitest.Env, email string) int {
		t.Helper()
		n, err := e.App.DB.NewSelect().Table("users").Where("email = ?", email).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	register := func(e *apitest.Env, email string) (*apitest.Response, error) {
		return secPost(e, "/v1/auth/register", map[string]string{"email": email, "password": apitest.Password, "name": "José"}, "")
	}

	t.Run("verification not required", func(t *testing.T) {
		t.Parallel()
		e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
		for round := range 3 {
			canonical, variants := secVariants(secHex(6))
			res := secRace(t, len(variants), func(i int) (*apitest.Response, error) { return register(e, variants[i]) })
			created := 0
			for i, r := range res {
				switch {
				case r.Status == http.StatusCreated:
					created++
					var u apitest.User
					r.JSON(t, &u)
					if u.Email != canonical {
						t.Errorf("round %d: account created as %q, want %q", round, u.Email, canonical)
					}
				case r.Status == http.StatusConflict && r.Code() == "email_taken":
				default:
					t.Fatalf("round %d: register %q: %d %s", round, variants[i], r.Status, r.Body)
				}
			}
			if created != 1 {
				t.Fatalf("round %d: %d registrations succeeded, want exactly 1", round, created)
			}
			if n := count(t, e, canonical); n != 1 {
				t.Fatalf("round %d: %d rows for %s", round, n, canonical)
			}
			// Every spelling signs in to the one account.
			for _, v := range []string{variants[1], variants[4], variants[7]} {
				e.Login(v, apitest.Password)
			}
		}
	})

	t.Run("verification required", func(t *testing.T) {
		t.Parallel()
		e := apitest.Start(t, nil)
		for round := range 3 {
			canonical, variants := secVariants(secHex(6))
			res := secRace(t, len(variants), func(i int) (*apitest.Response, error) { return register(e, variants[i]) })
			for i, r := range res {
				if r.Status != http.StatusAccepted || !strings.Contains(string(r.Body), `"verification_pending"`) {
					t.Fatalf("round %d: register %q: %d %s, want 202 verification_pending", round, variants[i], r.Status, r.Body)
				}
			}
			if n := count(t, e, canonical); n != 1 {
				t.Fatalf("round %d: %d rows for %s", round, n, canonical)
			}
			if n := e.OutboxCount(canonical, "auth.email.verification_requested"); n != 1 {
				t.Errorf("round %d: %d verification emails, want 1", round, n)
			}
			if n := e.OutboxCount(canonical, "auth.email.register_existing"); n != len(variants)-1 {
				t.Errorf("round %d: %d notices to the owner, want %d", round, n, len(variants)-1)
			}
		}
	})
}

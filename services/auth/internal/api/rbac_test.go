package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func admSorted(s ...string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func admRolesHeader(t testing.TB, r *apitest.Response) []string {
	t.Helper()
	h := r.Header.Get("X-Auth-Roles")
	if h == "" {
		return nil
	}
	out := strings.Split(h, ",")
	slices.Sort(out)
	return out
}

// A role granted or revoked by the admin API is seen by the same access token at once:
// /verify, every protected route and GET /v1/users/me; the claim follows at refresh.
func TestRBACGrantRevokeSeenAtOnce(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "recruiter", "jobs:write", "jobs:read")
	_, p := e.NewUser(t)
	uid := p.User.ID

	admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusForbidden)
	admExpectVerify(t, e, p.AccessToken, "permission=jobs:write", http.StatusForbidden)
	if c := admWarm(t, e, p.AccessToken, uid); !slices.Equal(c.Roles, []string{"user"}) {
		t.Fatalf("warm cache roles = %v", c.Roles)
	}

	admSetRoles(t, e, adm.AccessToken, uid, role)
	want := admSorted(role, "user")

	// The same access token, no refresh.
	r := admVerify(t, e, p.AccessToken, "role="+role)
	apitest.Expect(t, r, http.StatusOK, "")
	if got := admRolesHeader(t, r); !slices.Equal(got, want) {
		t.Fatalf("X-Auth-Roles = %v, want %v", got, want)
	}
	if r.Header.Get("X-Auth-User-Id") != uid {
		t.Fatalf("X-Auth-User-Id = %q", r.Header.Get("X-Auth-User-Id"))
	}
	for q, status := range map[string]int{
		"permission=jobs:write":                       200,
		"permission=jobs:read":                        200,
		"permission=jobs:delete":                      403,
		"permission=jobs":                             403,
		"permission=candidates:read":                  403,
		"role=admin":                                  403,
		"role=user":                                   200,
		"role=" + role + "&permission=jobs:write":     200,
		"role=" + role + "&permission=jobs:delete":    403,
		"role=admin&permission=jobs:write":            403,
		"role=" + strings.ToUpper(role):               403,
		"permission=" + strings.ToUpper("jobs:write"): 403,
	} {
		admExpectVerify(t, e, p.AccessToken, q, status)
	}
	if me := admMe(t, e, p.AccessToken); !slices.Equal(me.Roles, want) {
		t.Fatalf("GET /v1/users/me roles = %v, want %v", me.Roles, want)
	}
	// The claim is only a hint: still the login-time roles.
	if got := admClaimRoles(t, p.AccessToken); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("old token's claim = %v", got)
	}
	// The next refresh carries the new roles, in the claim and the answer.
	p2 := admPair(t, admRefresh(t, e, p.RefreshToken))
	if got := admClaimRoles(t, p2.AccessToken); !slices.Equal(got, want) {
		t.Fatalf("refreshed claim = %v, want %v", got, want)
	}
	if !slices.Equal(p2.User.Roles, want) {
		t.Fatalf("refresh answer roles = %v, want %v", p2.User.Roles, want)
	}

	// Admin passes any permission, not any role.
	for _, perm := range []string{"jobs:write", "anything:at-all", "billing:refund:all"} {
		admExpectVerify(t, e, adm.AccessToken, "permission="+perm, http.StatusOK)
	}
	admExpectVerify(t, e, adm.AccessToken, "role="+role, http.StatusForbidden)

	// Revoke: both the old and the refreshed token lose it at once.
	if got := admSetRoles(t, e, adm.AccessToken, uid).Roles; !slices.Equal(got, []string{"user"}) {
		t.Fatalf("revoke answered roles %v", got)
	}
	for _, at := range []string{p.AccessToken, p2.AccessToken} {
		admExpectVerify(t, e, at, "role="+role, http.StatusForbidden)
		admExpectVerify(t, e, at, "permission=jobs:write", http.StatusForbidden)
		r := admVerify(t, e, at, "role=user")
		apitest.Expect(t, r, http.StatusOK, "")
		if got := admRolesHeader(t, r); !slices.Equal(got, []string{"user"}) {
			t.Fatalf("X-Auth-Roles after revoke = %v", got)
		}
		if me := admMe(t, e, at); !slices.Equal(me.Roles, []string{"user"}) {
			t.Fatalf("me roles after revoke = %v", me.Roles)
		}
	}
	p3 := admPair(t, admRefresh(t, e, p2.RefreshToken))
	if got := admClaimRoles(t, p3.AccessToken); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("claim after revoke = %v", got)
	}
	if !slices.Equal(p3.User.Roles, []string{"user"}) {
		t.Fatalf("refresh answer after revoke = %v", p3.User.Roles)
	}
}

// A demoted admin's token, whose claim still says admin, is refused on every admin
// route at once (SECURITY-TESTS I.58).
func TestRBACDemotedAdminLosesAdminRoutesAtOnce(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	_, p := e.NewUser(t)
	_, other := e.NewUser(t)
	uid := p.User.ID
	admWarm(t, e, p.AccessToken, uid)

	admSetRoles(t, e, adm.AccessToken, uid, "admin")
	// Granted: the login-time token works on admin routes at once.
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users", nil, p.AccessToken), http.StatusOK, "")
	admExpectVerify(t, e, p.AccessToken, "role=admin", http.StatusOK)
	pa := admPair(t, admRefresh(t, e, p.RefreshToken))
	if got := admClaimRoles(t, pa.AccessToken); !slices.Equal(got, []string{"admin", "user"}) {
		t.Fatalf("claim after grant = %v", got)
	}
	admWarm(t, e, pa.AccessToken, uid)

	// Demoted: the token that claims admin is refused everywhere admin is needed.
	admSetRoles(t, e, adm.AccessToken, uid)
	for _, rt := range []admRoute{
		{http.MethodGet, "/v1/admin/users", nil},
		{http.MethodGet, "/v1/admin/users/" + other.User.ID, nil},
		{http.MethodPut, "/v1/admin/users/" + other.User.ID + "/roles", map[string]any{"roles": []string{"admin"}}},
		{http.MethodPut, "/v1/admin/users/" + uid + "/roles", map[string]any{"roles": []string{"admin"}}},
		{http.MethodPost, "/v1/admin/users/" + other.User.ID + "/disable", nil},
		{http.MethodGet, "/v1/admin/roles", nil},
		{http.MethodPost, "/v1/admin/roles", map[string]any{"name": "backdoor-" + admHex(4)}},
	} {
		apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, pa.AccessToken), http.StatusForbidden, "forbidden")
	}
	admExpectVerify(t, e, pa.AccessToken, "role=admin", http.StatusForbidden)
	admExpectVerify(t, e, pa.AccessToken, "permission=anything:at-all", http.StatusForbidden)
	if got := admDBRoles(t, e, other.User.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("the demoted admin changed roles: %v", got)
	}
	admExpectVerify(t, e, other.AccessToken, "", http.StatusOK)
	pn := admPair(t, admRefresh(t, e, pa.RefreshToken))
	if got := admClaimRoles(t, pn.AccessToken); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("claim after demotion = %v", got)
	}
}

// Deleting a role takes it from every holder, seen by their tokens at once.
func TestRBACDeleteRoleTakesItFromUsers(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "reviewer", "reports:read")
	keep := admCreateRole(t, e, adm.AccessToken, "keeper", "notes:read")
	_, a := e.NewUser(t)
	_, b := e.NewUser(t)
	admSetRoles(t, e, adm.AccessToken, a.User.ID, role, keep)
	admSetRoles(t, e, adm.AccessToken, b.User.ID, role)
	for _, p := range []apitest.Pair{a, b} {
		if c := admWarm(t, e, p.AccessToken, p.User.ID); !slices.Contains(c.Roles, role) {
			t.Fatalf("warm cache roles = %v", c.Roles)
		}
		admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusOK)
		admExpectVerify(t, e, p.AccessToken, "permission=reports:read", http.StatusOK)
	}

	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+role, nil, adm.AccessToken), http.StatusNoContent, "")

	for _, p := range []apitest.Pair{a, b} {
		admNotStale(t, e, p.User.ID, "deleting a role", func(c admCached) bool {
			return !slices.Contains(c.Roles, role) && !slices.Contains(c.Permissions, "reports:read")
		})
		admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusForbidden)
		admExpectVerify(t, e, p.AccessToken, "permission=reports:read", http.StatusForbidden)
		if got := admGetUser(t, e, adm.AccessToken, p.User.ID).Roles; slices.Contains(got, role) {
			t.Fatalf("admin GET still shows the deleted role: %v", got)
		}
		if got := admMe(t, e, p.AccessToken).Roles; slices.Contains(got, role) {
			t.Fatalf("me still shows the deleted role: %v", got)
		}
	}
	if got := admDBRoles(t, e, a.User.ID); !slices.Equal(got, admSorted(keep, "user")) {
		t.Fatalf("a's roles = %v", got)
	}
	if got := admDBRoles(t, e, b.User.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("b's roles = %v", got)
	}
	// The other role of a is untouched.
	admExpectVerify(t, e, a.AccessToken, "role="+keep, http.StatusOK)
	admExpectVerify(t, e, a.AccessToken, "permission=notes:read", http.StatusOK)
	// A role of the same name made later is not silently held by the old holders.
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/roles", map[string]any{"name": role}, adm.AccessToken), http.StatusCreated, "")
	admExpectVerify(t, e, b.AccessToken, "role="+role, http.StatusForbidden)
}

// Each write through the API invalidates the user's cache entry: right after it the key
// holds the tombstone or the new user, never the old one. Removing the invalidation of
// any of these writes fails this test.
func TestRBACCacheInvalidatedByEveryWrite(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "inv", "inv:do")
	doomed := admCreateRole(t, e, adm.AccessToken, "doomed", "doomed:do")
	email, p := e.NewUser(t)
	uid := p.User.ID

	t.Run("set roles", func(t *testing.T) {
		e := admFor(t, e)
		if c := admWarm(t, e, p.AccessToken, uid); slices.Contains(c.Roles, role) {
			t.Fatalf("warm roles = %v", c.Roles)
		}
		admSetRoles(t, e, adm.AccessToken, uid, role)
		admNotStale(t, e, uid, "granting a role", func(c admCached) bool {
			return slices.Contains(c.Roles, role) && slices.Contains(c.Permissions, "inv:do")
		})
		admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusOK)
		admExpectVerify(t, e, p.AccessToken, "permission=inv:do", http.StatusOK)
	})
	t.Run("revoke roles", func(t *testing.T) {
		e := admFor(t, e)
		if c := admWarm(t, e, p.AccessToken, uid); !slices.Contains(c.Roles, role) {
			t.Fatalf("warm roles = %v", c.Roles)
		}
		admSetRoles(t, e, adm.AccessToken, uid)
		admNotStale(t, e, uid, "revoking a role", func(c admCached) bool { return !slices.Contains(c.Roles, role) })
		admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusForbidden)
	})
	t.Run("delete role", func(t *testing.T) {
		e := admFor(t, e)
		admSetRoles(t, e, adm.AccessToken, uid, doomed)
		if c := admWarm(t, e, p.AccessToken, uid); !slices.Contains(c.Roles, doomed) {
			t.Fatalf("warm roles = %v", c.Roles)
		}
		apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+doomed, nil, adm.AccessToken), http.StatusNoContent, "")
		admNotStale(t, e, uid, "deleting a role", func(c admCached) bool { return !slices.Contains(c.Roles, doomed) })
		admExpectVerify(t, e, p.AccessToken, "role="+doomed, http.StatusForbidden)
	})
	t.Run("update name", func(t *testing.T) {
		e := admFor(t, e)
		admWarm(t, e, p.AccessToken, uid)
		apitest.Expect(t, admDo(t, e, http.MethodPatch, "/v1/users/me", map[string]string{"name": "Renamed"}, p.AccessToken), http.StatusOK, "")
		admNotStale(t, e, uid, "renaming", func(c admCached) bool { return c.Name == "Renamed" })
		if me := admMe(t, e, p.AccessToken); me.Name != "Renamed" {
			t.Fatalf("me name = %q", me.Name)
		}
	})
	var warmRaw string
	t.Run("disable", func(t *testing.T) {
		e := admFor(t, e)
		admWarm(t, e, p.AccessToken, uid)
		warmRaw, _ = admCache(t, e, uid)
		apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/disable", nil, adm.AccessToken), http.StatusNoContent, "")
		admNotStale(t, e, uid, "disabling", func(c admCached) bool { return c.DisabledAt != nil })
		apitest.Expect(t, admVerify(t, e, p.AccessToken, ""), http.StatusUnauthorized, "unauthorized")
	})
	t.Run("enable", func(t *testing.T) {
		e := admFor(t, e)
		if warmRaw == "" {
			t.Skip("disable step failed")
		}
		// Nothing reads a disabled user whose sessions are gone, so put the entry a
		// reader would have cached (the user, disabled) in place by hand.
		var m map[string]any
		if err := json.Unmarshal([]byte(warmRaw), &m); err != nil {
			t.Fatal(err)
		}
		m["disabled_at"] = time.Now().UTC().Format(time.RFC3339Nano)
		b, _ := json.Marshal(m)
		if err := e.App.Redis.Set(context.Background(), admCacheKey(uid), b, 10*time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/enable", nil, adm.AccessToken), http.StatusNoContent, "")
		admNotStale(t, e, uid, "enabling", func(c admCached) bool { return c.DisabledAt == nil })
		back := admPair(t, admLogin(t, e, email, apitest.Password))
		admExpectVerify(t, e, back.AccessToken, "", http.StatusOK)
		admMe(t, e, back.AccessToken)
	})
}

// /verify answers from the cache: a change made behind the service's back (straight in
// PostgreSQL) is not seen while the entry is warm, and is seen once the entry is gone.
// GET /v1/users/me and the refresh answer read the same cached user.
func TestRBACVerifyReadsCacheNotDatabase(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "direct", "direct:do")
	_, p := e.NewUser(t)
	uid := p.User.ID
	ctx := context.Background()

	admWarm(t, e, p.AccessToken, uid)
	admExec(t, e, "INSERT INTO user_roles (user_id, role) VALUES (?, ?)", uid, role)
	admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusForbidden)
	admExpectVerify(t, e, p.AccessToken, "permission=direct:do", http.StatusForbidden)
	if me := admMe(t, e, p.AccessToken); !slices.Equal(me.Roles, []string{"user"}) {
		t.Fatalf("me while warm = %v: it does not read the cache", me.Roles)
	}
	p1 := admPair(t, admRefresh(t, e, p.RefreshToken))
	if !slices.Equal(p1.User.Roles, []string{"user"}) || !slices.Equal(admClaimRoles(t, p1.AccessToken), []string{"user"}) {
		t.Fatalf("refresh while warm = %v / %v: it does not read the cache", p1.User.Roles, admClaimRoles(t, p1.AccessToken))
	}

	if err := e.App.Redis.Del(ctx, admCacheKey(uid)).Err(); err != nil {
		t.Fatal(err)
	}
	admExpectVerify(t, e, p.AccessToken, "role="+role, http.StatusOK)
	admExpectVerify(t, e, p1.AccessToken, "permission=direct:do", http.StatusOK)
	if raw, ok := admCache(t, e, uid); !ok || raw == admTombstone || !slices.Contains(admDecodeCached(t, raw).Roles, role) {
		t.Fatalf("a miss did not fill the cache: %q", raw)
	}
	want := admSorted(role, "user")
	if me := admMe(t, e, p.AccessToken); !slices.Equal(me.Roles, want) {
		t.Fatalf("me after the miss = %v", me.Roles)
	}
	p2 := admPair(t, admRefresh(t, e, p1.RefreshToken))
	if !slices.Equal(p2.User.Roles, want) || !slices.Equal(admClaimRoles(t, p2.AccessToken), want) {
		t.Fatalf("refresh after the miss = %v / %v", p2.User.Roles, admClaimRoles(t, p2.AccessToken))
	}

	// A disable written straight to the table is not seen while warm: the check did not
	// ask PostgreSQL. Once the entry is gone it is.
	admWarm(t, e, p2.AccessToken, uid)
	admExec(t, e, "UPDATE users SET disabled_at = now() WHERE id = ?", uid)
	admExpectVerify(t, e, p2.AccessToken, "role="+role, http.StatusOK)
	admMe(t, e, p2.AccessToken)
	if err := e.App.Redis.Del(ctx, admCacheKey(uid)).Err(); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, admVerify(t, e, p2.AccessToken, ""), http.StatusUnauthorized, "unauthorized")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/users/me", nil, p2.AccessToken), http.StatusUnauthorized, "unauthorized")
	admExec(t, e, "UPDATE users SET disabled_at = NULL WHERE id = ?", uid)
	if err := e.App.Redis.Del(ctx, admCacheKey(uid)).Err(); err != nil {
		t.Fatal(err)
	}
	admExpectVerify(t, e, p2.AccessToken, "role="+role, http.StatusOK)
}

// With the user cached, /verify and GET /v1/users/me need no PostgreSQL at all: they
// keep answering with this service's database pool closed, and a miss then fails.
func TestRBACWarmVerifyWithoutPostgres(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "nopg", "nopg:read")
	_, p := e.NewUser(t)
	_, cold := e.NewUser(t)
	uid := p.User.ID
	admSetRoles(t, e, adm.AccessToken, uid, role)
	admWarm(t, e, p.AccessToken, uid)
	admWarm(t, e, adm.AccessToken, adm.User.ID)
	// The other user must miss the cache once PostgreSQL is gone.
	admWarm(t, e, cold.AccessToken, cold.User.ID)
	if err := e.App.Redis.Del(context.Background(), admCacheKey(cold.User.ID)).Err(); err != nil {
		t.Fatal(err)
	}

	if err := e.App.DB.DB.Close(); err != nil { // this test's own service; Cleanup closes it again
		t.Fatal(err)
	}
	var probe int
	if err := e.App.DB.NewRaw("SELECT 1").Scan(context.Background(), &probe); err == nil {
		t.Fatal("the pool still answers after Close")
	}

	for range 20 {
		r := admVerify(t, e, p.AccessToken, "role="+role+"&permission=nopg:read")
		apitest.Expect(t, r, http.StatusOK, "")
		if got := admRolesHeader(t, r); !slices.Equal(got, admSorted(role, "user")) {
			t.Fatalf("X-Auth-Roles = %v", got)
		}
	}
	admExpectVerify(t, e, p.AccessToken, "role=admin", http.StatusForbidden)
	admExpectVerify(t, e, adm.AccessToken, "role=admin&permission=anything:x", http.StatusOK)
	if me := admMe(t, e, p.AccessToken); !slices.Equal(me.Roles, admSorted(role, "user")) {
		t.Fatalf("me = %v", me.Roles)
	}
	// A miss has to ask PostgreSQL, and it is gone.
	r := admVerify(t, e, cold.AccessToken, "")
	if r.Status == http.StatusOK {
		t.Fatalf("a cache miss answered 200 without PostgreSQL")
	}
	t.Logf("cold /verify without PostgreSQL: %d %s", r.Status, r.Body)
}

// Concurrent misses for one user all succeed and leave the entry filled.
func TestRBACColdCacheParallelVerify(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	role := admCreateRole(t, e, adm.AccessToken, "burst", "burst:go")
	_, p := e.NewUser(t)
	uid := p.User.ID
	admSetRoles(t, e, adm.AccessToken, uid, role)
	admWarm(t, e, p.AccessToken, uid) // waits out the tombstone of the write

	for round := range 3 {
		if err := e.App.Redis.Del(context.Background(), admCacheKey(uid)).Err(); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		start := make(chan struct{})
		res := make([]*apitest.Response, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = admSend(e.Client, e.URL, http.MethodGet, "/v1/auth/verify?role="+role+"&permission=burst:go", nil, p.AccessToken)
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d request %d: %v", round, i, errs[i])
			}
			if res[i].Status != http.StatusOK {
				t.Fatalf("round %d request %d: %d %s", round, i, res[i].Status, res[i].Body)
			}
			if got := admRolesHeader(t, res[i]); !slices.Equal(got, admSorted(role, "user")) {
				t.Fatalf("round %d request %d: roles %v", round, i, got)
			}
		}
		raw, ok := admCache(t, e, uid)
		if !ok || raw == admTombstone {
			t.Fatalf("round %d: the cache was not filled: %q", round, raw)
		}
		if c := admDecodeCached(t, raw); c.ID != uid || !slices.Contains(c.Roles, role) || !slices.Contains(c.Permissions, "burst:go") {
			t.Fatalf("round %d: cache holds %s", round, raw)
		}
		ttl, err := e.App.Redis.TTL(context.Background(), admCacheKey(uid)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 5*time.Second || ttl > 10*time.Minute {
			t.Fatalf("round %d: cache TTL %v, want up to 10m", round, ttl)
		}
	}
}

// No request body anywhere grants a role, whatever the case or repetition of the key.
func TestRBACNoEscalationThroughBodies(t *testing.T) {
	t.Parallel()
	e, _ := admStart(t, nil)
	email := apitest.Email("escalate")
	forged := uuid.NewString()
	evil := `"roles":["admin"],"Roles":["admin"],"ROLES":["admin"],"rOlEs":["admin"],"role":"admin","Role":"admin",` +
		`"is_admin":true,"admin":true,"permissions":["*"],"id":"` + forged + `","user_id":"` + forged + `"`

	r := admDo(t, e, http.MethodPost, "/v1/auth/register",
		`{"email":"`+email+`","password":"`+apitest.Password+`","name":"Eve",`+evil+`,"roles":["admin","user"]}`, "")
	apitest.Expect(t, r, http.StatusAccepted, "")
	tok := e.OutboxToken(email, "auth.email.verification_requested")
	r = admDo(t, e, http.MethodPost, "/v1/auth/email/verify", `{"token":"`+tok+`",`+evil+`}`, "")
	apitest.Expect(t, r, http.StatusOK, "")
	u := admCheckUserShape(t, r.Body)
	if !slices.Equal(u.Roles, []string{"user"}) || u.ID == forged {
		t.Fatalf("verified user = %+v", u)
	}

	r = admDo(t, e, http.MethodPost, "/v1/auth/login", `{"email":"`+email+`","password":"`+apitest.Password+`",`+evil+`}`, "")
	p := admPair(t, r)
	if !slices.Equal(p.User.Roles, []string{"user"}) || !slices.Equal(admClaimRoles(t, p.AccessToken), []string{"user"}) {
		t.Fatalf("login roles %v, claim %v", p.User.Roles, admClaimRoles(t, p.AccessToken))
	}
	r = admDo(t, e, http.MethodPost, "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`",`+evil+`}`, "")
	p = admPair(t, r)
	if !slices.Equal(p.User.Roles, []string{"user"}) || !slices.Equal(admClaimRoles(t, p.AccessToken), []string{"user"}) {
		t.Fatalf("refresh roles %v, claim %v", p.User.Roles, admClaimRoles(t, p.AccessToken))
	}
	for _, body := range []string{
		`{"name":"Eve Again",` + evil + `,"roles":["admin"]}`,
		`{` + evil + `}`,
		`{"roles":["admin"],"roles":["admin"]}`,
	} {
		r = admDo(t, e, http.MethodPatch, "/v1/users/me", body, p.AccessToken)
		apitest.Expect(t, r, http.StatusOK, "")
		if got := admCheckUserShape(t, r.Body); !slices.Equal(got.Roles, []string{"user"}) || got.ID != u.ID {
			t.Fatalf("PATCH me %s answered %+v", body, got)
		}
	}
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/auth/logout", `{`+evil+`}`, p.AccessToken), http.StatusNoContent, "")
	p = e.Login(email, apitest.Password)

	if got := admDBRoles(t, e, u.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("stored roles = %v", got)
	}
	var n int
	admScan(t, e, &n, "SELECT count(*) FROM users WHERE id = ?", forged)
	if n != 0 {
		t.Fatal("a body chose the account id")
	}
	admExpectVerify(t, e, p.AccessToken, "role=admin", http.StatusForbidden)
	admExpectVerify(t, e, p.AccessToken, "permission=anything:x", http.StatusForbidden)
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users", nil, p.AccessToken), http.StatusForbidden, "forbidden")
	apitest.Expect(t, admDo(t, e, http.MethodPut, "/v1/admin/users/"+u.ID+"/roles",
		map[string]any{"roles": []string{"admin"}}, p.AccessToken), http.StatusForbidden, "forbidden")
}

// A user cannot grant itself or anyone a role, not even through a role whose permissions
// sound like admin; an admin cannot change its own roles.
func TestRBACNoSelfOrPeerGrant(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	support := admCreateRole(t, e, adm.AccessToken, "support", "users:write", "admin:*", "roles:write")
	_, a := e.NewUser(t)
	_, b := e.NewUser(t)
	admSetRoles(t, e, adm.AccessToken, a.User.ID, support)
	admExpectVerify(t, e, a.AccessToken, "permission=admin:*", http.StatusOK)

	for _, rt := range []admRoute{
		{http.MethodPut, "/v1/admin/users/" + a.User.ID + "/roles", map[string]any{"roles": []string{"admin", support}}},
		{http.MethodPut, "/v1/admin/users/" + b.User.ID + "/roles", map[string]any{"roles": []string{"admin"}}},
		{http.MethodPut, "/v1/admin/users/" + b.User.ID + "/roles", map[string]any{"roles": []string{support}}},
		{http.MethodPost, "/v1/admin/roles", map[string]any{"name": "mine-" + admHex(4), "permissions": []string{"admin:*"}}},
		{http.MethodDelete, "/v1/admin/roles/" + support, nil},
		{http.MethodPost, "/v1/admin/users/" + b.User.ID + "/disable", nil},
		{http.MethodPost, "/v1/admin/users/" + adm.User.ID + "/disable", nil},
	} {
		apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, a.AccessToken), http.StatusForbidden, "forbidden")
	}
	admExpectVerify(t, e, a.AccessToken, "role=admin", http.StatusForbidden)
	if got := admDBRoles(t, e, a.User.ID); !slices.Equal(got, admSorted(support, "user")) {
		t.Fatalf("a's roles = %v", got)
	}
	if got := admDBRoles(t, e, b.User.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("b's roles = %v", got)
	}
	admExpectVerify(t, e, b.AccessToken, "", http.StatusOK)
	admExpectVerify(t, e, adm.AccessToken, "role=admin", http.StatusOK)

	// The admin cannot touch its own roles, neither to add nor to drop.
	for _, roles := range [][]string{{"admin", support}, {}, {"user"}} {
		apitest.Expect(t, admDo(t, e, http.MethodPut, "/v1/admin/users/"+adm.User.ID+"/roles",
			map[string]any{"roles": roles}, adm.AccessToken), http.StatusForbidden, "forbidden")
	}
	if got := admDBRoles(t, e, adm.User.ID); !slices.Equal(got, []string{"admin", "user"}) {
		t.Fatalf("admin's roles = %v", got)
	}
}

// A user cannot reach another user's sessions.
func TestRBACOtherUsersSessionsUnreachable(t *testing.T) {
	t.Parallel()
	e, _ := admStart(t, nil)
	_, a := e.NewUser(t)
	_, b := e.NewUser(t)

	r := admDo(t, e, http.MethodGet, "/v1/users/me/sessions", nil, b.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	r.JSON(t, &list)
	if len(list.Sessions) != 1 {
		t.Fatalf("b's sessions: %s", r.Body)
	}
	bSID := list.Sessions[0].ID

	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/users/me/sessions/"+bSID, nil, a.AccessToken), http.StatusNotFound, "")
	r = admDo(t, e, http.MethodGet, "/v1/users/me/sessions", nil, a.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	if strings.Contains(string(r.Body), bSID) {
		t.Fatalf("a sees b's session: %s", r.Body)
	}
	// Logging out with b's refresh token ends only a's own session.
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": b.RefreshToken}, a.AccessToken),
		http.StatusNoContent, "")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users/"+b.User.ID, nil, b.AccessToken), http.StatusForbidden, "forbidden")
	admExpectVerify(t, e, b.AccessToken, "", http.StatusOK)
	admPair(t, admRefresh(t, e, b.RefreshToken))
	apitest.Expect(t, admVerify(t, e, a.AccessToken, ""), http.StatusUnauthorized, "unauthorized")
}

package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// ---------------------------------------------------------------------------
// Helpers of the admin and RBAC tests (prefixed adm).
// ---------------------------------------------------------------------------

// admFor returns e bound to t, so e.Do and friends fail the right (sub)test.
func admFor(t testing.TB, e *apitest.Env) *apitest.Env {
	c := *e
	c.T = t
	return &c
}

// admSend sends a request without failing anyone: safe from any goroutine.
func admSend(client *http.Client, base, method, path string, body any, bearer string) (*apitest.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &apitest.Response{Status: res.StatusCode, Header: res.Header, Body: out}, nil
}

// admDo sends a request and fails t on a transport error.
func admDo(t testing.TB, e *apitest.Env, method, path string, body any, bearer string) *apitest.Response {
	t.Helper()
	r, err := admSend(e.Client, e.URL, method, path, body, bearer)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func admHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// admStart runs a service whose ADMIN_EMAILS names one fresh address, and signs that
// admin in.
func admStart(t testing.TB, extra map[string]string) (*apitest.Env, apitest.Pair) {
	t.Helper()
	adminEmail := apitest.Email("admin")
	env := map[string]string{"ADMIN_EMAILS": adminEmail}
	for k, v := range extra {
		env[k] = v
	}
	e := apitest.Start(t, env)
	e.Register(adminEmail)
	p := e.Login(adminEmail, apitest.Password)
	if !slices.Contains(p.User.Roles, "admin") {
		t.Fatalf("configured admin holds %v", p.User.Roles)
	}
	return e, p
}

// admUserView is the public user with every key the contract names.
var admUserKeys = []string{"created_at", "email", "email_verified", "id", "mfa_enabled", "name", "phone", "phone_verified", "roles"}

func admCheckUserShape(t testing.TB, raw []byte) apitest.User {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("user %s: %v", raw, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, admUserKeys) {
		t.Fatalf("user keys = %v, want %v (%s)", keys, admUserKeys, raw)
	}
	var u apitest.User
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(u.ID); err != nil {
		t.Fatalf("user id %q", u.ID)
	}
	if _, err := time.Parse(time.RFC3339Nano, u.CreatedAt); err != nil {
		t.Fatalf("created_at %q", u.CreatedAt)
	}
	if u.Roles == nil {
		t.Fatalf("roles is null: %s", raw)
	}
	return u
}

type admPage struct {
	Users      []apitest.User `json:"users"`
	NextCursor *string        `json:"next_cursor"`
}

// admList reads one page of GET /v1/admin/users and checks its shape.
func admList(t testing.TB, e *apitest.Env, at string, q url.Values) admPage {
	t.Helper()
	r := admDo(t, e, http.MethodGet, "/v1/admin/users?"+q.Encode(), nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var raw struct {
		Users      []json.RawMessage `json:"users"`
		NextCursor json.RawMessage   `json:"next_cursor"`
	}
	r.JSON(t, &raw)
	if raw.Users == nil {
		t.Fatalf("users missing or null: %s", r.Body)
	}
	if raw.NextCursor == nil {
		t.Fatalf("next_cursor missing: %s", r.Body)
	}
	if s := string(raw.NextCursor); s != "null" && !strings.HasPrefix(s, `"`) {
		t.Fatalf("next_cursor is neither a string nor null: %s", s)
	}
	var page admPage
	for _, u := range raw.Users {
		page.Users = append(page.Users, admCheckUserShape(t, u))
	}
	if err := json.Unmarshal(raw.NextCursor, &page.NextCursor); err != nil {
		t.Fatal(err)
	}
	if page.NextCursor != nil && *page.NextCursor == "" {
		t.Fatal("next_cursor is an empty string")
	}
	return page
}

func admGetUser(t testing.TB, e *apitest.Env, at, id string) apitest.User {
	t.Helper()
	r := admDo(t, e, http.MethodGet, "/v1/admin/users/"+id, nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	return admCheckUserShape(t, r.Body)
}

func admSetRoles(t testing.TB, e *apitest.Env, at, id string, roles ...string) apitest.User {
	t.Helper()
	if roles == nil {
		roles = []string{}
	}
	r := admDo(t, e, http.MethodPut, "/v1/admin/users/"+id+"/roles", map[string]any{"roles": roles}, at)
	apitest.Expect(t, r, http.StatusOK, "")
	return admCheckUserShape(t, r.Body)
}

type admRole struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	CreatedAt   string   `json:"created_at"`
}

func admCheckRoleShape(t testing.TB, raw []byte) admRole {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("role %s: %v", raw, err)
	}
	if len(m) != 3 || m["name"] == nil || m["permissions"] == nil || m["created_at"] == nil {
		t.Fatalf("role keys: %s", raw)
	}
	var r admRole
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Permissions == nil {
		t.Fatalf("permissions is null: %s", raw)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.CreatedAt); err != nil {
		t.Fatalf("created_at %q", r.CreatedAt)
	}
	return r
}

// admCreateRole makes a role with a unique name from base.
func admCreateRole(t testing.TB, e *apitest.Env, at, base string, perms ...string) string {
	t.Helper()
	name := base + "-" + admHex(4)
	if perms == nil {
		perms = []string{}
	}
	r := admDo(t, e, http.MethodPost, "/v1/admin/roles", map[string]any{"name": name, "permissions": perms}, at)
	apitest.Expect(t, r, http.StatusCreated, "")
	return name
}

func admListRoles(t testing.TB, e *apitest.Env, at string) map[string]admRole {
	t.Helper()
	r := admDo(t, e, http.MethodGet, "/v1/admin/roles", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var body struct {
		Roles []json.RawMessage `json:"roles"`
	}
	r.JSON(t, &body)
	if body.Roles == nil {
		t.Fatalf("roles missing: %s", r.Body)
	}
	out := map[string]admRole{}
	var names []string
	for _, raw := range body.Roles {
		role := admCheckRoleShape(t, raw)
		out[role.Name] = role
		names = append(names, role.Name)
	}
	if !slices.IsSorted(names) {
		t.Fatalf("roles not listed by name: %v", names)
	}
	return out
}

func admVerify(t testing.TB, e *apitest.Env, at, query string) *apitest.Response {
	t.Helper()
	path := "/v1/auth/verify"
	if query != "" {
		path += "?" + query
	}
	return admDo(t, e, http.MethodGet, path, nil, at)
}

func admExpectVerify(t testing.TB, e *apitest.Env, at, query string, status int) {
	t.Helper()
	r := admVerify(t, e, at, query)
	if r.Status != status {
		t.Fatalf("verify?%s = %d %s, want %d", query, r.Status, r.Body, status)
	}
}

func admMe(t testing.TB, e *apitest.Env, at string) apitest.User {
	t.Helper()
	r := admDo(t, e, http.MethodGet, "/v1/users/me", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	return admCheckUserShape(t, r.Body)
}

func admLogin(t testing.TB, e *apitest.Env, email, pw string) *apitest.Response {
	t.Helper()
	return admDo(t, e, http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": pw}, "")
}

func admRefresh(t testing.TB, e *apitest.Env, rt string) *apitest.Response {
	t.Helper()
	return admDo(t, e, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, "")
}

func admPair(t testing.TB, r *apitest.Response) apitest.Pair {
	t.Helper()
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("not a token pair: %s", r.Body)
	}
	return p
}

// admClaimRoles reads the roles claim of an access token (no signature check: the
// server made it).
func admClaimRoles(t testing.TB, at string) []string {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", at)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Roles []string `json:"roles"`
		SID   string   `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Roles
}

func admScan(t testing.TB, e *apitest.Env, dest any, query string, args ...any) {
	t.Helper()
	if err := e.App.DB.NewRaw(query, args...).Scan(context.Background(), dest); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func admExec(t testing.TB, e *apitest.Env, query string, args ...any) {
	t.Helper()
	if _, err := e.App.DB.NewRaw(query, args...).Exec(context.Background()); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// admDBRoles reads a user's roles straight from PostgreSQL, sorted.
func admDBRoles(t testing.TB, e *apitest.Env, uid string) []string {
	t.Helper()
	var roles []string
	admScan(t, e, &roles, "SELECT role FROM user_roles WHERE user_id = ? ORDER BY role", uid)
	if roles == nil {
		roles = []string{}
	}
	return roles
}

// admEventFields is the SQL of an outbox row's event fields: the envelope's "payload"
// when the row holds an envelope, else the row's payload itself.
const admEventFields = "COALESCE(payload->'payload', payload)"

// admOutboxCount counts the outbox rows of subject whose event field key equals value
// and whose actor is actorID (payload->>'actor_id': the envelope's, or the flat
// payload's).
func admOutboxCount(t testing.TB, e *apitest.Env, subject, actorID, key, value string) int {
	t.Helper()
	var n int
	admScan(t, e, &n, `SELECT count(*) FROM outbox WHERE subject = ? AND payload->>'actor_id' = ?
		AND `+admEventFields+`->>'actor_id' = ? AND `+admEventFields+`->>? = ?`,
		subject, actorID, actorID, key, value)
	return n
}

// The user cache as the service keeps it in Redis.
const admTombstone = "-"

func admCacheKey(uid string) string { return "user:{" + uid + "}" }

type admCached struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	DisabledAt  *time.Time `json:"disabled_at"`
	Roles       []string   `json:"roles"`
	Permissions []string   `json:"permissions"`
}

// admCache returns the raw cache value of a user and whether the key exists.
func admCache(t testing.TB, e *apitest.Env, uid string) (string, bool) {
	t.Helper()
	v, err := e.App.Redis.Get(context.Background(), admCacheKey(uid)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func admDecodeCached(t testing.TB, raw string) admCached {
	t.Helper()
	var c admCached
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("cache value %q: %v", raw, err)
	}
	return c
}

// admWarm calls /verify until the user's cache key holds the user (a tombstone left by
// a recent write keeps the cache from filling for a few seconds) and returns it.
func admWarm(t testing.TB, e *apitest.Env, at, uid string) admCached {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		admExpectVerify(t, e, at, "", http.StatusOK)
		if raw, ok := admCache(t, e, uid); ok && raw != admTombstone {
			c := admDecodeCached(t, raw)
			if c.ID != uid {
				t.Fatalf("cache of %s holds user %s", uid, c.ID)
			}
			if strings.Contains(raw, "password") || strings.Contains(raw, "$argon2") {
				t.Fatalf("cache holds a password hash: %s", raw)
			}
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache of %s never filled", uid)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// admNotStale fails unless the cache key of uid is gone, a tombstone, or a user that
// passes ok: right after a write, the old value must never be served.
func admNotStale(t testing.TB, e *apitest.Env, uid, what string, ok func(admCached) bool) {
	t.Helper()
	raw, exists := admCache(t, e, uid)
	if !exists || raw == admTombstone {
		return
	}
	if c := admDecodeCached(t, raw); !ok(c) {
		t.Fatalf("after %s the cache still holds the old user: %s", what, raw)
	}
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

type admRoute struct {
	method, path string
	body         any
}

func TestAdminRoutesRequireAdmin(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	targetEmail, target := e.NewUser(t)
	_, plain := e.NewUser(t)
	role := admCreateRole(t, e, adm.AccessToken, "guarded", "jobs:read")

	routes := []admRoute{
		{http.MethodGet, "/v1/admin/users", nil},
		{http.MethodGet, "/v1/admin/users?limit=5&email=user", nil},
		{http.MethodGet, "/v1/admin/users/" + target.User.ID, nil},
		{http.MethodPut, "/v1/admin/users/" + target.User.ID + "/roles", map[string]any{"roles": []string{"admin"}}},
		{http.MethodPut, "/v1/admin/users/" + plain.User.ID + "/roles", map[string]any{"roles": []string{"admin"}}},
		{http.MethodPost, "/v1/admin/users/" + target.User.ID + "/disable", nil},
		{http.MethodPost, "/v1/admin/users/" + target.User.ID + "/enable", nil},
		{http.MethodGet, "/v1/admin/roles", nil},
		{http.MethodPost, "/v1/admin/roles", map[string]any{"name": "evil-" + admHex(4), "permissions": []string{"jobs:write"}}},
		{http.MethodDelete, "/v1/admin/roles/" + role, nil},
		{http.MethodDelete, "/v1/admin/roles/admin", nil},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := admDo(t, e, rt.method, rt.path, rt.body, "")
			apitest.Expect(t, r, http.StatusUnauthorized, "unauthorized")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, "not.a.jwt"), http.StatusUnauthorized, "unauthorized")
			apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, plain.RefreshToken), http.StatusUnauthorized, "unauthorized")
			apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, plain.AccessToken), http.StatusForbidden, "forbidden")
		})
	}

	// Nothing the refused requests asked for happened.
	if got := admDBRoles(t, e, target.User.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("target roles after refused PUT = %v", got)
	}
	if got := admDBRoles(t, e, plain.User.ID); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("caller roles after refused PUT on itself = %v", got)
	}
	admExpectVerify(t, e, target.AccessToken, "", http.StatusOK)
	admPair(t, admLogin(t, e, targetEmail, apitest.Password))
	roles := admListRoles(t, e, adm.AccessToken)
	if _, ok := roles[role]; !ok {
		t.Fatalf("role %s deleted by a plain user", role)
	}
	for name := range roles {
		if strings.HasPrefix(name, "evil-") {
			t.Fatalf("role %s created by a plain user", name)
		}
	}
	var n int
	admScan(t, e, &n, "SELECT count(*) FROM outbox WHERE subject LIKE 'auth.admin.%' AND payload->>'actor_id' = ?", plain.User.ID)
	if n != 0 {
		t.Fatalf("%d audit events with a plain user as actor", n)
	}

	// The same routes answer the admin (so the 401/403 above come from the guard).
	for _, rt := range []admRoute{routes[0], routes[2], routes[7]} {
		apitest.Expect(t, admDo(t, e, rt.method, rt.path, rt.body, adm.AccessToken), http.StatusOK, "")
	}
}

func TestAdminListUsersShapeAndLimit(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	prefix := "shape" + admHex(5)
	var ids []string
	for i := range 3 {
		email := fmt.Sprintf("%s-%d@example.com", prefix, i)
		u := e.Register(email)
		ids = append(ids, u.ID)
	}

	page := admList(t, e, adm.AccessToken, url.Values{"email": {prefix}})
	if len(page.Users) != 3 || page.NextCursor != nil {
		t.Fatalf("filtered list = %d users, next %v", len(page.Users), page.NextCursor)
	}
	for i, u := range page.Users {
		want := ids[len(ids)-1-i] // newest first
		if u.ID != want || !u.EmailVerified || !slices.Equal(u.Roles, []string{"user"}) || u.Name != "Test" {
			t.Fatalf("user %d = %+v, want id %s", i, u, want)
		}
		if got := admGetUser(t, e, adm.AccessToken, u.ID); got.ID != u.ID || got.Email != u.Email ||
			got.CreatedAt != u.CreatedAt || !slices.Equal(got.Roles, u.Roles) {
			t.Fatalf("list shows %+v, get shows %+v", u, got)
		}
	}

	// limit=1 pages one at a time and says there is more.
	one := admList(t, e, adm.AccessToken, url.Values{"email": {prefix}, "limit": {"1"}})
	if len(one.Users) != 1 || one.Users[0].ID != ids[2] || one.NextCursor == nil {
		t.Fatalf("limit=1: %+v", one)
	}
	// The largest limit is accepted, and so is no limit (default page).
	admList(t, e, adm.AccessToken, url.Values{"limit": {"200"}})
	all := admList(t, e, adm.AccessToken, nil)
	if len(all.Users) == 0 || len(all.Users) > 200 {
		t.Fatalf("default page holds %d users", len(all.Users))
	}
	// An exact address finds exactly that account.
	exact := admList(t, e, adm.AccessToken, url.Values{"email": {prefix + "-1@example.com"}})
	if len(exact.Users) != 1 || exact.Users[0].ID != ids[1] {
		t.Fatalf("exact email filter: %+v", exact.Users)
	}
	// No match: an empty array, not null.
	none := admList(t, e, adm.AccessToken, url.Values{"email": {"nobody-" + admHex(8)}})
	if len(none.Users) != 0 || none.NextCursor != nil {
		t.Fatalf("no match: %+v", none)
	}
}

func TestAdminListUsersPaginationWhileRegistering(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	prefix := "pg" + admHex(6)

	const before, during, limit = 25, 10, 7
	for i := range before {
		email := fmt.Sprintf("%s-a%02d@example.com", prefix, i)
		apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/auth/register",
			map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusAccepted, "")
	}
	existing := admList(t, e, adm.AccessToken, url.Values{"email": {prefix}, "limit": {"200"}})
	if len(existing.Users) != before {
		t.Fatalf("%d users before paging, want %d", len(existing.Users), before)
	}
	pre := map[string]bool{}
	for _, u := range existing.Users {
		pre[u.ID] = true
	}

	// Others register while the admin pages: one signal per new account.
	registered := make(chan string, during)
	errc := make(chan error, 1)
	go func() {
		defer close(registered)
		for i := range during {
			email := fmt.Sprintf("%s-b%02d@example.com", prefix, i)
			r, err := admSend(e.Client, e.URL, http.MethodPost, "/v1/auth/register",
				map[string]string{"email": email, "password": apitest.Password}, "")
			if err == nil && r.Status != http.StatusAccepted {
				err = fmt.Errorf("register %s: %d %s", email, r.Status, r.Body)
			}
			if err != nil {
				errc <- err
				return
			}
			registered <- email
		}
	}()
	awaitRegistrations := func(n int) {
		for range n {
			select {
			case _, ok := <-registered:
				if !ok {
					return
				}
			case <-time.After(30 * time.Second):
				t.Fatal("registrations stalled")
			}
		}
	}

	seen := map[string]int{}
	var order []apitest.User
	q := url.Values{"email": {strings.ToUpper(prefix)}, "limit": {fmt.Sprint(limit)}}
	pages := 0
	for {
		page := admList(t, e, adm.AccessToken, q)
		pages++
		if len(page.Users) > limit {
			t.Fatalf("page %d holds %d users, limit %d", pages, len(page.Users), limit)
		}
		for _, u := range page.Users {
			seen[u.ID]++
			order = append(order, u)
			if !strings.HasPrefix(u.Email, prefix) {
				t.Fatalf("user %s outside the filter", u.Email)
			}
		}
		if page.NextCursor == nil {
			break
		}
		if len(page.Users) != limit {
			t.Fatalf("page %d is short (%d) but has a next cursor", pages, len(page.Users))
		}
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		awaitRegistrations(3) // new accounts appear between every two pages
		q.Set("cursor", *page.NextCursor)
	}
	awaitRegistrations(during)
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}

	for id, n := range seen {
		if n != 1 {
			t.Errorf("user %s appeared %d times", id, n)
		}
	}
	for id := range pre {
		if seen[id] != 1 {
			t.Errorf("user %s, there before paging, appeared %d times", id, seen[id])
		}
	}
	if pages < before/limit+1 {
		t.Errorf("only %d pages for %d users at %d a page", pages, before, limit)
	}
	for i := 1; i < len(order); i++ {
		if !admNewer(t, order[i-1], order[i]) {
			t.Errorf("not newest first at %d: %s (%s) then %s (%s)", i, order[i-1].CreatedAt, order[i-1].ID, order[i].CreatedAt, order[i].ID)
		}
	}

	// Afterwards every account is listed once, the late ones first.
	after := admList(t, e, adm.AccessToken, url.Values{"email": {prefix}, "limit": {"200"}})
	if len(after.Users) != before+during {
		t.Fatalf("%d users after paging, want %d", len(after.Users), before+during)
	}
	for i, u := range after.Users {
		late := strings.Contains(u.Email, prefix+"-b")
		if late != (i < during) {
			t.Fatalf("position %d holds %s: the accounts made during paging must come first", i, u.Email)
		}
	}
}

// Users created in the same microsecond are ordered by id, and a page boundary inside
// such a tie neither repeats nor skips anyone.
func TestAdminListUsersPaginationTies(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	prefix := "tie" + admHex(6)
	const n, limit = 15, 4
	var ids []string
	for i := range n {
		email := fmt.Sprintf("%s-%02d@example.com", prefix, i)
		apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/auth/register",
			map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusAccepted, "")
	}
	// Two groups of equal created_at, each straddling page boundaries.
	admExec(t, e, `UPDATE users SET created_at = CASE WHEN email < ? THEN '2024-05-01T10:00:00.123456Z'::timestamptz
		ELSE '2024-05-01T10:00:00.123457Z'::timestamptz END WHERE email LIKE ?`, prefix+"-07", prefix+"-%")
	admScan(t, e, &ids, "SELECT id::text FROM users WHERE email LIKE ? ORDER BY created_at DESC, id DESC", prefix+"-%")
	if len(ids) != n {
		t.Fatalf("%d users", len(ids))
	}

	var got []string
	q := url.Values{"email": {prefix}, "limit": {fmt.Sprint(limit)}}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		page := admList(t, e, adm.AccessToken, q)
		for _, u := range page.Users {
			got = append(got, u.ID)
		}
		if page.NextCursor == nil {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("paged order\n%v\nwant (created_at, id) descending\n%v", got, ids)
	}
}

// admNewer reports whether a sorts strictly before b newest first: (created_at, id) descending.
func admNewer(t testing.TB, a, b apitest.User) bool {
	t.Helper()
	ta, err1 := time.Parse(time.RFC3339Nano, a.CreatedAt)
	tb, err2 := time.Parse(time.RFC3339Nano, b.CreatedAt)
	if err1 != nil || err2 != nil {
		t.Fatalf("created_at %q %q", a.CreatedAt, b.CreatedAt)
	}
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.ID > b.ID // PostgreSQL orders uuid bytewise, as the lower-case hex does
}

func TestAdminListUsersEmailFilter(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	h := "f" + admHex(5)
	emails := map[string]string{
		"underscore": h + "_x1@example.com",
		"letter":     h + "ax1@example.com",
		"percent":    h + "%y@example.com",
		"other":      h + "zzy@example.com",
	}
	ids := map[string]string{}
	for k, email := range emails {
		ids[k] = e.Register(email).ID
	}
	find := func(filter string) []string {
		t.Helper()
		page := admList(t, e, adm.AccessToken, url.Values{"email": {filter}, "limit": {"200"}})
		var got []string
		for k, id := range ids {
			for _, u := range page.Users {
				if u.ID == id {
					got = append(got, k)
				}
			}
		}
		if len(got) != len(page.Users) {
			t.Fatalf("filter %q listed accounts of other tests: %+v", filter, page.Users)
		}
		sort.Strings(got)
		return got
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{h, []string{"letter", "other", "percent", "underscore"}},
		{strings.ToUpper(h), []string{"letter", "other", "percent", "underscore"}},
		{"  " + strings.ToUpper(h) + "A", []string{"letter"}},
		{h + "_", []string{"underscore"}}, // not "any one character"
		{h + "_X1@EXAMPLE.COM", []string{"underscore"}},
		{h + "%", []string{"percent"}},  // not "anything"
		{h + "%y", []string{"percent"}}, // would match zzy as a wildcard
		{h[1:], nil},                    // a prefix, not a substring
		{"example.com", nil},            // idem
		{h + `\`, nil},                  // no escape character leaks through
		{h + `\%`, nil},
		{h + "x", nil},
	} {
		if got := find(tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("filter %q found %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestAdminListUsersBadParameters(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	goodTime := time.Now().UTC().Format(time.RFC3339Nano)

	for _, c := range []string{
		"!!!",
		"not-base64-%%",
		b64("not json"),
		b64(`{"t":"0001-01-01T00:00:00Z","id":"` + uuid.NewString() + `"}`),
		b64(`{"t":"` + goodTime + `","id":"nope"}`),
		b64(`{"t":"` + goodTime + `"}`),
		b64(`{"id":"` + uuid.NewString() + `"}`),
		b64(`[]`),
		b64(`{"t":"` + goodTime + `","id":"` + uuid.NewString() + `","x":"` + strings.Repeat("a", 300) + `"}`),
		base64.StdEncoding.EncodeToString([]byte(`{"t":"`+goodTime+`","id":"`+uuid.NewString()+`"}`)) + "==",
	} {
		r := admDo(t, e, http.MethodGet, "/v1/admin/users?"+url.Values{"cursor": {c}}.Encode(), nil, adm.AccessToken)
		apitest.Expect(t, r, http.StatusBadRequest, "invalid_cursor")
	}
	// A well-formed cursor is opaque but accepted.
	ok := b64(`{"t":"` + goodTime + `","id":"` + uuid.NewString() + `"}`)
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users?cursor="+ok, nil, adm.AccessToken), http.StatusOK, "")

	for _, l := range []string{"abc", "-1", "201", "1000000", "1.5", "7x", "99999999999999999999", "0"} {
		t.Run("limit="+l, func(t *testing.T) {
			r := admDo(t, e, http.MethodGet, "/v1/admin/users?"+url.Values{"limit": {l}}.Encode(), nil, adm.AccessToken)
			apitest.Expect(t, r, http.StatusBadRequest, "invalid_request")
		})
	}
	for _, l := range []string{"1", "200"} {
		apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users?limit="+l, nil, adm.AccessToken), http.StatusOK, "")
	}
}

func TestAdminGetUser(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	email := apitest.Email("get")
	reg := e.Register(email)

	u := admGetUser(t, e, adm.AccessToken, reg.ID)
	if u.ID != reg.ID || u.Email != email || u.Name != "Test" || !u.EmailVerified || u.MFAEnabled ||
		!slices.Equal(u.Roles, []string{"user"}) || u.CreatedAt != reg.CreatedAt {
		t.Fatalf("admin get = %+v, registered %+v", u, reg)
	}
	self := admGetUser(t, e, adm.AccessToken, adm.User.ID)
	if !slices.Equal(self.Roles, []string{"admin", "user"}) {
		t.Fatalf("admin's own roles = %v", self.Roles)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid", "00000000-0000-0000-0000-000000000000", strings.ToUpper(uuid.NewString()), "%27%20OR%201%3D1--"} {
		apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users/"+id, nil, adm.AccessToken), http.StatusNotFound, "not_found")
	}
	// An upper-case form of an existing id is the same UUID.
	r := admDo(t, e, http.MethodGet, "/v1/admin/users/"+strings.ToUpper(reg.ID), nil, adm.AccessToken)
	if r.Status == http.StatusOK {
		if got := admCheckUserShape(t, r.Body); got.ID != reg.ID {
			t.Fatalf("upper-case id answered %s", got.ID)
		}
	} else {
		apitest.Expect(t, r, http.StatusNotFound, "not_found")
	}
}

func TestAdminSetRoles(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	_, target := e.NewUser(t)
	uid := target.User.ID
	rec := admCreateRole(t, e, adm.AccessToken, "recruiter", "jobs:write")
	aud := admCreateRole(t, e, adm.AccessToken, "auditor", "reports:read")
	path := "/v1/admin/users/" + uid + "/roles"

	// 200 with the user; "user" is always kept; duplicates collapse; sorted.
	u := admSetRoles(t, e, adm.AccessToken, uid, rec, aud, rec)
	want := []string{aud, rec, "user"}
	slices.Sort(want)
	if u.ID != uid || !slices.Equal(u.Roles, want) {
		t.Fatalf("PUT roles answered %+v, want roles %v", u, want)
	}
	if got := admDBRoles(t, e, uid); !slices.Equal(got, want) {
		t.Fatalf("stored roles %v, want %v", got, want)
	}
	if got := admGetUser(t, e, adm.AccessToken, uid); !slices.Equal(got.Roles, want) {
		t.Fatalf("GET after PUT: %v", got.Roles)
	}
	// Replacing drops what is not named; naming "user" is harmless.
	if got := admSetRoles(t, e, adm.AccessToken, uid, "user", rec).Roles; !slices.Equal(got, []string{rec, "user"}) {
		t.Fatalf("replace: %v", got)
	}
	// An empty set leaves "user".
	if got := admSetRoles(t, e, adm.AccessToken, uid).Roles; !slices.Equal(got, []string{"user"}) {
		t.Fatalf("empty set: %v", got)
	}
	admSetRoles(t, e, adm.AccessToken, uid, rec)

	// Errors; none of them changes anything.
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"unknown role", path, map[string]any{"roles": []string{"no-such-role-" + admHex(4)}}, 400, "unknown_role"},
		{"unknown among known", path, map[string]any{"roles": []string{aud, "ghost-" + admHex(4)}}, 400, "unknown_role"},
		{"bad role name", path, map[string]any{"roles": []string{"Not A Role"}}, 400, "unknown_role"},
		{"empty role name", path, map[string]any{"roles": []string{""}}, 400, "unknown_role"},
		{"sql-shaped role", path, map[string]any{"roles": []string{"admin' OR '1'='1"}}, 400, "unknown_role"},
		{"no roles field", path, map[string]any{}, 400, "invalid_request"},
		{"other field only", path, map[string]any{"role": "admin"}, 400, "invalid_request"},
		{"null roles", path, map[string]any{"roles": nil}, 400, "invalid_request"},
		{"no body", path, nil, 400, "invalid_request"},
		{"roles not an array", path, `{"roles":"admin"}`, 400, "invalid_json"},
		{"malformed json", path, `{"roles":[`, 400, "invalid_json"},
		{"unknown user", "/v1/admin/users/" + uuid.NewString() + "/roles", map[string]any{"roles": []string{aud}}, 404, "not_found"},
		{"non-uuid user", "/v1/admin/users/abc/roles", map[string]any{"roles": []string{aud}}, 404, "not_found"},
		{"own roles", "/v1/admin/users/" + adm.User.ID + "/roles", map[string]any{"roles": []string{"admin", aud}}, 403, "forbidden"},
		{"drop own admin", "/v1/admin/users/" + adm.User.ID + "/roles", map[string]any{"roles": []string{}}, 403, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := admDo(t, e, http.MethodPut, tc.path, tc.body, adm.AccessToken)
			apitest.Expect(t, r, tc.status, tc.code)
		})
	}
	if got := admDBRoles(t, e, uid); !slices.Equal(got, []string{rec, "user"}) {
		t.Fatalf("roles after refused requests = %v", got)
	}
	if got := admDBRoles(t, e, adm.User.ID); !slices.Equal(got, []string{"admin", "user"}) {
		t.Fatalf("admin's own roles after refused self-change = %v", got)
	}
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/roles", nil, adm.AccessToken), http.StatusOK, "")

	// An admin may make another user admin; the new admin's same token works at once.
	admSetRoles(t, e, adm.AccessToken, uid, "admin")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/users/"+adm.User.ID, nil, target.AccessToken), http.StatusOK, "")
}

func TestAdminDisableEnable(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	email, s1 := e.NewUser(t)
	uid := s1.User.ID
	s2 := e.Login(email, apitest.Password)
	// A third session whose refresh token was rotated once: both its tokens must die.
	s3 := admPair(t, admRefresh(t, e, e.Login(email, apitest.Password).RefreshToken))
	// A fourth session is not touched while the user is disabled: a refresh of a
	// disabled user's session ends that session on its own, so only an untouched one
	// shows that the disable itself ended them all.
	s4 := e.Login(email, apitest.Password)
	for _, at := range []string{s1.AccessToken, s2.AccessToken, s3.AccessToken, s4.AccessToken} {
		admExpectVerify(t, e, at, "", http.StatusOK)
	}
	admWarm(t, e, s1.AccessToken, uid)

	r := admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/disable", nil, adm.AccessToken)
	apitest.Expect(t, r, http.StatusNoContent, "")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %q", r.Body)
	}

	// Every session ended at once: access tokens everywhere, refresh tokens too.
	for i, s := range []apitest.Pair{s1, s2, s3} {
		apitest.Expect(t, admVerify(t, e, s.AccessToken, ""), http.StatusUnauthorized, "unauthorized")
		apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/users/me", nil, s.AccessToken), http.StatusUnauthorized, "unauthorized")
		apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/users/me/sessions", nil, s.AccessToken), http.StatusUnauthorized, "unauthorized")
		if r := admRefresh(t, e, s.RefreshToken); r.Status != http.StatusUnauthorized {
			t.Fatalf("session %d: refresh after disable = %d %s", i+1, r.Status, r.Body)
		}
	}
	// Login: account_disabled only for the right password.
	apitest.Expect(t, admLogin(t, e, email, apitest.Password), http.StatusForbidden, "account_disabled")
	apitest.Expect(t, admLogin(t, e, email, "wrong password entirely"), http.StatusUnauthorized, "invalid_credentials")
	// Still listed and readable by the admin.
	if got := admGetUser(t, e, adm.AccessToken, uid); got.ID != uid {
		t.Fatalf("disabled user: %+v", got)
	}

	// Disabling twice is fine; the time of the first stays.
	var first time.Time
	admScan(t, e, &first, "SELECT disabled_at FROM users WHERE id = ?", uid)
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/disable", nil, adm.AccessToken), http.StatusNoContent, "")
	var second time.Time
	admScan(t, e, &second, "SELECT disabled_at FROM users WHERE id = ?", uid)
	if !first.Equal(second) {
		t.Fatalf("disabled_at moved from %v to %v", first, second)
	}

	// Enable: login works again; the old sessions stay dead.
	r = admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/enable", nil, adm.AccessToken)
	apitest.Expect(t, r, http.StatusNoContent, "")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %q", r.Body)
	}
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/enable", nil, adm.AccessToken), http.StatusNoContent, "")
	back := admPair(t, admLogin(t, e, email, apitest.Password))
	admExpectVerify(t, e, back.AccessToken, "", http.StatusOK)
	admPair(t, admRefresh(t, e, back.RefreshToken))
	for i, s := range []apitest.Pair{s4, s1, s2, s3} {
		apitest.Expect(t, admVerify(t, e, s.AccessToken, ""), http.StatusUnauthorized, "unauthorized")
		apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/users/me", nil, s.AccessToken), http.StatusUnauthorized, "unauthorized")
		if r := admRefresh(t, e, s.RefreshToken); r.Status != http.StatusUnauthorized {
			t.Fatalf("session %d came back after enable: refresh %d %s", []int{4, 1, 2, 3}[i], r.Status, r.Body)
		}
	}

	// Errors.
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/admin/users/" + adm.User.ID + "/disable", 403, "forbidden"},
		{"/v1/admin/users/" + uuid.NewString() + "/disable", 404, "not_found"},
		{"/v1/admin/users/" + uuid.NewString() + "/enable", 404, "not_found"},
		{"/v1/admin/users/nope/disable", 404, "not_found"},
		{"/v1/admin/users/nope/enable", 404, "not_found"},
	} {
		apitest.Expect(t, admDo(t, e, http.MethodPost, tc.path, nil, adm.AccessToken), tc.status, tc.code)
	}
	// The refused self-disable left the admin working.
	admExpectVerify(t, e, adm.AccessToken, "role=admin", http.StatusOK)
	var disabled bool
	admScan(t, e, &disabled, "SELECT disabled_at IS NOT NULL FROM users WHERE id = ?", adm.User.ID)
	if disabled {
		t.Fatal("the admin disabled itself")
	}
}

func TestAdminRoles(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)

	roles := admListRoles(t, e, adm.AccessToken)
	for _, builtin := range []string{"admin", "user"} {
		if _, ok := roles[builtin]; !ok {
			t.Fatalf("built-in role %s missing: %v", builtin, roles)
		}
	}

	// Create: 201 with the role; permissions deduplicated and sorted.
	name := "recruiter-" + admHex(4)
	r := admDo(t, e, http.MethodPost, "/v1/admin/roles",
		map[string]any{"name": name, "permissions": []string{"jobs:write", "candidates:read", "jobs:write", "jobs:*"}}, adm.AccessToken)
	apitest.Expect(t, r, http.StatusCreated, "")
	created := admCheckRoleShape(t, r.Body)
	wantPerms := []string{"candidates:read", "jobs:*", "jobs:write"}
	if created.Name != name || !slices.Equal(created.Permissions, wantPerms) {
		t.Fatalf("created %+v", created)
	}
	listed, ok := admListRoles(t, e, adm.AccessToken)[name]
	if !ok || !slices.Equal(listed.Permissions, wantPerms) || listed.CreatedAt == "" {
		t.Fatalf("listed %+v", listed)
	}
	ct, _ := time.Parse(time.RFC3339Nano, created.CreatedAt)
	lt, _ := time.Parse(time.RFC3339Nano, listed.CreatedAt)
	if !ct.Equal(lt) {
		t.Fatalf("created_at %s at create, %s in the list", created.CreatedAt, listed.CreatedAt)
	}

	// No permissions: [] (not null), with or without the field.
	for _, body := range []any{
		map[string]any{"name": "bare-" + admHex(4)},
		map[string]any{"name": "bare-" + admHex(4), "permissions": nil},
		map[string]any{"name": "bare-" + admHex(4), "permissions": []string{}},
	} {
		r := admDo(t, e, http.MethodPost, "/v1/admin/roles", body, adm.AccessToken)
		apitest.Expect(t, r, http.StatusCreated, "")
		if got := admCheckRoleShape(t, r.Body); len(got.Permissions) != 0 {
			t.Fatalf("bare role: %+v", got)
		}
	}

	// Errors.
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"duplicate", map[string]any{"name": name, "permissions": []string{"x:y"}}, 409, "role_exists"},
		{"duplicate admin", map[string]any{"name": "admin"}, 409, "role_exists"},
		{"duplicate user", map[string]any{"name": "user", "permissions": []string{"jobs:write"}}, 409, "role_exists"},
		{"empty name", map[string]any{"name": ""}, 400, "invalid_role"},
		{"no name", map[string]any{"permissions": []string{"jobs:read"}}, 400, "invalid_role"},
		{"upper case", map[string]any{"name": "Recruiter"}, 400, "invalid_role"},
		{"space", map[string]any{"name": "two words"}, 400, "invalid_role"},
		{"leading digit", map[string]any{"name": "1role"}, 400, "invalid_role"},
		{"slash", map[string]any{"name": "a/b"}, 400, "invalid_role"},
		{"too long", map[string]any{"name": "r" + strings.Repeat("x", 64)}, 400, "invalid_role"},
		{"sql", map[string]any{"name": "x'; DROP TABLE roles;--"}, 400, "invalid_role"},
		{"bad permission case", map[string]any{"name": "p-" + admHex(4), "permissions": []string{"Jobs:Write"}}, 400, "invalid_permission"},
		{"empty permission", map[string]any{"name": "p-" + admHex(4), "permissions": []string{""}}, 400, "invalid_permission"},
		{"dangling colon", map[string]any{"name": "p-" + admHex(4), "permissions": []string{"jobs:"}}, 400, "invalid_permission"},
		{"too many parts", map[string]any{"name": "p-" + admHex(4), "permissions": []string{"a:b:c:d:e"}}, 400, "invalid_permission"},
		{"space in permission", map[string]any{"name": "p-" + admHex(4), "permissions": []string{"jobs:read", "jobs write"}}, 400, "invalid_permission"},
		{"permissions not an array", `{"name":"p-x","permissions":"jobs:read"}`, 400, "invalid_json"},
		{"malformed", `{"name":`, 400, "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/roles", tc.body, adm.AccessToken), tc.status, tc.code)
		})
	}
	// A refused role left nothing behind, and the duplicate did not change the original.
	after := admListRoles(t, e, adm.AccessToken)
	for n := range after {
		if strings.HasPrefix(n, "p-") {
			t.Fatalf("refused role %s was created", n)
		}
	}
	if !slices.Equal(after[name].Permissions, wantPerms) || len(after["user"].Permissions) != 0 {
		t.Fatalf("a refused duplicate changed a role: %+v %+v", after[name], after["user"])
	}

	// Delete.
	for _, tc := range []struct {
		role   string
		status int
		code   string
	}{
		{"admin", 409, "role_protected"},
		{"user", 409, "role_protected"},
		{"ghost-" + admHex(4), 404, "not_found"},
		{"Not-Valid", 404, "not_found"},
	} {
		apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+tc.role, nil, adm.AccessToken), tc.status, tc.code)
	}
	r = admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+name, nil, adm.AccessToken)
	apitest.Expect(t, r, http.StatusNoContent, "")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %q", r.Body)
	}
	if _, ok := admListRoles(t, e, adm.AccessToken)[name]; ok {
		t.Fatal("deleted role still listed")
	}
	var perms int
	admScan(t, e, &perms, "SELECT count(*) FROM role_permissions WHERE role = ?", name)
	if perms != 0 {
		t.Fatalf("%d permissions of a deleted role remain", perms)
	}
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+name, nil, adm.AccessToken), http.StatusNotFound, "not_found")
	// The name is free again.
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/roles", map[string]any{"name": name}, adm.AccessToken), http.StatusCreated, "")
	// Built-ins survived.
	final := admListRoles(t, e, adm.AccessToken)
	if _, ok := final["admin"]; !ok {
		t.Fatal("admin role gone")
	}
	if _, ok := final["user"]; !ok {
		t.Fatal("user role gone")
	}
}

func TestAdminAuditLog(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	_, target := e.NewUser(t)
	uid := target.User.ID
	actor := adm.User.ID

	const (
		rolesSet = "auth.admin.user_roles_set"
		disabled = "auth.admin.user_disabled"
		enabled  = "auth.admin.user_enabled"
		created  = "auth.admin.role_created"
		deleted  = "auth.admin.role_deleted"
	)
	role := admCreateRole(t, e, adm.AccessToken, "audited", "jobs:read")
	if n := admOutboxCount(t, e, created, actor, "role", role); n != 1 {
		t.Fatalf("%d %s events", n, created)
	}
	var raw []byte
	admScan(t, e, &raw, "SELECT "+admEventFields+" FROM outbox WHERE subject = ? AND "+admEventFields+"->>'role' = ?", created, role)
	var payload struct {
		Permissions    []string `json:"permissions"`
		ActorSessionID string   `json:"actor_session_id"`
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(payload.Permissions, []string{"jobs:read"}) || payload.ActorSessionID == "" {
		t.Fatalf("%s payload %s", created, raw)
	}

	admSetRoles(t, e, adm.AccessToken, uid, role)
	if n := admOutboxCount(t, e, rolesSet, actor, "user_id", uid); n != 1 {
		t.Fatalf("%d %s events", n, rolesSet)
	}
	admScan(t, e, &raw, "SELECT "+admEventFields+"->'roles' FROM outbox WHERE subject = ? AND "+admEventFields+"->>'user_id' = ?", rolesSet, uid)
	var setRoles []string
	if err := json.Unmarshal(raw, &setRoles); err != nil {
		t.Fatal(err)
	}
	if want := []string{role, "user"}; !slices.Equal(setRoles, want) {
		t.Fatalf("%s roles = %v, want %v", rolesSet, setRoles, want)
	}

	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/disable", nil, adm.AccessToken), http.StatusNoContent, "")
	if n := admOutboxCount(t, e, disabled, actor, "user_id", uid); n != 1 {
		t.Fatalf("%d %s events", n, disabled)
	}
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uid+"/enable", nil, adm.AccessToken), http.StatusNoContent, "")
	if n := admOutboxCount(t, e, enabled, actor, "user_id", uid); n != 1 {
		t.Fatalf("%d %s events", n, enabled)
	}
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/"+role, nil, adm.AccessToken), http.StatusNoContent, "")
	if n := admOutboxCount(t, e, deleted, actor, "role", role); n != 1 {
		t.Fatalf("%d %s events", n, deleted)
	}

	// Refused actions record nothing.
	countAll := func() int {
		var n int
		admScan(t, e, &n, "SELECT count(*) FROM outbox WHERE subject LIKE 'auth.admin.%' AND payload->>'actor_id' = ?", actor)
		return n
	}
	before := countAll()
	apitest.Expect(t, admDo(t, e, http.MethodPut, "/v1/admin/users/"+uid+"/roles",
		map[string]any{"roles": []string{"ghost-" + admHex(3)}}, adm.AccessToken), http.StatusBadRequest, "unknown_role")
	apitest.Expect(t, admDo(t, e, http.MethodPut, "/v1/admin/users/"+adm.User.ID+"/roles",
		map[string]any{"roles": []string{}}, adm.AccessToken), http.StatusForbidden, "forbidden")
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/users/"+uuid.NewString()+"/disable", nil, adm.AccessToken), http.StatusNotFound, "not_found")
	apitest.Expect(t, admDo(t, e, http.MethodPost, "/v1/admin/roles", map[string]any{"name": "admin"}, adm.AccessToken), http.StatusConflict, "role_exists")
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/roles/user", nil, adm.AccessToken), http.StatusConflict, "role_protected")
	if after := countAll(); after != before {
		t.Fatalf("refused actions wrote %d audit events", after-before)
	}

}

package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.DropDatabase()
	os.Exit(code)
}

var client = account.Client{IP: "203.0.113.9", UserAgent: "admin-test/1"}

type env struct {
	*apitest.Env
	admin *admin.Service
	// actor is the Principal of a signed-in admin (ADMIN_EMAILS).
	actor account.Principal
}

// start runs the auth service and builds the admin use cases over its PostgreSQL and
// Redis as app.New does.
func start(t *testing.T) *env {
	t.Helper()
	adminEmail := apitest.Email("admin")
	e := apitest.Start(t, map[string]string{"ADMIN_EMAILS": adminEmail})
	cfg := e.Cfg
	sessions := session.New(e.App.Redis, session.WithIdleTTL(cfg.RefreshTokenTTL), session.WithMaxAge(cfg.SessionMaxAge),
		session.WithReuseGrace(cfg.RefreshReuseGrace))
	users := store.NewUsers(e.App.DB, store.NewUserCache(e.App.Redis, e.App.DB, sessions), e.App.EventKeys)
	v := &env{Env: e, admin: admin.NewService(store.NewAdmin(users), sessions)}
	_, pair := v.user(t, adminEmail)
	v.actor = v.authenticate(t, pair.AccessToken)
	if !v.actor.HasRole(admin.RoleAdmin) {
		t.Fatalf("actor %s is no admin: %v", adminEmail, v.actor.User.Roles)
	}
	return v
}

// user registers and verifies email through the use cases and signs it in.
func (e *env) user(t *testing.T, email string) (account.User, account.TokenPair) {
	t.Helper()
	ctx := context.Background()
	res, err := e.App.Accounts.Register(ctx, email, apitest.Password, "Test", client)
	if err != nil || !res.Pending {
		t.Fatalf("register %s: %+v, %v", email, res, err)
	}
	u, err := e.App.Accounts.VerifyEmail(ctx, e.OutboxToken(email, events.SubjectVerificationRequested), client)
	if err != nil {
		t.Fatalf("verify %s: %v", email, err)
	}
	pair, err := e.App.Accounts.Login(ctx, email, apitest.Password, client)
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return u, pair
}

func (e *env) authenticate(t *testing.T, accessToken string) account.Principal {
	t.Helper()
	p, err := e.App.Accounts.Authenticate(context.Background(), accessToken)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

// cached authenticates accessToken, userID's, with the user's entry in the user cache,
// so what the next Authenticate sees comes from the cache unless a write invalidated it.
// It first drops the tombstone the user's last write left (for 5 s after a write
// readers load from PostgreSQL without caching), then checks the read filled the entry.
func (e *env) cached(t *testing.T, userID, accessToken string) account.Principal {
	t.Helper()
	e.ForgetCachedUser(userID)
	p := e.authenticate(t, accessToken)
	key, err := session.UserKey(usercache.Prefix, userID)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := e.App.Redis.Get(context.Background(), key).Result(); err != nil || raw == usercache.Tombstone {
		t.Fatalf("user %s not cached: %q, %v", userID, raw, err)
	}
	return p
}

// newRole creates a role of a name no other test uses, holding perms.
func (e *env) newRole(t *testing.T, perms ...string) admin.Role {
	t.Helper()
	r, err := e.admin.CreateRole(context.Background(), e.actor, "role-"+platformtest.RandomHex(4), perms)
	if err != nil {
		t.Fatalf("create role: %v", err)
	}
	return r
}

func roleNames(t *testing.T, e *env) []string {
	t.Helper()
	roles, err := e.admin.Roles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	return names
}

func ids(users []account.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

// ListUsers pages newest first by a cursor, within an email prefix (matched case
// insensitively), and refuses a cursor it did not make.
func TestListUsersPagesByCursorAndPrefix(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	prefix := "page-" + platformtest.RandomHex(4) + "-"
	var made []string // oldest first
	for _, n := range []string{"a", "b", "c"} {
		res, err := e.App.Accounts.Register(ctx, prefix+n+"@example.com", apitest.Password, "", client)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, res.User.ID)
	}
	newestFirst := []string{made[2], made[1], made[0]}

	p1, err := e.admin.ListUsers(ctx, 2, "", strings.ToUpper(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p1.Users), newestFirst[:2]) || p1.Next == nil {
		t.Fatalf("page 1 = %v, next %v; want %v and a cursor", ids(p1.Users), p1.Next, newestFirst[:2])
	}
	p2, err := e.admin.ListUsers(ctx, 2, admin.EncodeCursor(*p1.Next), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p2.Users), newestFirst[2:]) || p2.Next != nil {
		t.Fatalf("page 2 = %v, next %v; want %v and no cursor", ids(p2.Users), p2.Next, newestFirst[2:])
	}
	// The prefix filters: other tests' (and this one's admin's) users are not listed.
	all, err := e.admin.ListUsers(ctx, 0, "", prefix)
	if err != nil || !slices.Equal(ids(all.Users), newestFirst) || all.Next != nil {
		t.Fatalf("whole prefix = %v, %v; want %v", ids(all.Users), err, newestFirst)
	}
	if none, err := e.admin.ListUsers(ctx, 0, "", prefix+"z"); err != nil || len(none.Users) != 0 {
		t.Fatalf("prefix matching nobody = %v, %v", ids(none.Users), err)
	}

	badID := base64.RawURLEncoding.EncodeToString([]byte(`{"t":"2024-01-01T00:00:00Z","id":"x"}`))
	for _, c := range []string{"not a cursor!", base64.RawURLEncoding.EncodeToString([]byte("{}")), badID} {
		if _, err := e.admin.ListUsers(ctx, 2, c, prefix); !errors.Is(err, admin.ErrInvalidCursor) {
			t.Fatalf("cursor %q = %v, want ErrInvalidCursor", c, err)
		}
	}
	if _, err := e.admin.ListUsers(ctx, 201, "", prefix); !errors.Is(err, admin.ErrInvalidLimit) {
		t.Fatalf("limit 201 = %v, want ErrInvalidLimit", err)
	}
}

// SetRoles refuses an unknown role; a known one replaces the roles (keeping "user"),
// and the user's next Authenticate sees them at once (the user cache is invalidated).
func TestSetRoles(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	target, pair := e.user(t, apitest.Email("target"))
	if got := e.cached(t, target.ID, pair.AccessToken).User.Roles; !slices.Equal(got, []string{"user"}) {
		t.Fatalf("roles before = %v", got)
	}

	if _, err := e.admin.SetRoles(ctx, e.actor, target.ID, []string{"no-such-role-" + platformtest.RandomHex(3)}); !errors.Is(err, admin.ErrUnknownRole) {
		t.Fatalf("unknown role = %v, want ErrUnknownRole", err)
	}
	if _, err := e.admin.SetRoles(ctx, e.actor, target.ID, []string{"Not A Role"}); !errors.Is(err, admin.ErrUnknownRole) {
		t.Fatalf("malformed role = %v, want ErrUnknownRole", err)
	}
	if got := e.authenticate(t, pair.AccessToken).User.Roles; !slices.Equal(got, []string{"user"}) {
		t.Fatalf("roles after refused changes = %v", got)
	}

	role := e.newRole(t, "jobs:write")
	u, err := e.admin.SetRoles(ctx, e.actor, target.ID, []string{role.Name})
	want := []string{role.Name, "user"}
	slices.Sort(want)
	if err != nil || u.ID != target.ID || !slices.Equal(u.Roles, want) {
		t.Fatalf("set roles = %+v, %v; want roles %v", u, err, want)
	}
	p := e.authenticate(t, pair.AccessToken)
	if !slices.Equal(p.User.Roles, want) || !p.HasPermission("jobs:write") {
		t.Fatalf("principal after set roles: roles %v, permissions %v; want %v with jobs:write", p.User.Roles, p.User.Permissions, want)
	}

	// Back to "user" only: the role and its permission are gone at once too.
	e.cached(t, target.ID, pair.AccessToken)
	if _, err := e.admin.SetRoles(ctx, e.actor, target.ID, nil); err != nil {
		t.Fatal(err)
	}
	if p := e.authenticate(t, pair.AccessToken); !slices.Equal(p.User.Roles, []string{"user"}) || p.HasPermission("jobs:write") {
		t.Fatalf("principal after clearing roles: %v %v", p.User.Roles, p.User.Permissions)
	}
	if _, err := e.admin.SetRoles(ctx, e.actor, e.actor.UserID, nil); !errors.Is(err, account.ErrForbidden) {
		t.Fatalf("own roles = %v, want ErrForbidden", err)
	}
}

// Disable ends the user's sessions at once and login answers account disabled;
// Enable lets the user sign in again (the old sessions stay ended).
func TestDisableAndEnable(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	email := apitest.Email("disable")
	target, pair := e.user(t, email)
	e.cached(t, target.ID, pair.AccessToken)

	if err := e.admin.Disable(ctx, e.actor, target.ID); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if _, err := e.App.Accounts.Authenticate(ctx, pair.AccessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("token of a disabled user = %v, want ErrUnauthenticated", err)
	}
	if _, err := e.App.Accounts.Refresh(ctx, pair.RefreshToken, client); !errors.Is(err, account.ErrInvalidRefreshToken) {
		t.Fatalf("refresh of a disabled user = %v, want ErrInvalidRefreshToken", err)
	}
	if _, err := e.App.Accounts.Login(ctx, email, apitest.Password, client); !errors.Is(err, account.ErrAccountDisabled) {
		t.Fatalf("login of a disabled user = %v, want ErrAccountDisabled", err)
	}
	if u, err := e.admin.User(ctx, target.ID); err != nil || u.DisabledAt == nil {
		t.Fatalf("disabled user = %+v, %v", u, err)
	}
	if err := e.admin.Disable(ctx, e.actor, e.actor.UserID); !errors.Is(err, account.ErrForbidden) {
		t.Fatalf("disable self = %v, want ErrForbidden", err)
	}

	if err := e.admin.Enable(ctx, e.actor, target.ID); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if u, err := e.admin.User(ctx, target.ID); err != nil || u.DisabledAt != nil {
		t.Fatalf("enabled user = %+v, %v", u, err)
	}
	again, err := e.App.Accounts.Login(ctx, email, apitest.Password, client)
	if err != nil {
		t.Fatalf("login after enable: %v", err)
	}
	if p := e.authenticate(t, again.AccessToken); p.UserID != target.ID {
		t.Fatalf("principal after enable = %+v", p)
	}
	if _, err := e.App.Accounts.Authenticate(ctx, pair.AccessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("session ended by disable came back: %v", err)
	}
}

// CreateRole checks names and permissions and refuses a duplicate; DeleteRole refuses
// the built-in roles and takes a deleted role from its holders at once.
func TestCreateAndDeleteRole(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	name := "editor-" + platformtest.RandomHex(4)
	r, err := e.admin.CreateRole(ctx, e.actor, name, []string{"jobs:write", "jobs:read", "jobs:write"})
	if err != nil || r.Name != name || !slices.Equal(r.Permissions, []string{"jobs:read", "jobs:write"}) || r.CreatedAt.IsZero() {
		t.Fatalf("create role = %+v, %v", r, err)
	}
	if !slices.Contains(roleNames(t, e), name) {
		t.Fatalf("roles %v lack %s", roleNames(t, e), name)
	}
	if _, err := e.admin.CreateRole(ctx, e.actor, name, nil); !errors.Is(err, admin.ErrRoleExists) {
		t.Fatalf("duplicate role = %v, want ErrRoleExists", err)
	}
	for _, bad := range []string{"", "Editor", "1st", "has space", "a/b", strings.Repeat("a", 65)} {
		if _, err := e.admin.CreateRole(ctx, e.actor, bad, nil); !errors.Is(err, admin.ErrInvalidRole) {
			t.Fatalf("CreateRole(%q) = %v, want ErrInvalidRole", bad, err)
		}
	}
	if _, err := e.admin.CreateRole(ctx, e.actor, name+"-x", []string{"Jobs Write"}); !errors.Is(err, admin.ErrInvalidPermission) {
		t.Fatalf("bad permission = %v, want ErrInvalidPermission", err)
	}
	if slices.Contains(roleNames(t, e), name+"-x") {
		t.Fatal("a refused role was created")
	}

	for _, builtIn := range []string{admin.RoleAdmin, admin.RoleUser} {
		if err := e.admin.DeleteRole(ctx, e.actor, builtIn); !errors.Is(err, admin.ErrRoleProtected) {
			t.Fatalf("delete %s = %v, want ErrRoleProtected", builtIn, err)
		}
	}
	if names := roleNames(t, e); !slices.Contains(names, admin.RoleAdmin) || !slices.Contains(names, admin.RoleUser) {
		t.Fatalf("built-in roles gone: %v", names)
	}

	holder, pair := e.user(t, apitest.Email("holder"))
	if _, err := e.admin.SetRoles(ctx, e.actor, holder.ID, []string{name}); err != nil {
		t.Fatal(err)
	}
	if p := e.cached(t, holder.ID, pair.AccessToken); !p.HasRole(name) {
		t.Fatalf("holder's roles = %v", p.User.Roles)
	}
	if err := e.admin.DeleteRole(ctx, e.actor, name); err != nil {
		t.Fatalf("delete role: %v", err)
	}
	if slices.Contains(roleNames(t, e), name) {
		t.Fatalf("deleted role %s still listed", name)
	}
	if p := e.authenticate(t, pair.AccessToken); p.HasRole(name) || p.HasPermission("jobs:read") {
		t.Fatalf("holder still has the deleted role: %v %v", p.User.Roles, p.User.Permissions)
	}
	if err := e.admin.DeleteRole(ctx, e.actor, name); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("delete twice = %v, want ErrNotFound", err)
	}
	if err := e.admin.DeleteRole(ctx, e.actor, "Not A Role"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("delete a malformed name = %v, want ErrNotFound", err)
	}
}

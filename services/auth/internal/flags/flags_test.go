package flags_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/redistest"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// The flags against the machine's Redis and PostgreSQL: every test has a hash of its
// own (a random key), so tests run in parallel with each other and with any stack.

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.DropDatabase()
	os.Exit(code)
}

func TestParse(t *testing.T) {
	t.Parallel()
	all := flags.Defaults()
	for _, name := range flags.Names() {
		if !all[name] {
			t.Errorf("flag %s is off by default; the contract has every flow working", name)
		}
	}
	good := map[string]map[string]bool{
		"":                                     all,
		"passkeys=off,otp_login=on":            {"passkeys": false, "otp_login": true, "phone": true},
		" passkeys = OFF , phone=False ,":      {"passkeys": false, "otp_login": true, "phone": false},
		"otp_login=true,phone=on":              {"passkeys": true, "otp_login": true, "phone": true},
		"otp_login=off,passkeys=off,phone=off": {"passkeys": false, "otp_login": false, "phone": false},
	}
	for raw, want := range good {
		got, err := flags.Parse(raw)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for raw, says := range map[string]string{
		"nope=on":                  `unknown flag "nope"`,
		"passkeys=maybe":           `"maybe" is not on, off, true or false`,
		"passkeys":                 `"passkeys" is not name=on|off`,
		"passkeys=":                `"" is not on, off, true or false`,
		"passkeys=on,passkeys=off": "given twice",
		"Passkeys=on":              `unknown flag "Passkeys"`,
		"=on":                      `unknown flag ""`,
	} {
		_, err := flags.Parse(raw)
		if err == nil || !strings.HasPrefix(err.Error(), "FEATURE_FLAGS: ") || !strings.Contains(err.Error(), says) {
			t.Errorf("Parse(%q) = %v; want an error naming FEATURE_FLAGS that says %s", raw, err, says)
		}
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	if got := flags.Key(""); got != "flags:v1" {
		t.Errorf("Key() = %q", got)
	}
	if got := flags.Key("t0abc"); got != "flags:v1:t0abc" {
		t.Errorf("Key(t0abc) = %q", got)
	}
}

// testKey is a hash of the test's own, deleted when it ends.
func testKey(t *testing.T) string {
	t.Helper()
	key := flags.Key("test-" + platformtest.RandomHex(6))
	rdb := redistest.Client(t)
	t.Cleanup(func() { _ = rdb.Del(context.Background(), key).Err() })
	return key
}

func testDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(apitest.Database(t), nil, postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newFlags(t *testing.T, o flags.Options) *flags.Flags {
	t.Helper()
	f, err := flags.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestNewRefusesABadStartup: the service cannot start on a FEATURE_FLAGS it cannot read.
func TestNewRefusesABadStartup(t *testing.T) {
	t.Parallel()
	_, err := flags.New(context.Background(), flags.Options{Redis: redistest.Client(t), Startup: "passkeys=sometimes"})
	if err == nil || !strings.Contains(err.Error(), "FEATURE_FLAGS") {
		t.Fatalf("New = %v", err)
	}
}

// TestStartupThenRuntime: the start-up values are in force until the hash says
// otherwise; a value the hash holds wins over FEATURE_FLAGS; fields the service does
// not know, or cannot read, are ignored.
func TestStartupThenRuntime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, rdb := testKey(t), redistest.Client(t)
	f := newFlags(t, flags.Options{Redis: rdb, Key: key, Startup: "passkeys=off"})
	if f.Enabled(ctx, flags.Passkeys) || !f.Enabled(ctx, flags.OTPLogin) || !f.Enabled(ctx, flags.Phone) {
		t.Fatalf("start-up values: %+v", f.List(ctx))
	}
	if f.Enabled(ctx, "no-such-flag") {
		t.Fatal("an unknown flag is on")
	}
	var off *flags.DisabledError
	if err := f.Check(ctx, flags.Passkeys); !errors.As(err, &off) || off.Flag != flags.Passkeys || !errors.Is(err, flags.ErrDisabled) {
		t.Fatalf("Check(passkeys) = %v", err)
	}
	if err := f.Check(ctx, flags.Phone); err != nil {
		t.Fatalf("Check(phone) = %v", err)
	}
	if err := rdb.HSet(ctx, key, "passkeys", "on", "phone", "off", "retired", "off", "otp_login", "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := []flags.Flag{
		{Name: "otp_login", Enabled: true}, {Name: "passkeys", Enabled: true}, {Name: "phone", Enabled: false},
	}
	got := f.List(ctx)
	if len(got) != len(want) {
		t.Fatalf("List = %+v", got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Enabled != want[i].Enabled || got[i].Description == "" {
			t.Fatalf("List = %+v; want %+v (with descriptions)", got, want)
		}
	}
	// A fresh replica reads the hash at start.
	g := newFlags(t, flags.Options{Redis: rdb, Key: key, Startup: "passkeys=off"})
	if !g.Enabled(ctx, flags.Passkeys) || g.Enabled(ctx, flags.Phone) {
		t.Fatalf("a new replica: %+v", g.List(ctx))
	}
}

// TestProvider: our OpenFeature provider answers booleans from memory, with a type
// mismatch for any other type of a known flag and flag-not-found for other names, as
// the SDK expects.
func TestProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFlags(t, flags.Options{Redis: redistest.Client(t), Key: testKey(t), Startup: "phone=off"})
	p := f.Provider()
	if p.Metadata().Name != flags.ProviderName {
		t.Fatalf("provider %q", p.Metadata().Name)
	}
	if r := p.BooleanEvaluation(ctx, flags.Phone, true, nil); r.Value || r.Error() != nil || r.Variant != "off" {
		t.Fatalf("boolean phone: %+v", r)
	}
	if r := p.BooleanEvaluation(ctx, flags.Passkeys, false, nil); !r.Value || r.Error() != nil || r.Variant != "on" {
		t.Fatalf("boolean passkeys: %+v", r)
	}
	if r := p.BooleanEvaluation(ctx, "nope", true, nil); !r.Value || r.ResolutionDetail().ErrorCode != openfeature.FlagNotFoundCode {
		t.Fatalf("boolean nope: %+v", r)
	}
	known := []openfeature.ProviderResolutionDetail{
		p.StringEvaluation(ctx, flags.Phone, "x", nil).ProviderResolutionDetail,
		p.IntEvaluation(ctx, flags.Phone, 1, nil).ProviderResolutionDetail,
		p.FloatEvaluation(ctx, flags.Phone, 1, nil).ProviderResolutionDetail,
		p.ObjectEvaluation(ctx, flags.Phone, nil, nil).ProviderResolutionDetail,
	}
	for i, r := range known {
		if r.ResolutionDetail().ErrorCode != openfeature.TypeMismatchCode {
			t.Errorf("non-boolean evaluation %d of a known flag: %+v", i, r)
		}
	}
	if r := p.StringEvaluation(ctx, "nope", "x", nil); r.Value != "x" || r.ResolutionDetail().ErrorCode != openfeature.FlagNotFoundCode {
		t.Errorf("string nope: %+v", r)
	}
}

// TestReplicas: a change on one replica is seen there at once and by another replica
// on the same hash through its refresh loop; each change is an audit event
// in the outbox.
func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, db := testKey(t), testDB(t)
	a := newFlags(t, flags.Options{Redis: redistest.Client(t), DB: db, Key: key})
	b := newFlags(t, flags.Options{Redis: redistest.Client(t), DB: db, Key: key, Interval: 100 * time.Millisecond})
	stopA, stopB := a.Start(ctx), b.Start(ctx)
	t.Cleanup(func() { _ = stopA(); _ = stopB() })

	actor := events.Actor{ActorID: "admin-" + platformtest.RandomHex(6), ActorSessionID: "session-" + platformtest.RandomHex(6)}
	fl, err := a.Set(ctx, actor, flags.OTPLogin, false)
	if err != nil || fl.Name != flags.OTPLogin || fl.Enabled || fl.Description == "" {
		t.Fatalf("Set = %+v, %v", fl, err)
	}
	if a.Enabled(ctx, flags.OTPLogin) {
		t.Fatal("the replica that switched the flag off does not see it at once")
	}
	waitFor(t, func() bool { return !b.Enabled(ctx, flags.OTPLogin) }, "the other replica to see otp_login off")
	if _, err := b.Set(ctx, actor, flags.OTPLogin, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Enabled(ctx, flags.OTPLogin) }, "the first replica to see otp_login on again")

	if _, err := a.Set(ctx, actor, "nope", true); !errors.Is(err, flags.ErrUnknownFlag) {
		t.Fatalf("Set(nope) = %v", err)
	}
	var rows []struct {
		Enabled bool   `bun:"enabled"`
		Session string `bun:"session"`
		ActorID string `bun:"actor"`
	}
	err = db.NewRaw(`SELECT (payload->'payload'->>'enabled')::bool AS enabled, payload->'payload'->>'actor_session_id' AS session,
		payload->>'actor_id' AS actor FROM outbox WHERE subject = ? AND payload->'payload'->>'actor_id' = ?
		AND payload->'payload'->>'flag' = ? ORDER BY id`, events.SubjectFlagChanged, actor.ActorID, flags.OTPLogin).Scan(ctx, &rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Enabled || !rows[1].Enabled || rows[0].Session != actor.ActorSessionID || rows[0].ActorID != actor.ActorID {
		t.Fatalf("audit events: %+v", rows)
	}
}

// TestRedisDown: without Redis a refresh keeps the last values read (logged once per
// outage), and a change is refused with nothing written: no value, no audit event.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, db := testKey(t), testDB(t)
	if err := redistest.Client(t).HSet(ctx, key, "phone", "off").Err(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	rdb := redis.NewClient(redistest.Options(t))
	f := newFlags(t, flags.Options{Redis: rdb, DB: db, Key: key, Logger: zap.New(core)})
	if f.Enabled(ctx, flags.Phone) {
		t.Fatal("the hash's value was not read at start")
	}
	_ = rdb.Close() // Redis is gone for this replica
	for range 3 {
		if err := f.Refresh(ctx); !errors.Is(err, accounts.ErrUnavailable) {
			t.Fatalf("Refresh without Redis = %v", err)
		}
	}
	if f.Enabled(ctx, flags.Phone) || !f.Enabled(ctx, flags.Passkeys) {
		t.Fatalf("the last known values were not kept: %+v", f.List(ctx))
	}
	if n := logs.FilterMessageSnippet("cannot read Redis").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times", n)
	}

	actor := events.Actor{ActorID: "admin-" + platformtest.RandomHex(6), ActorSessionID: "s"}
	if _, err := f.Set(ctx, actor, flags.Phone, true); !errors.Is(err, accounts.ErrUnavailable) {
		t.Fatalf("Set without Redis = %v", err)
	}
	if f.Enabled(ctx, flags.Phone) {
		t.Fatal("a refused change is in force")
	}
	n, err := db.NewSelect().Table("outbox").Where("subject = ? AND payload->'payload'->>'actor_id' = ?",
		events.SubjectFlagChanged, actor.ActorID).Count(ctx)
	if err != nil || n != 0 {
		t.Fatalf("a refused change left %d audit events (%v)", n, err)
	}
	if v, err := redistest.Client(t).HGet(ctx, key, "phone").Result(); err != nil || v != "off" {
		t.Fatalf("the hash says phone=%q (%v)", v, err)
	}
}

// waitFor polls cond. Replicas refresh every second (the contract: seen within 5 s);
// the 15 s bound only ends a broken test, it measures nothing.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

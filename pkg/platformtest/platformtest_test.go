package platformtest_test

import (
	"context"
	"github.com/talentforge/auth/pkg/keyring"
	"slices"
	"testing"

	"github.com/talentforge/auth/pkg/platformtest"
)

// The test's env wins over the options, which win over the defaults, which win over
// REDIS_URL and NATS_URL from the environment.
func TestSettingsPrecedence(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://from-env:6379/0")
	t.Setenv("NATS_URL", "nats://from-env:4222")
	set := func(k, v string) platformtest.Option {
		return func(_ testing.TB, vars platformtest.Env, _ map[string]string) { vars[k] = v }
	}
	vars := platformtest.Settings(t, map[string]string{"NATS_URL": "nats://default:4222", "A": "default", "B": "default"},
		map[string]string{"B": "test"}, set("A", "option"), set("B", "option"))
	for k, want := range map[string]string{"REDIS_URL": "redis://from-env:6379/0", "NATS_URL": "nats://default:4222",
		"A": "option", "B": "test"} {
		if got, _ := vars.Lookup(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// A test on the machine's NATS gets a namespace of its own; one that names its own
// NATS gets none.
func TestWithNamespace(t *testing.T) {
	shared := platformtest.Settings(t, nil, nil, platformtest.WithNamespace())
	if shared["NATS_NAMESPACE"] == "" {
		t.Error("no NATS_NAMESPACE on the shared NATS")
	}
	own := platformtest.Settings(t, nil, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, platformtest.WithNamespace())
	if _, ok := own["NATS_NAMESPACE"]; ok || !platformtest.OwnNATS(own) {
		t.Errorf("settings on a NATS of the test's own: %v", own)
	}
}

func TestKeySpecAndConfig(t *testing.T) {
	spec := platformtest.KeySpec("k1")
	if _, err := keyring.Parse(spec); err != nil {
		t.Fatalf("KeySpec %q: %v", spec, err)
	}
	if platformtest.KeySpec("k1") == spec {
		t.Error("two KeySpecs share a key")
	}
	cfg := platformtest.Settings(t, map[string]string{"EVENT_KEYS": spec}, nil).Config(t)
	if _, err := cfg.EventKeyring(); err != nil {
		t.Fatal(err)
	}
}

// Stop waits for serve, runs the closers in order, once, however often it is called.
func TestServeStopsOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran []string
	closer := func(name string) func() error { return func() error { ran = append(ran, name); return nil } }
	stop := platformtest.Serve(t, "test", cancel, func() error { <-ctx.Done(); return ctx.Err() },
		closer("a"), closer("b"))
	stop()
	stop()
	if !slices.Equal(ran, []string{"a", "b"}) {
		t.Fatalf("closers ran as %v", ran)
	}
}

// A database of the test's own is migrated and dropped when the test ends.
func TestOwnDatabase(t *testing.T) {
	dbs := platformtest.NewDatabases("platformtest_test_")
	defer dbs.Drop()
	if dbs.Own(t) == dbs.Shared(t) {
		t.Fatal("a test's own database is the shared one")
	}
}

package app_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/app"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// The service refuses to start on a FEATURE_FLAGS it cannot read, and starts with the
// values of one it can, its flags in the hash of its NATS_NAMESPACE.
func TestFeatureFlagsAtStart(t *testing.T) {
	t.Parallel()
	settings := func(raw string) platformtest.Env {
		return platformtest.Settings(t, map[string]string{
			"DATABASE_URL":        apitest.Database(t),
			"JWT_KEYS_DIR":        t.TempDir(),
			"PUBLIC_URL":          "http://auth.test",
			"LOG_LEVEL":           "error",
			"EVENT_KEYS":          platformtest.KeySpec("test"),
			"MFA_ENCRYPTION_KEYS": platformtest.KeySpec("test"),
			"FEATURE_FLAGS":       raw,
		}, nil, platformtest.WithNamespace())
	}
	for _, raw := range []string{"passkeys=maybe", "sms=off", "passkeys"} {
		a, err := app.New(context.Background(), settings(raw).Config(t), zap.NewNop(), app.WithoutRelay())
		if err == nil {
			_ = a.Close()
			t.Fatalf("FEATURE_FLAGS=%s: the service started", raw)
		}
		if !strings.Contains(err.Error(), "FEATURE_FLAGS") {
			t.Fatalf("FEATURE_FLAGS=%s: %v does not name FEATURE_FLAGS", raw, err)
		}
	}

	env := settings("phone=off")
	cfg := env.Config(t)
	a, err := app.New(context.Background(), cfg, zap.NewNop(), app.WithoutRelay(), app.WithoutEmailProcessor())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	ctx := context.Background()
	if a.Flags.Enabled(ctx, flags.Phone) || !a.Flags.Enabled(ctx, flags.Passkeys) || !a.Flags.Enabled(ctx, flags.OTPLogin) {
		t.Fatalf("flags at start: %+v", a.Flags.List(ctx))
	}
	if want := flags.Key(env["NATS_NAMESPACE"]); a.Flags.Key() != want || want == flags.KeyPrefix {
		t.Fatalf("flags key %q, want %q", a.Flags.Key(), want)
	}
}

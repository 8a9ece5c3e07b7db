package platform_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/platform"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/postgres"
)

var databases = platformtest.NewDatabases("platform_test_")

func TestMain(m *testing.M) {
	code := m.Run()
	databases.Drop()
	os.Exit(code)
}

func load(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	return platformtest.Settings(t, map[string]string{
		"DATABASE_URL":        databases.Shared(t),
		"JWT_KEYS_DIR":        t.TempDir(),
		"EVENT_KEYS":          platformtest.KeySpec("test"),
		"MFA_ENCRYPTION_KEYS": platformtest.KeySpec("mfa"),
	}, env, platformtest.WithNamespace()).Config(t)
}

// Every part asked for is opened and ready; Close runs the closers newest first (the
// service's own before the platform's), joins their errors, and runs them once.
func TestOpenEveryPart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := platform.Open(ctx, load(t, nil), zap.NewNop(), "test",
		platform.WithEventKeys(), platform.WithMFAKeys(),
		platform.WithDB(postgres.Options{MaxOpenConns: 2}),
		platform.WithRedis(4, 1),
		platform.WithNATS(),
		platform.WithRelay(true),
		platform.WithSigningKeys(platform.SigningKeys{Generate: true, PublishDelay: time.Minute}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if p.Metrics == nil || p.EventKeys == nil || p.MFAKeys == nil || p.DB == nil || p.Redis == nil ||
		p.NATS == nil || p.JS == nil || p.Relay == nil || p.Keys == nil {
		t.Fatalf("a part is missing: %+v", p)
	}
	if kid, _ := p.Keys.Signing(); kid == "" {
		t.Error("no signing key was generated")
	}
	platformtest.PingNATS(t, p.NATS)
	// The relay reaches JetStream (it ensures the stream) within a few attempts.
	deadline := time.Now().Add(20 * time.Second)
	for err := p.Ready(ctx); err != nil; err = p.Ready(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("Ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(p.ReadyChecks()); n != 3 {
		t.Errorf("%d ready checks, want postgres, redis and nats", n)
	}

	var order []string
	boom := errors.New("boom")
	p.OnClose(func() error { order = append(order, "first"); return boom })
	p.OnClose(func() error { order = append(order, "second"); return nil })
	if err := p.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want it to carry boom", err)
	}
	if !slices.Equal(order, []string{"second", "first"}) {
		t.Errorf("closers ran as %v, want newest first", order)
	}
	if err := p.DB.Ping(context.Background()); err == nil {
		t.Error("PostgreSQL is still open after Close")
	}
	if !p.NATS.IsClosed() {
		t.Error("NATS is still open after Close")
	}
	if err := p.Close(); err != nil || len(order) != 2 {
		t.Errorf("second Close = %v and ran %v", err, order)
	}
	var none *platform.Platform
	if err := none.Close(); err != nil {
		t.Errorf("Close of a nil platform = %v", err)
	}
}

// Only what is asked for is opened; without a relay the nats check is the connection.
func TestOpenOnlyWhatIsAsked(t *testing.T) {
	ns := natstest.Run(t)
	p, err := platform.Open(context.Background(), load(t, map[string]string{"NATS_URL": ns.URL(), "EVENT_KEYS": ""}),
		zap.NewNop(), "test", platform.WithDB(postgres.Options{MaxOpenConns: 2}), platform.WithNATS())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.EventKeys != nil || p.MFAKeys != nil || p.Redis != nil || p.Relay != nil || p.Keys != nil {
		t.Fatalf("a part was opened unasked: %+v", p)
	}
	platformtest.PingNATS(t, p.NATS)
	if err := p.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if n := len(p.ReadyChecks()); n != 2 {
		t.Errorf("%d ready checks, want postgres and nats", n)
	}
	ns.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.Ready(context.Background())
		if err != nil && strings.HasPrefix(err.Error(), "nats: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready with NATS down = %v, want a nats error", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A setting at fault stops Open with an error naming it; what was opened is closed.
func TestOpenErrorsNameTheSetting(t *testing.T) {
	for name, c := range map[string]struct {
		env    map[string]string
		opts   []platform.Option
		prefix string
		suffix string
	}{
		"no event keys": {env: map[string]string{"EVENT_KEYS": ""},
			opts: []platform.Option{platform.WithEventKeys()}, prefix: "EVENT_KEYS: "},
		"no MFA keys": {env: map[string]string{"MFA_ENCRYPTION_KEYS": ""},
			opts: []platform.Option{platform.WithEventKeys(), platform.WithMFAKeys()}, prefix: "MFA_ENCRYPTION_KEYS: "},
		"no signing keys": {
			opts: []platform.Option{platform.WithDB(postgres.Options{}),
				platform.WithSigningKeys(platform.SigningKeys{PublishDelay: time.Minute, Hint: "start auth first"})},
			prefix: "JWT_KEYS_DIR: ", suffix: " (start auth first)"},
		"relay without NATS": {opts: []platform.Option{platform.WithDB(postgres.Options{}), platform.WithRelay(false)},
			prefix: "platform: "},
	} {
		_, err := platform.Open(context.Background(), load(t, c.env), zap.NewNop(), "test", c.opts...)
		if err == nil || !strings.HasPrefix(err.Error(), c.prefix) || !strings.HasSuffix(err.Error(), c.suffix) {
			t.Errorf("%s: error %v, want %q...%q", name, err, c.prefix, c.suffix)
		}
	}
}

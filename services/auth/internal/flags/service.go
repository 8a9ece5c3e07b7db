package flags

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/postgres"
)

// KeyPrefix is the Redis hash of the runtime values (field: flag name, value: "on" or
// "off"); Key adds the deployment's NATS_NAMESPACE, if any.
const KeyPrefix = "flags:v1"

// RefreshInterval is how often every replica re-reads the hash: a change made on one
// replica is seen by the others within about this long (the contract: 5 s).
const RefreshInterval = time.Second

// redisTimeout bounds one Redis round trip of a refresh or a change.
const redisTimeout = 2 * time.Second

// Key is the hash of a deployment: KeyPrefix, or KeyPrefix + ":" + namespace when it
// has a NATS_NAMESPACE (deployments, and tests, that share one Redis each keep flags
// of their own, as they keep streams of their own on one NATS).
func Key(namespace string) string {
	if namespace == "" {
		return KeyPrefix
	}
	return KeyPrefix + ":" + namespace
}

// Options are what New needs.
type Options struct {
	// Redis holds the runtime values (required).
	Redis redis.UniversalClient
	// DB is where Set writes its audit event, through the outbox (required for Set).
	DB *postgres.DB
	// EventKeys seal event tokens (EVENT_KEYS); FlagChanged carries none.
	EventKeys *keyring.Keyring
	// Startup is FEATURE_FLAGS as given (Parse).
	Startup string
	// Key is the Redis hash (default KeyPrefix; see Key).
	Key string
	// Interval is the refresh interval (default RefreshInterval).
	Interval time.Duration
	// Logger logs the refresh's outages (default: none).
	Logger *zap.Logger
}

// Flags are the service's feature flags: see the package documentation.
type Flags struct {
	rdb      redis.UniversalClient
	db       *postgres.DB
	keys     *keyring.Keyring
	key      string
	interval time.Duration
	log      *zap.Logger
	startup  map[string]bool

	// values are the flags in force, read by the provider without a lock; they are
	// only ever replaced whole.
	values atomic.Pointer[map[string]bool]
	// mu orders the writers of values: a refresh that read Redis before a Set of this
	// replica stored its change does not store its older read over it (gen).
	mu   sync.Mutex
	gen  uint64
	down bool // the last refresh failed: the outage is logged once

	provider *provider
	api      *openfeature.EvaluationAPI
	client   *openfeature.Client
}

// New parses the start-up values (an error names FEATURE_FLAGS), sets our provider on
// an OpenFeature API instance of its own, and reads the runtime values once (Redis
// down: the start-up values, logged; the refresh loop of Start catches up).
func New(ctx context.Context, o Options) (*Flags, error) {
	startup, err := Parse(o.Startup)
	if err != nil {
		return nil, err
	}
	if o.Redis == nil {
		return nil, errors.New("flags: no Redis")
	}
	f := &Flags{rdb: o.Redis, db: o.DB, keys: o.EventKeys, key: o.Key, interval: o.Interval, log: o.Logger, startup: startup}
	if f.key == "" {
		f.key = KeyPrefix
	}
	if f.interval <= 0 {
		f.interval = RefreshInterval
	}
	if f.log == nil {
		f.log = zap.NewNop()
	}
	f.values.Store(&startup)
	// An API instance per Flags, not the SDK's global singleton: every app of a process
	// has its own provider.
	f.provider = &provider{f: f}
	f.api = isolated.NewAPI()
	if err := f.api.SetProviderAndWait(ctx, f.provider); err != nil {
		_ = f.api.Shutdown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("flags: set the OpenFeature provider: %w", err)
	}
	f.client = f.api.NewClient()
	_ = f.Refresh(ctx)
	return f, nil
}

// Provider is the OpenFeature provider the flags evaluate through (bound to their own
// OpenFeature API instance).
func (f *Flags) Provider() openfeature.FeatureProvider { return f.provider }

// Key is the Redis hash these flags read and write.
func (f *Flags) Key() string { return f.key }

// Enabled evaluates a flag through OpenFeature: an in-memory read. An unknown name is
// off.
func (f *Flags) Enabled(ctx context.Context, name string) bool {
	d, ok := lookup(name)
	return f.client.Boolean(ctx, name, ok && d.def, openfeature.EvaluationContext{})
}

// Check is nil when the flag is on, else a *DisabledError naming it.
func (f *Flags) Check(ctx context.Context, name string) error {
	if f.Enabled(ctx, name) {
		return nil
	}
	return &DisabledError{Flag: name}
}

// List is every known flag, sorted by name.
func (f *Flags) List(ctx context.Context) []Flag {
	out := make([]Flag, len(known))
	for i, d := range known {
		out[i] = Flag{Name: d.name, Enabled: f.Enabled(ctx, d.name), Description: d.description}
	}
	return out
}

// Refresh re-reads the runtime values from Redis. When Redis cannot be read the values
// in force stay (the first failure of an outage is logged, and its end).
func (f *Flags) Refresh(ctx context.Context) error {
	f.mu.Lock()
	gen := f.gen
	f.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	stored, err := f.rdb.HGetAll(rctx, f.key).Result()
	cancel()

	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if !f.down {
			f.down = true
			f.log.Warn("feature flags: cannot read Redis; keeping the last known values", zap.String("key", f.key), zap.Error(err))
		}
		return fmt.Errorf("%w: read feature flags: %w", accounts.ErrUnavailable, err)
	}
	if f.down {
		f.down = false
		f.log.Info("feature flags: Redis answers again", zap.String("key", f.key))
	}
	if f.gen != gen {
		return nil // a Set of this replica stored a newer value meanwhile; the next refresh reads it
	}
	vals := maps.Clone(f.startup)
	for name, raw := range stored {
		if _, ok := lookup(name); !ok {
			continue // a flag this version no longer knows
		}
		if on, ok := parseValue(raw); ok {
			vals[name] = on
		}
	}
	f.values.Store(&vals)
	return nil
}

// Start refreshes every interval until ctx ends or stop is called; stop also shuts the
// OpenFeature API instance down (evaluations then answer the defaults).
func (f *Flags) Start(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(f.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = f.Refresh(ctx)
			}
		}
	}()
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			cancel()
			<-done
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			err = f.api.Shutdown(sctx)
		})
		return err
	}
}

// setScript sets a flag's field and returns the value it had (nil: none).
var setScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old`)

// restoreScript puts back a field's previous value (ARGV[3], "" for none), unless a
// later change replaced the value set (ARGV[2]) meanwhile.
var restoreScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1`)

// Set switches a flag for every replica, as actor (an admin), and answers the flag as
// it now stands; this replica sees the change at once, the others at their next
// refresh. The change is audited with a FlagChanged event (events.SubjectFlagChanged)
// written through the outbox, made as atomic as two stores allow:
//
//  1. in one PostgreSQL transaction the event goes into the outbox;
//  2. still inside it, Redis is written; a Redis failure rolls the event back (503,
//     nothing changed);
//  3. the transaction commits; a commit that fails puts the previous Redis value back
//     (unless another change came since) and answers the error.
//
// The window that remains: between steps 2 and 3 (a few milliseconds) other replicas
// may refresh and apply a value whose event is not committed yet, and if the commit
// then fails and the restore cannot reach Redis either, the value stays without its
// event; a commit whose answer was lost although it committed is restored in Redis
// while its event stays (the audit log then says a change happened that was undone).
// Every Set writes its event, also one that sets the value the flag already had: the
// audit log records every admin action.
func (f *Flags) Set(ctx context.Context, actor events.Actor, name string, enabled bool) (Flag, error) {
	d, ok := lookup(name)
	if !ok {
		return Flag{}, ErrUnknownFlag
	}
	if f.db == nil {
		return Flag{}, errors.New("flags: no database for the audit event")
	}
	val := storedValue(enabled)
	var wrote bool
	var previous string
	err := f.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ev := events.Event{Subject: events.SubjectFlagChanged, Payload: events.FlagChanged{Flag: name, Enabled: enabled, Actor: actor}}
		if err := events.Enqueue(ctx, tx, f.keys, logging.RequestID(ctx), ev); err != nil {
			return accounts.Unavailable(err)
		}
		rctx, cancel := context.WithTimeout(ctx, redisTimeout)
		defer cancel()
		old, err := setScript.Run(rctx, f.rdb, []string{f.key}, name, val).Text()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return fmt.Errorf("%w: write feature flag %s: %w", accounts.ErrUnavailable, name, err)
		}
		wrote, previous = true, old
		return nil
	})
	if err != nil {
		if wrote {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
			if rerr := restoreScript.Run(rctx, f.rdb, []string{f.key}, name, val, previous).Err(); rerr != nil {
				f.log.Error("feature flags: the audit event was not committed and the change could not be undone",
					zap.String("flag", name), zap.Bool("enabled", enabled), zap.Error(rerr))
			}
			cancel()
		}
		return Flag{}, accounts.Unavailable(err)
	}
	f.mu.Lock()
	vals := maps.Clone(*f.values.Load())
	vals[name] = enabled
	f.gen++
	f.values.Store(&vals)
	f.mu.Unlock()
	return Flag{Name: name, Enabled: enabled, Description: d.description}, nil
}

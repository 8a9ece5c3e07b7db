// Package platform opens what the services stand on, from the shared configuration:
// the event and MFA keyrings, PostgreSQL, Redis, NATS with JetStream, the outbox relay
// and the signing keys, in that order, each only when the service asks for it. It gives
// the /readyz checks of what it opened and closes it all, newest first. What is a
// service's own (routes, use cases, consumers) stays in the service's app package.
package platform

import (
	"context"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/redisx"
	"github.com/talentforge/auth/pkg/token"
)

// Platform is what Open opened; a part the service did not ask for is nil.
type Platform struct {
	// Metrics is the service's registry (metrics.New(service)); the relay's metrics
	// are on it.
	Metrics *metrics.Registry
	// EventKeys seals and opens the tokens of events (EVENT_KEYS): WithEventKeys.
	EventKeys *keyring.Keyring
	// MFAKeys seals the TOTP secrets (MFA_ENCRYPTION_KEYS): WithMFAKeys.
	MFAKeys *keyring.Keyring
	DB      *postgres.DB
	Redis   redis.UniversalClient
	NATS    *nats.Conn
	JS      jetstream.JetStream
	// Relay publishes the outbox to JetStream: WithRelay.
	Relay *events.Relay
	// Keys are the signing keys (JWT_KEYS_DIR), reloaded every minute until the
	// context of Open ends: WithSigningKeys.
	Keys *token.KeySet

	closers []func() error
}

// SigningKeys says how the service loads JWT_KEYS_DIR.
type SigningKeys struct {
	// Generate makes a key in an empty directory first (for dev) and logs a warning
	// when it did.
	Generate bool
	// PublishDelay is how long a new key is published before it signs: as long as
	// caches may keep the JWKS.
	PublishDelay time.Duration
	// Hint, when set, follows the error of keys that cannot be loaded, in parentheses.
	Hint string
}

// Option says which part Open opens, and how.
type Option func(*options)

type options struct {
	eventKeys, mfaKeys bool
	db                 *postgres.Options
	redis              *redisx.Options
	nats               bool
	relay, startRelay  bool
	keys               *SigningKeys
}

// WithEventKeys parses EVENT_KEYS (required: the service does not start without it).
func WithEventKeys() Option { return func(o *options) { o.eventKeys = true } }

// WithMFAKeys parses MFA_ENCRYPTION_KEYS (required: the service does not start without it).
func WithMFAKeys() Option { return func(o *options) { o.mfaKeys = true } }

// WithDB opens DATABASE_URL and DATABASE_REPLICA_URLS with these pool options.
func WithDB(pool postgres.Options) Option { return func(o *options) { o.db = &pool } }

// WithRedis opens REDIS_URL (or the Cluster or Sentinel nodes) with a pool of
// poolSize connections per node, minIdleConns of them kept open; zero keeps go-redis'
// default (10 per GOMAXPROCS, none kept idle).
func WithRedis(poolSize, minIdleConns int) Option {
	return func(o *options) { o.redis = &redisx.Options{PoolSize: poolSize, MinIdleConns: minIdleConns} }
}

// WithNATS connects to NATS_URL, named after the service, and opens JetStream on it.
func WithNATS() Option { return func(o *options) { o.nats = true } }

// WithRelay builds the outbox relay (it needs WithDB and WithNATS); with start it runs
// until the context of Open ends or Close, else it is only built (tests read the
// outbox, or run it themselves).
func WithRelay(start bool) Option {
	return func(o *options) { o.relay, o.startRelay = true, start }
}

// WithSigningKeys loads the signing keys from JWT_KEYS_DIR and reloads them every
// minute until the context of Open ends.
func WithSigningKeys(k SigningKeys) Option { return func(o *options) { o.keys = &k } }

// Open opens the parts opts ask for, in the order of the Platform's fields. The relay
// and the signing-key reload run until ctx ends. On an error it closes what it opened;
// the error names the setting at fault.
func Open(ctx context.Context, cfg *config.Config, log *zap.Logger, service string, opts ...Option) (_ *Platform, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.relay && (o.db == nil || !o.nats) {
		return nil, errors.New("platform: WithRelay needs WithDB and WithNATS")
	}
	p := &Platform{Metrics: metrics.New(service)}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	for _, step := range []func() error{
		func() error { return p.openKeyrings(cfg, o) },
		func() error { return p.openStores(cfg, o) },
		func() error { return p.openNATS(ctx, cfg, log, service, o) },
		func() error { return p.openSigningKeys(ctx, cfg, log, o.keys) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Platform) openKeyrings(cfg *config.Config, o options) (err error) {
	if o.eventKeys {
		if p.EventKeys, err = cfg.EventKeyring(); err != nil {
			return err
		}
	}
	if o.mfaKeys {
		p.MFAKeys, err = cfg.MFAKeyring()
	}
	return err
}

func (p *Platform) openStores(cfg *config.Config, o options) (err error) {
	if o.db != nil {
		if p.DB, err = postgres.Open(cfg.DatabaseURL, cfg.DatabaseReplicaURLs, *o.db); err != nil {
			return err
		}
		p.OnClose(p.DB.Close)
	}
	if o.redis != nil {
		ro := *o.redis
		ro.URL, ro.ClusterAddrs, ro.SentinelAddrs, ro.SentinelMaster =
			cfg.RedisURL, cfg.RedisClusterAddrs, cfg.RedisSentinelAddrs, cfg.RedisSentinelMaster
		if p.Redis, err = redisx.New(ro); err != nil {
			return err
		}
		p.OnClose(p.Redis.Close)
	}
	return nil
}

func (p *Platform) openNATS(ctx context.Context, cfg *config.Config, log *zap.Logger, service string, o options) (err error) {
	if !o.nats {
		return nil
	}
	if p.NATS, err = natsx.Connect(cfg.NATSURL, service); err != nil {
		return err
	}
	p.OnClose(func() error { p.NATS.Close(); return nil })
	if p.JS, err = jetstream.New(p.NATS); err != nil {
		return fmt.Errorf("NATS_URL: jetstream: %w", err)
	}
	if o.relay {
		// The relay ensures the stream itself, retrying while NATS is down: events wait
		// in the outbox meanwhile, so a NATS outage never stops the service from starting.
		p.Relay = events.NewRelay(p.DB, p.JS, log, events.WithMetrics(p.Metrics), events.WithNamespace(cfg.NATSNamespace))
		if o.startRelay {
			// Closed before NATS and PostgreSQL (closers run newest first).
			p.OnClose(p.Relay.Start(ctx))
		}
	}
	return nil
}

func (p *Platform) openSigningKeys(ctx context.Context, cfg *config.Config, log *zap.Logger, k *SigningKeys) (err error) {
	if k == nil {
		return nil
	}
	keysErr := func(err error) error {
		if k.Hint != "" {
			return fmt.Errorf("JWT_KEYS_DIR: %w (%s)", err, k.Hint)
		}
		return fmt.Errorf("JWT_KEYS_DIR: %w", err)
	}
	if k.Generate {
		if created, err := token.EnsureKey(cfg.JWTKeysDir, cfg.JWTAlg, time.Now()); err != nil {
			return keysErr(err)
		} else if created {
			log.Warn("generated a signing key: fine in dev; in production mount keys into JWT_KEYS_DIR",
				zap.String("dir", cfg.JWTKeysDir))
		}
	}
	if p.Keys, err = token.LoadKeySet(cfg.JWTKeysDir, token.WithPublishDelay(k.PublishDelay),
		token.WithReloadErrorHandler(func(err error) { log.Error("reload signing keys", zap.Error(err)) })); err != nil {
		return keysErr(err)
	}
	go p.Keys.Watch(ctx, time.Minute)
	return nil
}

// OnClose runs fn on Close, before everything opened so far (closers run newest
// first): a service's own background work that uses the platform.
func (p *Platform) OnClose(fn func() error) { p.closers = append(p.closers, fn) }

// Close releases everything, newest first, and joins the errors. It may be called on
// a nil Platform, and more than once.
func (p *Platform) Close() error {
	if p == nil {
		return nil
	}
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// check is one dependency on /readyz.
type check struct {
	name  string
	probe httpx.Check
}

func (p *Platform) checks() []check {
	var cs []check
	if p.DB != nil {
		cs = append(cs, check{"postgres", p.DB.Ping})
	}
	if p.Redis != nil {
		cs = append(cs, check{"redis", func(ctx context.Context) error { return p.Redis.Ping(ctx).Err() }})
	}
	if p.NATS != nil {
		// nats: the connection is up and, with a relay, the relay can publish
		// (Relay.Healthy: its attempts to reach JetStream keep failing, e.g. JetStream
		// disabled or no PubAck). The other background loop, the signing-key reload
		// (Keys.Watch), is no check: a reload that fails keeps the keys last loaded,
		// which go on signing and verifying, so the instance still serves correctly;
		// the failure is logged.
		cs = append(cs, check{"nats", func(ctx context.Context) error {
			if err := natsx.Check(p.NATS); err != nil {
				return err
			}
			if p.Relay == nil {
				return nil
			}
			return p.Relay.Healthy(ctx)
		}})
	}
	return cs
}

// ReadyChecks are the /readyz checks of what Open opened, for httpx.New: postgres (a
// ping of the primary), redis (PING) and nats (the connection is up and, with a relay,
// Relay.Healthy).
func (p *Platform) ReadyChecks() []httpx.Option {
	var opts []httpx.Option
	for _, c := range p.checks() {
		opts = append(opts, httpx.WithReadyCheck(c.name, c.probe))
	}
	return opts
}

// ServerOptions are what the service's server needs of the platform: the /readyz
// checks (ReadyChecks) and the recognition of driver errors that mean a dependency
// cannot be used now (Unavailable), so pkg/httpx knows no driver.
func (p *Platform) ServerOptions() []httpx.Option {
	return append(p.ReadyChecks(), httpx.WithUnavailable(Unavailable))
}

// Unavailable reports a PostgreSQL or Redis error that says the dependency cannot be
// used now (a failed connect, a timeout, a closed pool): the client should retry.
func Unavailable(err error) bool {
	return postgres.Unreachable(err) || errors.Is(err, redis.ErrClosed)
}

// Ready runs the checks of ReadyChecks one after the other and joins their errors,
// each starting with the check's name: nil when every part the service opened answers.
func (p *Platform) Ready(ctx context.Context) error {
	var errs []error
	for _, c := range p.checks() {
		err := c.probe(ctx)
		switch {
		case err == nil:
		case strings.HasPrefix(err.Error(), c.name+": "):
			errs = append(errs, err)
		default:
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

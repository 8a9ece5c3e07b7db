// Package app composes the token-worker: config in, a runnable worker out. main and the
// integration tests build it through the same function, so the tests run exactly what
// production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/platform"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/apidoc"
	"github.com/talentforge/auth/services/token-worker/internal/audit"
	"github.com/talentforge/auth/services/token-worker/internal/cleanup"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
	"github.com/talentforge/auth/services/token-worker/internal/mailer"
	"github.com/talentforge/auth/services/token-worker/internal/notify"
	"github.com/talentforge/auth/services/token-worker/internal/sentmail"
	"github.com/talentforge/auth/services/token-worker/internal/sms"
	"github.com/talentforge/auth/services/token-worker/internal/webhooks"
)

// Durable consumer names on the events stream.
const (
	EmailConsumer = "token-worker-email"
	AuditConsumer = "token-worker-audit"
	SMSConsumer   = "token-worker-sms"
	// WebhooksConsumer fans every event out into webhook deliveries.
	WebhooksConsumer = webhooks.ConsumerName
)

// App is the composed worker.
type App struct {
	// Platform is the worker's Metrics, PostgreSQL, NATS and JetStream (JS).
	*platform.Platform
	Server *httpx.Server
	Mailer *mailer.Mailer
	Email  *consumer.Consumer
	Audit  *consumer.Consumer
	// SMSProvider is SMS_PROVIDER's provider behind its breaker; SMS its consumer.
	SMSProvider *sms.Breaker
	SMS         *consumer.Consumer
	// Webhooks fans the events out into webhook deliveries; Dispatcher delivers them.
	Webhooks   *consumer.Consumer
	Dispatcher *webhooks.Dispatcher
	Partitions *audit.Partitions
	Cleaner    *cleanup.Cleaner
	log        *zap.Logger
}

type options struct {
	emailOpts  []consumer.Option
	smsOpts    []consumer.Option
	mailerOpts []mailer.Option
	fetchWait  time.Duration
}

// Option adjusts the composition (tests).
type Option func(*options)

// WithEmailConsumerOptions adds options to the email consumer (tests: a before-ack hook).
func WithEmailConsumerOptions(opts ...consumer.Option) Option {
	return func(o *options) { o.emailOpts = append(o.emailOpts, opts...) }
}

// WithSMSConsumerOptions adds options to the SMS consumer (tests: a before-ack hook).
func WithSMSConsumerOptions(opts ...consumer.Option) Option {
	return func(o *options) { o.smsOpts = append(o.smsOpts, opts...) }
}

// WithMailerOptions adds options to the mailer (tests: a TLS config).
func WithMailerOptions(opts ...mailer.Option) Option {
	return func(o *options) { o.mailerOpts = append(o.mailerOpts, opts...) }
}

// WithFetchWait bounds one fetch (default 5 s; tests shorten it so shutdown is quick).
func WithFetchWait(d time.Duration) Option { return func(o *options) { o.fetchWait = d } }

// New connects to PostgreSQL and NATS and builds the worker; keys (EVENT_KEYS) open the
// sealed tokens. Nothing runs until Serve. The JetStream streams and consumers are
// created by Serve, so a worker started while NATS is away waits for it instead of
// exiting.
func New(cfg *config.Config, s Settings, keys *keyring.Keyring, log *zap.Logger, opts ...Option) (_ *App, err error) {
	o := options{fetchWait: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	// Before any connection: a worker that could not send an SMS stops at once, with one
	// line naming the variable.
	provider, err := smsProvider(cfg, s)
	if err != nil {
		return nil, err
	}
	a := &App{log: log}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	// No context: nothing of the worker's platform runs in the background (no relay, no
	// signing keys); Serve runs the consumers.
	if a.Platform, err = platform.Open(context.Background(), cfg, log, "token-worker",
		platform.WithDB(postgres.Options{MaxOpenConns: 2*(s.EmailConcurrency+2*s.AuditConcurrency+s.SMSConcurrency) + s.WebhookConcurrency + 6,
			StatementTimeout: 10 * time.Second}),
		platform.WithNATS(),
	); err != nil {
		return nil, err
	}

	reg := a.Metrics.Registry
	if a.Mailer, err = mailer.New(mailer.Config{
		Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
		From: cfg.SMTPFrom, TLS: cfg.SMTPTLS,
	}, append([]mailer.Option{
		mailer.WithTimeout(s.SMTPTimeout),
		mailer.WithBreaker(s.BreakerFailures, s.BreakerTimeout),
		mailer.WithLogger(log.Named("mailer")),
		mailer.WithMetrics(reg),
	}, o.mailerOpts...)...); err != nil {
		return nil, err
	}
	emails := notify.New(sentmail.New(a.DB, s.AckWait), a.Mailer, keys, cfg.AppURL,
		notify.WithCap(s.EmailsPerAddressPerHour), notify.WithLogger(log.Named("notify")))
	recorder := audit.NewRecorder(audit.NewStore(a.DB))
	a.SMSProvider = sms.NewBreaker(provider, sms.BreakerConfig{Failures: s.SMSBreakerFailures, Timeout: s.SMSBreakerTimeout,
		Log: log.Named("sms"), Metrics: reg})
	texts := sms.New(sentmail.New(a.DB, s.AckWait), a.SMSProvider, keys,
		sms.WithCap(s.SMSPerNumberPerHour), sms.WithLogger(log.Named("sms")))

	cm := consumer.NewMetrics(reg)
	streams := consumer.NewStreams(a.JS, cfg.NATSNamespace)
	db := newDBGate(a.DB, log)
	common := func(label string) []consumer.Option {
		return []consumer.Option{
			consumer.WithLogger(log.Named(label)), consumer.WithMetrics(cm),
			consumer.WithFetchWait(o.fetchWait), consumer.WithLagInterval(s.LagInterval),
			consumer.WithDrain(cfg.ShutdownTimeout),
		}
	}
	// The email consumer reads every event and acks the ones that make no email
	// ("ignored"): one filter works on NATS Server 2.9, which has no multi-subject
	// filter, and costs one ack per non-email event.
	a.Email = consumer.New(a.JS, streams, consumer.Config{
		Durable: EmailConsumer, Label: "email", Subject: events.SubjectAll, Concurrency: s.EmailConcurrency,
		MaxDeliver: s.MaxDeliver, AckWait: s.AckWait, BackoffMin: s.RetryMin, BackoffMax: s.RetryMax,
	}, emails.Handle, append(append(common("email"),
		consumer.WithGate(func(ctx context.Context) error {
			if err := db.Wait(ctx); err != nil {
				return err
			}
			return a.Mailer.Wait(ctx)
		})), o.emailOpts...)...)
	a.Audit = consumer.New(a.JS, streams, consumer.Config{
		Durable: AuditConsumer, Label: "audit", Subject: events.SubjectAll, Concurrency: s.AuditConcurrency,
		MaxDeliver: s.MaxDeliver, AckWait: s.AckWait, BackoffMin: s.RetryMin, BackoffMax: s.RetryMax,
	}, recorder.Handle, append(common("audit"), consumer.WithGate(db.Wait))...)
	// The SMS consumer is the email one's twin: every event, the others acked as
	// "ignored"; it waits for the database and for the provider's breaker.
	a.SMS = consumer.New(a.JS, streams, consumer.Config{
		Durable: SMSConsumer, Label: "sms", Subject: events.SubjectAll, Concurrency: s.SMSConcurrency,
		MaxDeliver: s.MaxDeliver, AckWait: s.AckWait, BackoffMin: s.RetryMin, BackoffMax: s.RetryMax,
	}, texts.Handle, append(append(common("sms"),
		consumer.WithGate(func(ctx context.Context) error {
			if err := db.Wait(ctx); err != nil {
				return err
			}
			return a.SMSProvider.Wait(ctx)
		})), o.smsOpts...)...)

	// Webhooks: a consumer of its own reads every event and writes one delivery per
	// subscribed endpoint (as many at once as the audit log's, one INSERT each); the
	// dispatcher calls the endpoints. The worker has no outbox relay: the
	// auth.webhook.disabled events the dispatcher writes to the outbox when it disables an
	// endpoint are published by auth's relay, like auth's own.
	wm := webhooks.NewMetrics(reg)
	a.Dispatcher = webhooks.NewDispatcher(a.DB, keys, a.JS, streams, cfg.NATSNamespace, webhooks.Config{
		Concurrency: s.WebhookConcurrency, EndpointConcurrency: s.WebhookEndpointConcurrency, Timeout: s.WebhookTimeout,
		Schedule: s.WebhookRetrySchedule, DisableAfter: s.WebhookDisableAfter, PollInterval: s.WebhookPollInterval,
		GaugeInterval: s.LagInterval, Drain: cfg.ShutdownTimeout, AllowPrivate: cfg.WebhookAllowPrivateNetworks,
	}, webhooks.WithLogger(log.Named("webhooks")), webhooks.WithMetrics(wm))
	a.Webhooks = consumer.New(a.JS, streams, consumer.Config{
		Durable: WebhooksConsumer, Label: "webhooks", Subject: events.SubjectAll, Concurrency: s.AuditConcurrency,
		MaxDeliver: s.MaxDeliver, AckWait: s.AckWait, BackoffMin: s.RetryMin, BackoffMax: s.RetryMax,
	}, webhooks.NewFanout(a.DB, a.Dispatcher.Wake).Handle, append(common("webhooks"), consumer.WithGate(db.Wait))...)

	a.Partitions = audit.NewPartitions(a.DB, audit.WithMonthsAhead(s.PartitionMonthsAhead),
		audit.WithInterval(s.PartitionInterval), audit.WithPartitionLogger(log.Named("partitions")))
	a.Cleaner = cleanup.New(a.DB, cleanup.WithOutboxRetention(s.OutboxRetention),
		cleanup.WithSentEmailsRetention(s.SentEmailsRetention), cleanup.WithWebhookRetention(s.WebhookRetention),
		cleanup.WithInterval(s.CleanupInterval),
		cleanup.WithLogger(log.Named("cleanup")), cleanup.WithMetrics(reg))

	// /readyz: postgres and nats (the connection: the worker has no relay), then the
	// consumers.
	a.Server = httpx.New(log, a.Metrics, append(a.ServerOptions(),
		httpx.WithTrustedProxies(cfg.TrustedProxies),
		httpx.WithShutdownTimeout(cfg.ShutdownTimeout),
		// One check per consumer ("consumer token-worker-email", "consumer
		// token-worker-audit", "consumer token-worker-sms", "consumer
		// token-worker-webhooks"): a worker whose NATS
		// connection is up but whose consumer is not set up on the stream, or whose
		// fetches keep failing (a JetStream that does not answer), sends nothing and must
		// not say it is ready. The partition and clean-up loops (Partitions, Cleaner) are
		// not checks: they only touch PostgreSQL, which has its own, and a pass that fails
		// is logged and retried while the worker keeps consuming (the DEFAULT partition
		// holds audit entries meanwhile). Nor is the SMS provider: like the SMTP relay it
		// has a breaker that holds its consumer back. Nor is the webhook dispatcher: it
		// only needs PostgreSQL, and an endpoint that fails is its own business.
		httpx.WithReadyCheck("consumer "+EmailConsumer, a.Email.Ready),
		httpx.WithReadyCheck("consumer "+AuditConsumer, a.Audit.Ready),
		httpx.WithReadyCheck("consumer "+SMSConsumer, a.SMS.Ready),
		httpx.WithReadyCheck("consumer "+WebhooksConsumer, a.Webhooks.Ready),
		httpx.WithOpenAPI(apidoc.YAML),
	)...)
	return a, nil
}

// Run serves health and metrics on addr and runs the worker until ctx ends.
func (a *App) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: listen on %s: %w", addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0). It returns once the
// consumers have drained.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { a.Email.Run(ctx) })
	wg.Go(func() { a.Audit.Run(ctx) })
	wg.Go(func() { a.SMS.Run(ctx) })
	wg.Go(func() { a.Webhooks.Run(ctx) })
	wg.Go(func() { a.Dispatcher.Run(ctx) })
	wg.Go(func() { a.Partitions.Run(ctx) })
	wg.Go(func() { a.Cleaner.Run(ctx) })
	err := a.Server.Serve(ctx, ln)
	cancel()
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// smsProvider is the provider SMS_PROVIDER names, its settings checked.
func smsProvider(cfg *config.Config, s Settings) (sms.Provider, error) {
	switch cfg.SMSProvider {
	case sms.ProviderTwilio:
		return sms.NewTwilio(sms.TwilioConfig{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
			From: cfg.TwilioFrom, APIURL: cfg.TwilioAPIURL, Timeout: s.SMSTimeout})
	case sms.ProviderNone, "":
		return sms.None{}, nil
	}
	return nil, fmt.Errorf("SMS_PROVIDER: %q must be one of none, twilio", cfg.SMSProvider)
}

// Close releases every connection, newest first.
func (a *App) Close() error { return a.Platform.Close() }

// dbGate holds the consumers back while PostgreSQL does not answer, so the events keep
// their deliveries for when it is back. A healthy database costs one ping a second.
type dbGate struct {
	db  *postgres.DB
	log *zap.Logger

	mu     sync.Mutex
	lastOK time.Time
}

func newDBGate(db *postgres.DB, log *zap.Logger) *dbGate { return &dbGate{db: db, log: log} }

func (g *dbGate) Wait(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.lastOK) < time.Second {
		return nil
	}
	for n := 0; ; n++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := g.db.Ping(pctx)
		cancel()
		if err == nil {
			if n > 0 {
				g.log.Info("PostgreSQL is back: consuming again")
			}
			g.lastOK = time.Now()
			return nil
		}
		if n == 0 {
			g.log.Warn("PostgreSQL does not answer: consumers wait", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(n+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

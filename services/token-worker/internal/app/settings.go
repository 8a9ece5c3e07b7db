package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/talentforge/auth/pkg/events"
)

// Settings are the worker's own knobs, beside the shared configuration (pkg/config).
// Each is an environment variable with a default; a bad value stops the worker at start
// with one line naming the variable.
//
//	WORKER_EMAILS_PER_ADDRESS_PER_HOUR  10     emails one address is sent per hour; 0: no cap
//	WORKER_EMAIL_CONCURRENCY            4      emails sent at once
//	WORKER_AUDIT_CONCURRENCY            4      audit entries written at once
//	WORKER_MAX_DELIVER                  8      deliveries of a failing event before it is dead-lettered
//	WORKER_ACK_WAIT                     30s    JetStream ack wait (and the email claim's lease)
//	WORKER_RETRY_MIN, WORKER_RETRY_MAX  5s,10m backoff between the deliveries of a failing event
//	WORKER_SMTP_TIMEOUT                 15s    one SMTP conversation
//	WORKER_SMTP_BREAKER_FAILURES        5      consecutive relay failures that open the breaker
//	WORKER_SMTP_BREAKER_TIMEOUT         30s    open breaker's wait before it probes the relay
//	WORKER_SMS_CONCURRENCY              2      SMS sent at once
//	WORKER_SMS_PER_NUMBER_PER_HOUR      10     SMS one number is sent per hour; 0: no cap
//	WORKER_SMS_TIMEOUT                  10s    one call to the SMS provider
//	WORKER_SMS_BREAKER_FAILURES         5      consecutive provider failures that open its breaker
//	WORKER_SMS_BREAKER_TIMEOUT          30s    open breaker's wait before one SMS tries the provider again
//	WORKER_OUTBOX_RETENTION             168h   published outbox rows are kept this long
//	WORKER_SENT_EMAILS_RETENTION        720h   email ledger rows are kept this long (> the stream's 7 days)
//	WORKER_CLEANUP_INTERVAL             1h     time between clean-up passes
//	WORKER_PARTITION_MONTHS_AHEAD       2      audit partitions made ahead of the current month
//	WORKER_PARTITION_INTERVAL           24h    time between partition checks
//	WORKER_LAG_INTERVAL                 15s    how often the consumers' lag is read
//	WORKER_WEBHOOK_CONCURRENCY          8      webhook calls at once (per process)
//	WORKER_WEBHOOK_ENDPOINT_CONCURRENCY 2      webhook calls at once to one endpoint (per process)
//	WORKER_WEBHOOK_TIMEOUT              10s    one webhook call, connection to last byte; the lease is twice it
//	WORKER_WEBHOOK_RETRY_SCHEDULE       5s,30s,2m,10m,30m,2h,6h,12h  delays before the 2nd, 3rd... attempt;
//	                                           after the last, the delivery is dead-lettered (9 attempts, ~21 h)
//	WORKER_WEBHOOK_DISABLE_AFTER        24h    an endpoint failing that long (no success since) is disabled
//	WORKER_WEBHOOK_POLL_INTERVAL        1s     how often due deliveries are looked for
//	WORKER_WEBHOOK_RETENTION            720h   finished deliveries are kept this long
type Settings struct {
	EmailsPerAddressPerHour int
	EmailConcurrency        int
	AuditConcurrency        int
	MaxDeliver              int
	AckWait                 time.Duration
	RetryMin, RetryMax      time.Duration
	SMTPTimeout             time.Duration
	BreakerFailures         int
	BreakerTimeout          time.Duration
	SMSConcurrency          int
	SMSPerNumberPerHour     int
	SMSTimeout              time.Duration
	SMSBreakerFailures      int
	SMSBreakerTimeout       time.Duration
	OutboxRetention         time.Duration
	SentEmailsRetention     time.Duration
	CleanupInterval         time.Duration
	PartitionMonthsAhead    int
	PartitionInterval       time.Duration
	LagInterval             time.Duration
	// Webhooks (internal/webhooks).
	WebhookConcurrency         int
	WebhookEndpointConcurrency int
	WebhookTimeout             time.Duration
	WebhookRetrySchedule       []time.Duration
	WebhookDisableAfter        time.Duration
	WebhookPollInterval        time.Duration
	WebhookRetention           time.Duration
}

// DefaultWebhookRetrySchedule is WORKER_WEBHOOK_RETRY_SCHEDULE's default: 9 attempts,
// the last about 21 hours after the first.
const DefaultWebhookRetrySchedule = "5s,30s,2m,10m,30m,2h,6h,12h"

type settingsParser struct {
	lookup func(string) (string, bool)
	err    error
}

func (p *settingsParser) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

func (p *settingsParser) raw(name, def string) string {
	if v, ok := p.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (p *settingsParser) integer(name string, def, lo, hi int) int {
	raw := p.raw(name, strconv.Itoa(def))
	n, err := strconv.Atoi(raw)
	if err != nil {
		p.fail(name, "%q is not an integer", raw)
		return def
	}
	if n < lo || n > hi {
		p.fail(name, "must be between %d and %d", lo, hi)
	}
	return n
}

func (p *settingsParser) duration(name string, def, lo time.Duration) time.Duration {
	raw := p.raw(name, def.String())
	d, err := time.ParseDuration(raw)
	if err != nil {
		p.fail(name, "%q is not a duration (e.g. 30s, 1h)", raw)
		return def
	}
	if d < lo {
		p.fail(name, "must be at least %s", lo)
	}
	return d
}

// durations reads a comma-separated list of durations, each at least lo, at most max
// of them.
func (p *settingsParser) durations(name, def string, lo time.Duration, max int) []time.Duration {
	raw := p.raw(name, def)
	var out []time.Duration
	for part := range strings.SplitSeq(raw, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			p.fail(name, "%q is not a comma-separated list of durations (e.g. 5s,30s,2m)", raw)
			return nil
		}
		if d < lo {
			p.fail(name, "every delay must be at least %s", lo)
			return nil
		}
		out = append(out, d)
	}
	if len(out) > max {
		p.fail(name, "at most %d delays", max)
	}
	return out
}

// LoadSettings reads the worker's settings through lookup (os.LookupEnv in production).
func LoadSettings(lookup func(string) (string, bool)) (Settings, error) {
	p := &settingsParser{lookup: lookup}
	s := Settings{
		EmailsPerAddressPerHour: p.integer("WORKER_EMAILS_PER_ADDRESS_PER_HOUR", 10, 0, 100000),
		EmailConcurrency:        p.integer("WORKER_EMAIL_CONCURRENCY", 4, 1, 256),
		AuditConcurrency:        p.integer("WORKER_AUDIT_CONCURRENCY", 4, 1, 256),
		MaxDeliver:              p.integer("WORKER_MAX_DELIVER", 8, 1, 1000),
		AckWait:                 p.duration("WORKER_ACK_WAIT", 30*time.Second, time.Second),
		RetryMin:                p.duration("WORKER_RETRY_MIN", 5*time.Second, time.Millisecond),
		RetryMax:                p.duration("WORKER_RETRY_MAX", 10*time.Minute, time.Millisecond),
		SMTPTimeout:             p.duration("WORKER_SMTP_TIMEOUT", 15*time.Second, 100*time.Millisecond),
		BreakerFailures:         p.integer("WORKER_SMTP_BREAKER_FAILURES", 5, 1, 1000),
		BreakerTimeout:          p.duration("WORKER_SMTP_BREAKER_TIMEOUT", 30*time.Second, 10*time.Millisecond),
		SMSConcurrency:          p.integer("WORKER_SMS_CONCURRENCY", 2, 1, 256),
		SMSPerNumberPerHour:     p.integer("WORKER_SMS_PER_NUMBER_PER_HOUR", 10, 0, 100000),
		SMSTimeout:              p.duration("WORKER_SMS_TIMEOUT", 10*time.Second, 100*time.Millisecond),
		SMSBreakerFailures:      p.integer("WORKER_SMS_BREAKER_FAILURES", 5, 1, 1000),
		SMSBreakerTimeout:       p.duration("WORKER_SMS_BREAKER_TIMEOUT", 30*time.Second, 10*time.Millisecond),
		OutboxRetention:         p.duration("WORKER_OUTBOX_RETENTION", 7*24*time.Hour, time.Minute),
		SentEmailsRetention:     p.duration("WORKER_SENT_EMAILS_RETENTION", 30*24*time.Hour, events.MaxAge),
		CleanupInterval:         p.duration("WORKER_CLEANUP_INTERVAL", time.Hour, time.Second),
		PartitionMonthsAhead:    p.integer("WORKER_PARTITION_MONTHS_AHEAD", 2, 1, 24),
		PartitionInterval:       p.duration("WORKER_PARTITION_INTERVAL", 24*time.Hour, time.Second),
		LagInterval:             p.duration("WORKER_LAG_INTERVAL", 15*time.Second, 100*time.Millisecond),

		WebhookConcurrency:         p.integer("WORKER_WEBHOOK_CONCURRENCY", 8, 1, 256),
		WebhookEndpointConcurrency: p.integer("WORKER_WEBHOOK_ENDPOINT_CONCURRENCY", 2, 1, 256),
		WebhookTimeout:             p.duration("WORKER_WEBHOOK_TIMEOUT", 10*time.Second, 100*time.Millisecond),
		WebhookRetrySchedule:       p.durations("WORKER_WEBHOOK_RETRY_SCHEDULE", DefaultWebhookRetrySchedule, 10*time.Millisecond, 50),
		WebhookDisableAfter:        p.duration("WORKER_WEBHOOK_DISABLE_AFTER", 24*time.Hour, time.Millisecond),
		WebhookPollInterval:        p.duration("WORKER_WEBHOOK_POLL_INTERVAL", time.Second, 10*time.Millisecond),
		WebhookRetention:           p.duration("WORKER_WEBHOOK_RETENTION", 30*24*time.Hour, time.Hour),
	}
	if s.WebhookEndpointConcurrency > s.WebhookConcurrency {
		p.fail("WORKER_WEBHOOK_ENDPOINT_CONCURRENCY", "must not be above WORKER_WEBHOOK_CONCURRENCY")
	}
	if s.WebhookTimeout > time.Minute {
		p.fail("WORKER_WEBHOOK_TIMEOUT", "must be at most 1m")
	}
	if s.RetryMax < s.RetryMin {
		p.fail("WORKER_RETRY_MAX", "must not be below WORKER_RETRY_MIN")
	}
	// The claim's lease is the ack wait: it must outlast one SMTP conversation.
	if s.SMTPTimeout >= s.AckWait {
		p.fail("WORKER_SMTP_TIMEOUT", "must be shorter than WORKER_ACK_WAIT")
	}
	// Likewise for one call to the SMS provider: the claim must outlast it.
	if s.SMSTimeout >= s.AckWait {
		p.fail("WORKER_SMS_TIMEOUT", "must be shorter than WORKER_ACK_WAIT")
	}
	if p.err != nil {
		return Settings{}, p.err
	}
	return s, nil
}

package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/services/token-worker/internal/app"
)

func TestLoadSettings(t *testing.T) {
	s, err := app.LoadSettings(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if s.EmailsPerAddressPerHour != 10 || s.MaxDeliver != 8 || s.AckWait != 30*time.Second || s.OutboxRetention != 7*24*time.Hour ||
		s.PartitionMonthsAhead != 2 || s.BreakerFailures != 5 || s.SMSConcurrency != 2 || s.SMSPerNumberPerHour != 10 ||
		s.SMSTimeout != 10*time.Second || s.SMSBreakerFailures != 5 || s.SMSBreakerTimeout != 30*time.Second {
		t.Fatalf("defaults = %+v", s)
	}
	wantSchedule := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 6 * time.Hour, 12 * time.Hour}
	if s.WebhookConcurrency != 8 || s.WebhookEndpointConcurrency != 2 || s.WebhookTimeout != 10*time.Second ||
		!slices.Equal(s.WebhookRetrySchedule, wantSchedule) || s.WebhookDisableAfter != 24*time.Hour ||
		s.WebhookPollInterval != time.Second || s.WebhookRetention != 720*time.Hour {
		t.Fatalf("webhook defaults = %+v", s)
	}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "ten"}, "WORKER_EMAILS_PER_ADDRESS_PER_HOUR:"},
		{map[string]string{"WORKER_MAX_DELIVER": "0"}, "WORKER_MAX_DELIVER:"},
		{map[string]string{"WORKER_ACK_WAIT": "soon"}, "WORKER_ACK_WAIT:"},
		{map[string]string{"WORKER_RETRY_MIN": "1m", "WORKER_RETRY_MAX": "1s"}, "WORKER_RETRY_MAX:"},
		{map[string]string{"WORKER_SMTP_TIMEOUT": "30s"}, "WORKER_SMTP_TIMEOUT:"},
		{map[string]string{"WORKER_SENT_EMAILS_RETENTION": "24h"}, "WORKER_SENT_EMAILS_RETENTION:"},
		{map[string]string{"WORKER_SMS_CONCURRENCY": "0"}, "WORKER_SMS_CONCURRENCY:"},
		{map[string]string{"WORKER_SMS_PER_NUMBER_PER_HOUR": "-1"}, "WORKER_SMS_PER_NUMBER_PER_HOUR:"},
		{map[string]string{"WORKER_SMS_TIMEOUT": "30s"}, "WORKER_SMS_TIMEOUT:"},
		{map[string]string{"WORKER_SMS_TIMEOUT": "5s", "WORKER_ACK_WAIT": "5s", "WORKER_SMTP_TIMEOUT": "1s"}, "WORKER_SMS_TIMEOUT:"},
		{map[string]string{"WORKER_SMS_TIMEOUT": "a while"}, "WORKER_SMS_TIMEOUT:"},
		{map[string]string{"WORKER_SMS_BREAKER_FAILURES": "0"}, "WORKER_SMS_BREAKER_FAILURES:"},
		{map[string]string{"WORKER_SMS_BREAKER_TIMEOUT": "1ms"}, "WORKER_SMS_BREAKER_TIMEOUT:"},
		{map[string]string{"WORKER_WEBHOOK_CONCURRENCY": "0"}, "WORKER_WEBHOOK_CONCURRENCY:"},
		{map[string]string{"WORKER_WEBHOOK_ENDPOINT_CONCURRENCY": "9"}, "WORKER_WEBHOOK_ENDPOINT_CONCURRENCY:"},
		{map[string]string{"WORKER_WEBHOOK_TIMEOUT": "2m"}, "WORKER_WEBHOOK_TIMEOUT:"},
		{map[string]string{"WORKER_WEBHOOK_TIMEOUT": "10ms"}, "WORKER_WEBHOOK_TIMEOUT:"},
		{map[string]string{"WORKER_WEBHOOK_RETRY_SCHEDULE": "5s,soon"}, "WORKER_WEBHOOK_RETRY_SCHEDULE:"},
		{map[string]string{"WORKER_WEBHOOK_RETRY_SCHEDULE": "5s,1ms"}, "WORKER_WEBHOOK_RETRY_SCHEDULE:"},
		{map[string]string{"WORKER_WEBHOOK_DISABLE_AFTER": "never"}, "WORKER_WEBHOOK_DISABLE_AFTER:"},
		{map[string]string{"WORKER_WEBHOOK_POLL_INTERVAL": "1ms"}, "WORKER_WEBHOOK_POLL_INTERVAL:"},
		{map[string]string{"WORKER_WEBHOOK_RETENTION": "1m"}, "WORKER_WEBHOOK_RETENTION:"},
	}
	for _, tt := range tests {
		_, err := app.LoadSettings(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("LoadSettings(%v) = %v, want an error starting %q", tt.env, err, tt.want)
		}
	}
	s, err = app.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "0", "WORKER_OUTBOX_RETENTION": "72h",
			"WORKER_SMS_PER_NUMBER_PER_HOUR": "0", "WORKER_SMS_CONCURRENCY": "8", "WORKER_SMS_TIMEOUT": "3s",
			"WORKER_WEBHOOK_RETRY_SCHEDULE": "100ms, 1s,1m", "WORKER_WEBHOOK_ENDPOINT_CONCURRENCY": "8", "WORKER_WEBHOOK_DISABLE_AFTER": "1ms"}[k]
		return v, ok
	})
	if err != nil || s.EmailsPerAddressPerHour != 0 || s.OutboxRetention != 72*time.Hour ||
		s.SMSPerNumberPerHour != 0 || s.SMSConcurrency != 8 || s.SMSTimeout != 3*time.Second ||
		!slices.Equal(s.WebhookRetrySchedule, []time.Duration{100 * time.Millisecond, time.Second, time.Minute}) ||
		s.WebhookEndpointConcurrency != 8 || s.WebhookDisableAfter != time.Millisecond {
		t.Fatalf("overrides = %+v, %v", s, err)
	}
}

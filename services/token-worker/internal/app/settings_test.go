package app_test

import (
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
	}
	for _, tt := range tests {
		_, err := app.LoadSettings(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("LoadSettings(%v) = %v, want an error starting %q", tt.env, err, tt.want)
		}
	}
	s, err = app.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "0", "WORKER_OUTBOX_RETENTION": "72h",
			"WORKER_SMS_PER_NUMBER_PER_HOUR": "0", "WORKER_SMS_CONCURRENCY": "8", "WORKER_SMS_TIMEOUT": "3s"}[k]
		return v, ok
	})
	if err != nil || s.EmailsPerAddressPerHour != 0 || s.OutboxRetention != 72*time.Hour ||
		s.SMSPerNumberPerHour != 0 || s.SMSConcurrency != 8 || s.SMSTimeout != 3*time.Second {
		t.Fatalf("overrides = %+v, %v", s, err)
	}
}

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
		s.PartitionMonthsAhead != 2 || s.BreakerFailures != 5 {
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
	}
	for _, tt := range tests {
		_, err := app.LoadSettings(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("LoadSettings(%v) = %v, want an error starting %q", tt.env, err, tt.want)
		}
	}
	s, err = app.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "0", "WORKER_OUTBOX_RETENTION": "72h"}[k]
		return v, ok
	})
	if err != nil || s.EmailsPerAddressPerHour != 0 || s.OutboxRetention != 72*time.Hour {
		t.Fatalf("overrides = %+v, %v", s, err)
	}
}

package sms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/twiliofake"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
	"github.com/talentforge/auth/services/token-worker/internal/sms"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "auth-token-of-the-test"
	from  = "+15005550006"
	body  = "Your sign-in code is 135790. It expires in 10 minutes. Do not share it."
)

func startFake(t *testing.T) *twiliofake.Server {
	t.Helper()
	f, err := twiliofake.Start(sid, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func newTwilio(t *testing.T, url string, mod ...func(*sms.TwilioConfig)) *sms.Twilio {
	t.Helper()
	cfg := sms.TwilioConfig{AccountSID: sid, AuthToken: token, From: from, APIURL: url, Timeout: 2 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	tw, err := sms.NewTwilio(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func TestTwilioSends(t *testing.T) {
	f := startFake(t)
	tw := newTwilio(t, f.URL()+"/")
	if err := tw.Send(context.Background(), "+14155550167", body); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := f.WaitMessages(ctx, "+14155550167", 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.From != from || m.Body != body || m.AccountSID != sid {
		t.Fatalf("message = %+v", m)
	}
}

func TestTwilioClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name         string
		status, code int
		reason       string
		permanent    bool
	}{
		{"rate limited", 429, 20429, sms.ReasonRateLimited, false},
		{"rate limit code on a 400", 400, 20429, sms.ReasonRateLimited, false},
		{"server error", 500, 20500, sms.ReasonProvider, false},
		{"bad gateway", 503, 0, sms.ReasonProvider, false},
		{"invalid number", 400, 21211, sms.ReasonRejected, true},
		{"region not allowed", 400, 21408, sms.ReasonRejected, true},
		{"unsubscribed", 400, 21610, sms.ReasonRejected, true},
		{"bad credentials", 401, 20003, sms.ReasonAccount, true},
		{"from not the account's", 400, 21606, sms.ReasonAccount, true},
	}
	f := startFake(t)
	tw := newTwilio(t, f.URL())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.FailNext(1, tt.status, tt.code)
			err := tw.Send(context.Background(), "+14155550167", body)
			var te *sms.TwilioError
			if !errors.As(err, &te) || te.Status != tt.status || te.Code != tt.code {
				t.Fatalf("Send = %v, want a TwilioError %d/%d", err, tt.status, tt.code)
			}
			if te.Reason() != tt.reason || errors.Is(err, retry.ErrPermanent) != tt.permanent {
				t.Errorf("reason %s, permanent %v; want %s, %v", te.Reason(), errors.Is(err, retry.ErrPermanent), tt.reason, tt.permanent)
			}
			if errors.Is(err, retry.ErrUnavailable) {
				t.Error("a provider failure is a plain error (counted), not ErrUnavailable")
			}
			if strings.Contains(err.Error(), "135790") {
				t.Errorf("the error names the body: %v", err)
			}
			if tt.code != 0 && !strings.Contains(err.Error(), "error "+strconv.Itoa(tt.code)) {
				t.Errorf("the error does not name the Twilio code: %v", err)
			}
		})
	}
	if n := len(f.Messages()); n != 0 {
		t.Errorf("the fake accepted %d messages while failing", n)
	}

	t.Run("wrong token", func(t *testing.T) {
		err := newTwilio(t, f.URL(), func(c *sms.TwilioConfig) { c.AuthToken = "wrong" }).Send(context.Background(), "+14155550167", body)
		var te *sms.TwilioError
		if !errors.As(err, &te) || te.Code != 20003 || !errors.Is(err, retry.ErrPermanent) || te.Reason() != sms.ReasonAccount {
			t.Fatalf("Send with a wrong token = %v", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("the error names the token: %v", err)
		}
	})
	t.Run("network", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		err := newTwilio(t, dead.URL).Send(context.Background(), "+14155550167", body)
		if err == nil || errors.Is(err, retry.ErrPermanent) {
			t.Fatalf("Send to a closed port = %v, want a plain error", err)
		}
	})
}

// A redirect is not followed (the credentials and the code would go elsewhere), a slow
// answer ends at the timeout, and a huge one is read only so far.
func TestTwilioHTTPHygiene(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	err := newTwilio(t, redirect.URL).Send(context.Background(), "+14155550167", body)
	if err == nil || errors.Is(err, retry.ErrPermanent) || elsewhere.Load() != 0 {
		t.Fatalf("Send through a redirect = %v (target hit %d times), want a plain error and no request there", err, elsewhere.Load())
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	start := time.Now()
	err = newTwilio(t, slow.URL, func(c *sms.TwilioConfig) { c.Timeout = 200 * time.Millisecond }).Send(context.Background(), "+14155550167", body)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Send to a server that does not answer = %v after %s", err, time.Since(start))
	}

	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":21211,"message":"` + strings.Repeat("x", 1<<20) + `"}`))
	}))
	defer huge.Close()
	err = newTwilio(t, huge.URL).Send(context.Background(), "+14155550167", body)
	var te *sms.TwilioError
	if !errors.As(err, &te) || te.Status != 400 || len(err.Error()) > 400 {
		t.Fatalf("Send with a 1 MiB error answer = %.200v (%d bytes)", err, len(err.Error()))
	}
}

func TestTwilioConfig(t *testing.T) {
	good := sms.TwilioConfig{AccountSID: sid, AuthToken: token, From: from}
	tests := []struct {
		mod  func(*sms.TwilioConfig)
		want string
	}{
		{func(c *sms.TwilioConfig) { c.AccountSID = "" }, "TWILIO_ACCOUNT_SID:"},
		{func(c *sms.TwilioConfig) { c.AuthToken = " " }, "TWILIO_AUTH_TOKEN:"},
		{func(c *sms.TwilioConfig) { c.From = "" }, "TWILIO_FROM:"},
		{func(c *sms.TwilioConfig) { c.From = "4155550100" }, "TWILIO_FROM:"},
		{func(c *sms.TwilioConfig) { c.From = "MG123" }, "TWILIO_FROM:"},
		{func(c *sms.TwilioConfig) { c.From = "TalentForge" }, "TWILIO_FROM:"},
		{func(c *sms.TwilioConfig) { c.APIURL = "ftp://api.twilio.test" }, "TWILIO_API_URL:"},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Validate(%+v) = %v, want one line starting %q", c, err, tt.want)
		}
		if _, err := sms.NewTwilio(c); err == nil {
			t.Errorf("NewTwilio(%+v) accepted it", c)
		}
	}
	for _, from := range []string{"+14155550100", "MG0123456789abcdef0123456789abcdef"} {
		c := good
		c.From = from
		if err := c.Validate(); err != nil {
			t.Errorf("TWILIO_FROM=%s: %v", from, err)
		}
	}
}

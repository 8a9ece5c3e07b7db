package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/services/token-worker/internal/app"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// smsRig is a rig whose worker sends SMS through a fake Twilio of its own (none with
// noTwilio) and logs, at every level, into logs.
type smsRig struct {
	*rig
	twilio *workertest.Twilio
	logs   *observer.ObservedLogs
}

func newSMSRig(t *testing.T, env workertest.Env, opts ...app.Option) *smsRig {
	t.Helper()
	n := workertest.SharedNATS(t)
	r := &smsRig{rig: &rig{nats: n, relay: workertest.StartSMTP(t)}, twilio: workertest.StartTwilio(t)}
	r.js = n.JetStream(t)
	r.spec, r.keys = workertest.Keys(t, "k1")
	all := r.twilio.Env()
	for k, v := range env {
		all[k] = v
	}
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	r.worker = workertest.StartWorkerLogging(t, n, r.relay, r.spec, all, zap.New(core), opts...)
	return r
}

// phone is a number of the test's own.
func phone() string { return fmt.Sprintf("+4477009%05d", rand.IntN(100000)) }

// smsCode is a fresh 6-digit code.
func smsCode() string { return fmt.Sprintf("%06d", rand.IntN(1000000)) }

// smsEvent builds an SMS code request as auth does, the code sealed.
func smsEvent(t *testing.T, keys *keyring.Keyring, to, purpose, code string, expires time.Time) events.Envelope {
	t.Helper()
	return event(t, keys, events.SubjectSMSCodeRequested, map[string]any{
		"user_id": "0190a8a4-0000-7000-8000-000000000005", "phone": to, "purpose": purpose, "code": code, "expires_at": expires})
}

// waitSMS waits for n messages to `to` and returns them.
func (r *smsRig) waitSMS(t *testing.T, to string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	msgs, err := r.twilio.WaitMessages(ctx, to, n)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		if m.From != r.twilio.From {
			t.Errorf("From = %q, want %s", m.From, r.twilio.From)
		}
		bodies = append(bodies, m.Body)
	}
	return bodies
}

// sentTo counts what the fake accepted for `to`.
func (r *smsRig) sentTo(to string) int {
	n := 0
	for _, m := range r.twilio.Messages() {
		if m.To == to {
			n++
		}
	}
	return n
}

// noSecretInLogs fails when a line of the worker's logs, its message or any field,
// holds one of secrets.
func (r *smsRig) noSecretInLogs(t *testing.T, secrets ...string) {
	t.Helper()
	for _, e := range r.logs.All() {
		fields, _ := json.Marshal(e.ContextMap())
		line := e.Message + " " + string(fields)
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("the worker logged %q: %s", s, line)
			}
		}
	}
}

func TestSMSSentOnceWhenDeliveredTwice(t *testing.T) {
	t.Parallel()
	// The first delivery is left unacked, as by a worker dying after the send: JetStream
	// delivers it again after the ack wait.
	var unacked atomic.Bool
	r := newSMSRig(t, nil, app.WithSMSConsumerOptions(consumer.WithBeforeAck(func(_ context.Context, ev events.Envelope) error {
		if ev.Type == events.SubjectSMSCodeRequested && unacked.CompareAndSwap(false, true) {
			return errors.New("dies before the ack")
		}
		return nil
	})))
	to, code := phone(), smsCode()
	ev := smsEvent(t, r.keys, to, events.SMSPurposeSignIn, code, time.Now().Add(10*time.Minute))
	if strings.Contains(string(ev.Payload), code) {
		t.Fatal("the test event holds the raw code")
	}
	// And the relay publishing the row again past the duplicate window.
	r.nats.Publish(t, r.js, ev, ev.ID)
	r.nats.Publish(t, r.js, ev, ev.ID+"-again")

	bodies := r.waitSMS(t, to, 1)
	if want := "Your sign-in code is " + code + ". It expires in 10 minutes. Do not share it."; bodies[0] != want {
		t.Errorf("body %q, want %q", bodies[0], want)
	}
	settled(t, r.nats, r.js, app.SMSConsumer, 3)
	if n := r.sentTo(to); n != 1 || r.twilio.Requests() != 1 {
		t.Fatalf("%d messages (%d requests) for one event, want 1", n, r.twilio.Requests())
	}
	reg := r.worker.App.Metrics
	if got := metric(t, reg, "token_worker_events_consumed_total",
		map[string]string{"consumer": "sms", "type": events.SubjectSMSCodeRequested, "result": "duplicate"}); got != 2 {
		t.Errorf("events_consumed_total{sms, duplicate} = %v, want 2", got)
	}
	if got := metric(t, reg, "token_worker_sms_sent_total", nil); got != 1 {
		t.Errorf("sms_sent_total = %v, want 1", got)
	}
	// The email consumer acks it as not its own.
	if got := metric(t, reg, "token_worker_events_consumed_total",
		map[string]string{"consumer": "email", "type": events.SubjectSMSCodeRequested, "result": "ignored"}); got != 2 {
		t.Errorf("events_consumed_total{email, sms event, ignored} = %v, want 2", got)
	}
	var kind, state, rcpt string
	if err := workertest.Conn(t).QueryRow(context.Background(),
		"SELECT kind, state, recipient FROM sent_emails WHERE event_id = $1", ev.ID).Scan(&kind, &state, &rcpt); err != nil {
		t.Fatal(err)
	}
	if kind != "sms_sign_in" || state != "sent" || rcpt != to {
		t.Errorf("ledger row %s %s %s", kind, state, rcpt)
	}
	r.noSecretInLogs(t, code)
}

func TestSMSRateLimitedThenSent(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, nil)
	r.twilio.FailNext(1, 429, 20429)
	to, code := phone(), smsCode()
	r.nats.Publish(t, r.js, smsEvent(t, r.keys, to, events.SMSPurposePhoneVerification, code, time.Now().Add(10*time.Minute)), "")
	bodies := r.waitSMS(t, to, 1)
	if want := "Your verification code is " + code + ". It expires in 10 minutes."; bodies[0] != want {
		t.Errorf("body %q, want %q", bodies[0], want)
	}
	settled(t, r.nats, r.js, app.SMSConsumer, 2)
	if n := r.sentTo(to); n != 1 || r.twilio.Requests() != 2 {
		t.Fatalf("%d messages after %d requests, want 1 after 2", n, r.twilio.Requests())
	}
	reg := r.worker.App.Metrics
	if got := metric(t, reg, "token_worker_sms_failed_total", map[string]string{"reason": "rate_limited"}); got != 1 {
		t.Errorf("sms_failed_total{rate_limited} = %v, want 1", got)
	}
	if got := metric(t, reg, "token_worker_events_consumed_total", map[string]string{"consumer": "sms", "result": "retry"}); got != 1 {
		t.Errorf("events_consumed_total{sms, retry} = %v, want 1", got)
	}
	r.noSecretInLogs(t, code)
}

func TestSMSInvalidNumberDeadLettered(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, nil)
	r.twilio.FailNext(1, 400, 21211)
	to, code := phone(), smsCode()
	ev := smsEvent(t, r.keys, to, events.SMSPurposeSignIn, code, time.Now().Add(10*time.Minute))
	r.nats.Publish(t, r.js, ev, "")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	workertest.Eventually(t, 10*time.Second, "the dead-letter stream", func() bool {
		_, err := r.js.Stream(ctx, r.nats.Namespace.Stream(consumer.DeadLetterStream))
		return err == nil
	})
	dl, err := r.js.CreateOrUpdateConsumer(ctx, r.nats.Namespace.Stream(consumer.DeadLetterStream),
		jetstreamConsumer(r.nats.Namespace.Subject("deadletter.auth.sms.>")))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	workertest.Eventually(t, 15*time.Second, "the SMS consumer's dead letter", func() bool {
		batch, err := dl.FetchNoWait(10)
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			typ, _ := r.nats.Namespace.Type(m.Subject())
			got = map[string]string{"type": typ, "consumer": m.Headers().Get(consumer.HeaderConsumer),
				"deliveries": m.Headers().Get(consumer.HeaderDeliveries), "reason": m.Headers().Get(consumer.HeaderReason), "data": string(m.Data())}
			_ = m.Ack()
		}
		return got != nil
	})
	if got["type"] != "deadletter."+events.SubjectSMSCodeRequested || got["consumer"] != app.SMSConsumer || got["deliveries"] != "1" ||
		!strings.Contains(got["reason"], "21211") || !strings.Contains(got["data"], ev.ID) {
		t.Errorf("dead letter = %v; want it at once from %s, naming Twilio's 21211, with the event", got, app.SMSConsumer)
	}
	if strings.Contains(got["reason"], code) || strings.Contains(got["data"], code) {
		t.Error("the dead letter holds the code")
	}
	settled(t, r.nats, r.js, app.SMSConsumer, 1)
	if n := len(r.twilio.Messages()); n != 0 || r.twilio.Requests() != 1 {
		t.Errorf("%d messages after %d requests for a refused number, want none after 1", n, r.twilio.Requests())
	}
	reg := r.worker.App.Metrics
	if got := metric(t, reg, "token_worker_dead_letters_total",
		map[string]string{"consumer": "sms", "type": events.SubjectSMSCodeRequested}); got != 1 {
		t.Errorf("dead_letters_total{sms} = %v, want 1", got)
	}
	if got := metric(t, reg, "token_worker_sms_failed_total", map[string]string{"reason": "rejected"}); got != 1 {
		t.Errorf("sms_failed_total{rejected} = %v, want 1", got)
	}
	if r.worker.App.SMSProvider.State() != gobreaker.StateClosed {
		t.Error("a refused number opened the breaker")
	}
	r.noSecretInLogs(t, code)
}

func TestSMSNoneProviderDrops(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, workertest.Env{"SMS_PROVIDER": "none"})
	to, code := phone(), smsCode()
	ev := smsEvent(t, r.keys, to, events.SMSPurposeSignIn, code, time.Now().Add(10*time.Minute))
	r.nats.Publish(t, r.js, ev, "")
	settled(t, r.nats, r.js, app.SMSConsumer, 1)
	if got := metric(t, r.worker.App.Metrics, "token_worker_events_consumed_total",
		map[string]string{"consumer": "sms", "result": "dropped"}); got != 1 {
		t.Errorf("events_consumed_total{sms, dropped} = %v, want 1", got)
	}
	if n := r.twilio.Requests(); n != 0 {
		t.Errorf("%d requests to Twilio with SMS_PROVIDER=none", n)
	}
	warnings := r.logs.FilterMessageSnippet("SMS dropped").All()
	if len(warnings) != 1 || warnings[0].Level != zapcore.WarnLevel {
		t.Errorf("%d 'SMS dropped' lines, want one warning: %v", len(warnings), warnings)
	}
	var rows int
	if err := workertest.Conn(t).QueryRow(context.Background(), "SELECT count(*) FROM sent_emails WHERE event_id = $1", ev.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Error("a dropped SMS is in the ledger")
	}
	r.noSecretInLogs(t, code, to)
}

func TestSMSExpiredNotSent(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, nil)
	to := phone()
	r.nats.Publish(t, r.js, smsEvent(t, r.keys, to, events.SMSPurposeSignIn, smsCode(), time.Now().Add(-time.Second)), "")
	settled(t, r.nats, r.js, app.SMSConsumer, 1)
	if n := r.twilio.Requests(); n != 0 {
		t.Errorf("an expired code was sent (%d requests)", n)
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_events_consumed_total",
		map[string]string{"consumer": "sms", "result": "expired"}); got != 1 {
		t.Errorf("events_consumed_total{sms, expired} = %v, want 1", got)
	}
}

func TestSMSBreakerHoldsTheConsumer(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, workertest.Env{"WORKER_SMS_BREAKER_FAILURES": "3", "WORKER_SMS_BREAKER_TIMEOUT": "1500ms", "WORKER_MAX_DELIVER": "20"})
	r.twilio.FailNext(1000, 503, 20503)
	reg, b := r.worker.App.Metrics, r.worker.App.SMSProvider
	var tos, codes []string
	for range 4 {
		to, code := phone(), smsCode()
		tos, codes = append(tos, to), append(codes, code)
		r.nats.Publish(t, r.js, smsEvent(t, r.keys, to, events.SMSPurposeSignIn, code, time.Now().Add(10*time.Minute)), "")
	}
	workertest.Eventually(t, 10*time.Second, "the breaker to open", func() bool {
		return b.State() == gobreaker.StateOpen && metric(t, reg, "token_worker_sms_breaker_state", nil) == 2
	})
	opened := time.Now()
	time.Sleep(400 * time.Millisecond) // a fetch under way when it opened (300 ms) ends
	delivered := func() uint64 {
		c, err := r.js.Consumer(context.Background(), r.nats.Namespace.Stream(events.StreamName), app.SMSConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.Delivered.Consumer
	}
	// While it is open nothing is taken: no delivery, no request to Twilio.
	requests, deliveries := r.twilio.Requests(), delivered()
	time.Sleep(600 * time.Millisecond)
	if time.Since(opened) < 1500*time.Millisecond {
		if n := r.twilio.Requests() - requests; n != 0 {
			t.Errorf("%d requests to Twilio with the breaker open", n)
		}
		if d := delivered() - deliveries; d != 0 {
			t.Errorf("%d deliveries with the breaker open, want none", d)
		}
	}
	// Three failures open it; with two events handled at once a fourth may be under way.
	if requests < 3 || requests > 4 {
		t.Errorf("%d requests opened the breaker, want 3 (or 4)", requests)
	}

	r.twilio.FailNext(0, 0, 0) // Twilio is back: the next trial goes through
	for _, to := range tos {
		r.waitSMS(t, to, 1)
	}
	settled(t, r.nats, r.js, app.SMSConsumer, 4)
	workertest.Eventually(t, 5*time.Second, "the breaker to close", func() bool {
		return b.State() == gobreaker.StateClosed && metric(t, reg, "token_worker_sms_breaker_state", nil) == 0
	})
	for _, to := range tos {
		if n := r.sentTo(to); n != 1 {
			t.Errorf("%s got %d messages, want 1", to, n)
		}
	}
	if n := metric(t, reg, "token_worker_dead_letters_total", nil); n != 0 {
		t.Errorf("%v events dead-lettered during a provider outage", n)
	}
	if got := metric(t, reg, "token_worker_sms_failed_total", map[string]string{"reason": "provider"}); got < 3 {
		t.Errorf("sms_failed_total{provider} = %v, want at least 3", got)
	}
	r.noSecretInLogs(t, codes...)
}

// TestSMSCodeNeverLogged runs the paths that log (sent, retried, refused for good,
// under an unknown key) with every level on and looks for the codes in the logs.
func TestSMSCodeNeverLogged(t *testing.T) {
	t.Parallel()
	r := newSMSRig(t, workertest.Env{"WORKER_MAX_DELIVER": "2"})
	_, foreign := workertest.Keys(t, "rotated-away")
	var codes []string
	publish := func(keys *keyring.Keyring) string {
		to, code := phone(), smsCode()
		codes = append(codes, code)
		r.nats.Publish(t, r.js, smsEvent(t, keys, to, events.SMSPurposeSignIn, code, time.Now().Add(10*time.Minute)), "")
		return to
	}
	r.twilio.FailNext(1, 500, 20500)
	sent := publish(r.keys)
	r.waitSMS(t, sent, 1)
	r.twilio.FailNext(1, 400, 21610)
	publish(r.keys)
	publish(foreign)
	settled(t, r.nats, r.js, app.SMSConsumer, 5)
	workertest.Eventually(t, 10*time.Second, "two dead letters", func() bool {
		return metric(t, r.worker.App.Metrics, "token_worker_dead_letters_total", map[string]string{"consumer": "sms"}) == 2
	})
	if len(r.logs.All()) == 0 {
		t.Fatal("the worker logged nothing")
	}
	r.noSecretInLogs(t, codes...)
}

func TestOTPEmailAndPhoneNotice(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	waitEmail := func(to string) workertest.Email {
		t.Helper()
		var msg workertest.Message
		workertest.Eventually(t, 15*time.Second, "the email to "+to, func() bool {
			for _, m := range r.relay.Messages() {
				if m.To[0] == to {
					msg = m
					return true
				}
			}
			return false
		})
		if strings.Contains(string(msg.Raw), "code_sealed") || strings.Contains(string(msg.Raw), "token_sealed") {
			t.Error("the email leaks a sealed field")
		}
		return msg.Parse(t)
	}

	t.Run("otp", func(t *testing.T) {
		to, code, tok := address(t, "jo"), smsCode(), token()
		ev := event(t, r.keys, events.SubjectOTPRequested, map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000006",
			"email": to, "name": "Jo", "code": code, "token": tok, "expires_at": time.Now().Add(10 * time.Minute)})
		if strings.Contains(string(ev.Payload), code) {
			t.Fatal("the test event holds the raw code")
		}
		r.nats.Publish(t, r.js, ev, "")
		e := waitEmail(to)
		link := appURL + "/magic-link?token=" + tok
		if got := e.Subject(); got != "Your sign-in code for TalentForge" {
			t.Errorf("Subject = %q", got)
		}
		for _, want := range []string{"\n" + code + "\n", "\n" + link + "\n", "(in about 10 minutes)", "If you did not ask to sign in, ignore this email"} {
			if !strings.Contains(e.Text, want) {
				t.Errorf("the text part lacks %q:\n%s", want, e.Text)
			}
		}
		if !strings.Contains(e.HTML, ">"+code+"</p>") || !strings.Contains(e.HTML, `href="`+link+`"`) {
			t.Errorf("the HTML part lacks the code or the link:\n%s", e.HTML)
		}
	})

	t.Run("phone notice", func(t *testing.T) {
		to := address(t, "kim")
		r.nats.Publish(t, r.js, event(t, r.keys, events.SubjectPhoneVerified, map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000007",
			"email": to, "name": "Kim", "phone": "+14155550167", "previous_phone": "+447700900123"}), "")
		e := waitEmail(to)
		if got := e.Subject(); got != "A phone number was set on your TalentForge account" {
			t.Errorf("Subject = %q", got)
		}
		if !strings.Contains(e.Text, "+•••••••••67, replacing +••••••••••23.") || !strings.Contains(e.Text, "If this was not you, reset your password") {
			t.Errorf("the text part does not show the masked numbers:\n%s", e.Text)
		}
		if !strings.Contains(e.HTML, "•••••••••67") {
			t.Errorf("the HTML part does not show the masked number:\n%s", e.HTML)
		}
		for _, part := range []string{e.Text, e.HTML} {
			if strings.Contains(part, "4155550167") || strings.Contains(part, "7700900123") {
				t.Errorf("a part shows more than the last two digits:\n%s", part)
			}
		}
	})
}

func TestTwilioSettingsStopTheWorker(t *testing.T) {
	s, err := app.LoadSettings(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	complete := map[string]string{"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
		"TWILIO_AUTH_TOKEN": "s3cr3t-tok", "TWILIO_FROM": "+15005550006"}
	tests := []struct {
		unset, set, value, want string
	}{
		{unset: "TWILIO_ACCOUNT_SID", want: "TWILIO_ACCOUNT_SID: required with SMS_PROVIDER=twilio"},
		{unset: "TWILIO_AUTH_TOKEN", want: "TWILIO_AUTH_TOKEN: required with SMS_PROVIDER=twilio"},
		{unset: "TWILIO_FROM", want: "TWILIO_FROM: required with SMS_PROVIDER=twilio"},
		{set: "TWILIO_FROM", value: "+0123", want: "TWILIO_FROM:"},
		{set: "TWILIO_FROM", value: "MGnothex", want: "TWILIO_FROM:"},
	}
	for _, tt := range tests {
		env := map[string]string{}
		for k, v := range complete {
			env[k] = v
		}
		delete(env, tt.unset)
		if tt.set != "" {
			env[tt.set] = tt.value
		}
		cfg, err := config.Load(":8083", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		// The check comes before any connection: nothing here is reachable.
		cfg.DatabaseURL, cfg.NATSURL = "postgres://nobody@127.0.0.1:1/x", "nats://127.0.0.1:1"
		a, err := app.New(cfg, s, nil, zap.NewNop())
		if err == nil {
			_ = a.Close()
			t.Fatalf("%v: the worker started", env)
		}
		if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%v: %q, want one line starting %q", env, err, tt.want)
		}
	}
}

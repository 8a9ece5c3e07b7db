package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/app"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

const appURL = "https://app.talentforge.test"

func TestEachEmail(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name, typ, subject string
		token              bool
		linkPath           string
		extra              map[string]any
		mustSay            string
	}{
		{"verification", "auth.email.verification_requested", "Confirm your email address for TalentForge", true, "/verify-email", nil, "confirm your email address"},
		{"password reset", "auth.email.password_reset_requested", "Reset your TalentForge password", true, "/reset-password", nil, "reset the password"},
		{"register existing", "auth.email.register_existing", "Someone tried to sign up to TalentForge with your address", false, "", nil, "tried to create a new TalentForge account"},
		{"password changed", "auth.user.password_changed", "Your TalentForge password was changed", false, "", map[string]any{"how": "change"}, "was changed on"},
		{"email verified", "auth.user.email_verified", "Your TalentForge email address is confirmed", false, "", nil, "Your email address is confirmed"},
		{"mfa enabled", "auth.user.mfa_enabled", "Two-step sign-in is on for your TalentForge account", false, "", nil, "Two-step sign-in is now on"},
		{"mfa disabled", "auth.user.mfa_disabled", "Two-step sign-in was turned off for your TalentForge account", false, "", nil, "Two-step sign-in was turned off"},
		{"passkey added", "auth.passkey.added", "A passkey was added to your TalentForge account", false, "",
			map[string]any{"passkey_id": "0190a8a4-0000-7000-8000-0000000000a1", "passkey_name": "Laptop"}, "A passkey was added"},
		{"passkey removed", "auth.passkey.removed", "A passkey was removed from your TalentForge account", false, "",
			map[string]any{"passkey_id": "0190a8a4-0000-7000-8000-0000000000a1", "passkey_name": "Laptop"}, "A passkey was removed"},
		{"otp", "auth.email.otp_requested", "Your sign-in code for TalentForge", true, "/magic-link",
			map[string]any{"code": "482913"}, "\n482913\n"},
		{"phone verified", "auth.user.phone_verified", "A phone number was set on your TalentForge account", false, "",
			map[string]any{"phone": "+14155550167"}, "+•••••••••67"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := address(t, "ann")
			payload := map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000001", "email": to, "name": "Ann <b>Lee</b>"}
			raw := ""
			if tt.token {
				raw = token()
				payload["token"], payload["expires_at"] = raw, expires
			}
			for k, v := range tt.extra {
				payload[k] = v
			}
			ev := event(t, r.keys, tt.typ, payload)
			if strings.Contains(string(ev.Payload), raw) && raw != "" {
				t.Fatal("the test event holds the raw token")
			}
			r.nats.Publish(t, r.js, ev, "")

			var msg workertest.Message
			workertest.Eventually(t, 15*time.Second, "the email to "+to, func() bool {
				for _, m := range r.relay.Messages() {
					if len(m.To) == 1 && m.To[0] == to {
						msg = m
						return true
					}
				}
				return false
			})
			e := msg.Parse(t)
			if got := e.Header.Get("To"); !strings.Contains(got, to) {
				t.Errorf("To = %q, want %s", got, to)
			}
			if msg.From != "no-reply@talentforge.test" {
				t.Errorf("MAIL FROM = %q", msg.From)
			}
			if got := e.Subject(); got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
			if got, want := e.Header.Get("Message-Id"), "<"+ev.ID+"@talentforge.test>"; got != want {
				t.Errorf("Message-ID = %q, want %q", got, want)
			}
			if e.Text == "" || e.HTML == "" {
				t.Fatalf("want a text and an HTML part, got text %d bytes, html %d bytes", len(e.Text), len(e.HTML))
			}
			if !strings.HasPrefix(e.Text, "Hi Ann <b>Lee</b>,") {
				t.Errorf("text greeting: %q", firstLine(e.Text))
			}
			if !strings.Contains(e.HTML, "Hi Ann &lt;b&gt;Lee&lt;/b&gt;,") || strings.Contains(e.HTML, "<b>Lee") {
				t.Errorf("the HTML part does not greet with the escaped name:\n%s", e.HTML)
			}
			if !strings.Contains(e.Text, tt.mustSay) || !strings.Contains(e.Text, "TalentForge") {
				t.Errorf("text part does not say %q:\n%s", tt.mustSay, e.Text)
			}
			if tt.token {
				link := appURL + tt.linkPath + "?token=" + raw
				if !strings.Contains(e.Text, "\n"+link+"\n") {
					t.Errorf("text part lacks the link %s on its own line:\n%s", link, e.Text)
				}
				if !strings.Contains(e.HTML, `href="`+link+`"`) {
					t.Errorf("HTML part lacks href=%q:\n%s", link, e.HTML)
				}
				if n := strings.Count(e.Text, "token="); n != 1 {
					t.Errorf("text part has %d links with a token, want 1", n)
				}
			} else if strings.Contains(e.Text, "token=") || strings.Contains(e.HTML, "token=") {
				t.Errorf("a notice carries a token link")
			}
			if strings.Contains(string(msg.Raw), "token_sealed") {
				t.Error("the email leaks the sealed token")
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		settled(t, r.nats, r.js, app.EmailConsumer, 5)
		reg := r.worker.App.Metrics
		if got := metric(t, reg, "token_worker_emails_sent_total", map[string]string{"kind": "verification"}); got != 1 {
			t.Errorf("emails_sent_total{kind=verification} = %v, want 1", got)
		}
		if got := metric(t, reg, "token_worker_events_consumed_total",
			map[string]string{"consumer": "email", "type": "auth.email.password_reset_requested", "result": "sent"}); got != 1 {
			t.Errorf("events_consumed_total{email, reset, sent} = %v, want 1", got)
		}
	})
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestRedeliveredEventSendsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	to := address(t, "bob")
	ev := event(t, r.keys, "auth.email.password_reset_requested",
		map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000002", "email": to, "name": "", "token": token(), "expires_at": time.Now().Add(time.Hour)})
	// The outbox relay publishing a row twice past the stream's duplicate window.
	r.nats.Publish(t, r.js, ev, ev.ID)
	r.nats.Publish(t, r.js, ev, ev.ID+"-again")
	settled(t, r.nats, r.js, app.EmailConsumer, 2)
	if n := len(r.relay.Messages()); n != 1 {
		t.Fatalf("the relay got %d emails, want 1", n)
	}
	e := r.relay.Messages()[0].Parse(t)
	if !strings.HasPrefix(e.Text, "Hi,\n") {
		t.Errorf("greeting without a name: %q", firstLine(e.Text))
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_events_consumed_total",
		map[string]string{"consumer": "email", "result": "duplicate"}); got != 1 {
		t.Errorf("events_consumed_total{result=duplicate} = %v, want 1", got)
	}
}

func TestRelayRefusesThenAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stage string
		err   error
	}{
		{"4xx at MAIL", workertest.StageMail, workertest.Refuse(451, "try again later")},
		{"5xx at DATA", workertest.StageData, workertest.Refuse(554, "transaction failed")},
		{"421 at EHLO", workertest.StageHello, workertest.Refuse(421, "service not available")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, workertest.Env{"WORKER_SMTP_BREAKER_FAILURES": "100"})
			var refusals atomic.Int32
			r.relay.Fail(func(stage string) error {
				if stage == tt.stage && refusals.Load() < 3 {
					refusals.Add(1)
					return tt.err
				}
				return nil
			})
			to := address(t, "cy")
			ev := event(t, r.keys, "auth.email.verification_requested",
				map[string]any{"email": to, "name": "Cy", "token": token(), "expires_at": time.Now().Add(time.Hour)})
			r.nats.Publish(t, r.js, ev, "")
			r.relay.WaitFor(t, 1, 15*time.Second)
			info := settled(t, r.nats, r.js, app.EmailConsumer, 1)
			if n := len(r.relay.Messages()); n != 1 {
				t.Fatalf("the relay accepted %d emails, want exactly 1", n)
			}
			if refusals.Load() != 3 {
				t.Fatalf("the relay refused %d times, want 3", refusals.Load())
			}
			// Each failed delivery is one failed email; a client may retry EHLO as HELO
			// within one attempt, so the refusals can take fewer deliveries.
			failed := metric(t, r.worker.App.Metrics, "token_worker_emails_failed_total",
				map[string]string{"kind": "verification", "reason": "relay"})
			if failed < 1 || failed > 3 || uint64(failed)+1 != info.Delivered.Consumer {
				t.Errorf("emails_failed_total{relay} = %v after %d deliveries", failed, info.Delivered.Consumer)
			}
		})
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	r := newRig(t, workertest.Env{"WORKER_SMTP_BREAKER_FAILURES": "3", "WORKER_SMTP_BREAKER_TIMEOUT": "200ms", "WORKER_MAX_DELIVER": "20"})
	var down atomic.Bool
	down.Store(true)
	r.relay.Fail(func(stage string) error {
		if down.Load() {
			return workertest.Refuse(421, "relay.test shutting down")
		}
		return nil
	})
	reg, m := r.worker.App.Metrics, r.worker.App.Mailer
	var tos []string
	for i := range 4 {
		to := address(t, fmt.Sprintf("dee%d", i))
		tos = append(tos, to)
		r.nats.Publish(t, r.js, event(t, r.keys, "auth.email.register_existing", map[string]any{"email": to, "name": "Dee"}), "")
	}
	workertest.Eventually(t, 10*time.Second, "the breaker to open", func() bool {
		return m.State() == gobreaker.StateOpen && metric(t, reg, "token_worker_smtp_breaker_state", nil) == 2
	})
	// While the breaker is open no event is taken: the consumer waits, the events keep
	// their deliveries, and the relay only sees the probes (one per breaker timeout).
	time.Sleep(500 * time.Millisecond) // a fetch under way when it opened (300 ms) ends
	delivered := func() uint64 {
		c, err := r.js.Consumer(context.Background(), r.nats.Namespace.Stream(events.StreamName), app.EmailConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.Delivered.Consumer
	}
	before, deliveredBefore := r.relay.Attempts(), delivered()
	time.Sleep(500 * time.Millisecond)
	// A probe every 200 ms timeout, each greeting at most twice (EHLO, then HELO).
	if extra := r.relay.Attempts() - before; extra > 8 {
		t.Errorf("the relay got %d greetings in 500 ms with the breaker open, want only probes", extra)
	}
	if d := delivered(); d != deliveredBefore {
		t.Errorf("%d deliveries while the breaker was open, want none", d-deliveredBefore)
	}
	if n := len(r.relay.Messages()); n != 0 {
		t.Fatalf("%d emails accepted while the relay refuses", n)
	}

	down.Store(false)
	r.relay.WaitFor(t, 4, 15*time.Second)
	settled(t, r.nats, r.js, app.EmailConsumer, 4)
	workertest.Eventually(t, 5*time.Second, "the breaker to close", func() bool {
		return m.State() == gobreaker.StateClosed && metric(t, reg, "token_worker_smtp_breaker_state", nil) == 0
	})
	got := map[string]int{}
	for _, msg := range r.relay.Messages() {
		got[msg.To[0]]++
	}
	for _, to := range tos {
		if got[to] != 1 {
			t.Errorf("%s got %d emails, want 1", to, got[to])
		}
	}
	if n := metric(t, reg, "token_worker_dead_letters_total", nil); n != 0 {
		t.Errorf("%v events dead-lettered during a relay outage", n)
	}
}

// The worker dies after the relay accepted the email and the ledger recorded it, but
// before the ack: the event comes back to a new worker, which sends nothing.
func TestKilledBeforeAckSendsOnce(t *testing.T) {
	t.Parallel()
	n := workertest.SharedNATS(t)
	relay := workertest.StartSMTP(t)
	js := n.JetStream(t)
	spec, keys := workertest.Keys(t, "k1")

	var first *workertest.Worker
	killed := make(chan struct{})
	var once atomic.Bool
	hook := consumer.WithBeforeAck(func(context.Context, events.Envelope) error {
		if once.CompareAndSwap(false, true) {
			first.App.NATS.Close() // the process dies: no ack will ever leave it
			close(killed)
		}
		return errors.New("killed before the ack")
	})
	first = workertest.StartWorker(t, n, relay, spec, nil, app.WithEmailConsumerOptions(hook))

	to := address(t, "eve")
	ev := event(t, keys, "auth.email.verification_requested",
		map[string]any{"email": to, "name": "Eve", "token": token(), "expires_at": time.Now().Add(time.Hour)})
	n.Publish(t, js, ev, "")
	select {
	case <-killed:
	case <-time.After(15 * time.Second):
		t.Fatal("the worker never reached the ack")
	}
	if got := len(relay.Messages()); got != 1 {
		t.Fatalf("the relay got %d emails before the kill, want 1", got)
	}
	first.Stop()

	second := workertest.StartWorker(t, n, relay, spec, nil)
	info := settled(t, n, js, app.EmailConsumer, 2)
	if info.NumRedelivered != 0 || info.Delivered.Consumer < 2 {
		t.Logf("consumer info: %+v", info)
	}
	if got := len(relay.Messages()); got != 1 {
		t.Fatalf("the relay got %d emails after the restart, want 1", got)
	}
	if got := metric(t, second.App.Metrics, "token_worker_events_consumed_total",
		map[string]string{"consumer": "email", "result": "duplicate"}); got != 1 {
		t.Errorf("the restarted worker's duplicate count = %v, want 1", got)
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	r := newRig(t, workertest.Env{"WORKER_MAX_DELIVER": "3"})
	// Sealed under a key the worker does not have: each delivery fails.
	_, foreign := workertest.Keys(t, "rotated-away")
	unknownKid := event(t, foreign, "auth.email.verification_requested",
		map[string]any{"email": address(t, "fay"), "name": "Fay", "token": token(), "expires_at": time.Now().Add(time.Hour)})
	r.nats.Publish(t, r.js, unknownKid, "")
	// Not an envelope at all: no retry can help.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.js.Publish(ctx, r.nats.Namespace.Subject("auth.email.register_existing"), []byte(`{"id": 42`)); err != nil {
		t.Fatal(err)
	}

	workertest.Eventually(t, 10*time.Second, "the dead-letter stream", func() bool {
		_, err := r.js.Stream(ctx, r.nats.Namespace.Stream(consumer.DeadLetterStream))
		return err == nil
	})
	dl, err := r.js.CreateOrUpdateConsumer(ctx, r.nats.Namespace.Stream(consumer.DeadLetterStream), jetstreamConsumer(r.nats.Namespace.Subject("deadletter.auth.email.>")))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	workertest.Eventually(t, 15*time.Second, "two dead letters from the email consumer", func() bool {
		batch, err := dl.FetchNoWait(10)
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			if m.Headers().Get(consumer.HeaderConsumer) == app.EmailConsumer {
				typ, _ := r.nats.Namespace.Type(m.Subject())
				got[typ] = map[string]string{
					"deliveries": m.Headers().Get(consumer.HeaderDeliveries),
					"reason":     m.Headers().Get(consumer.HeaderReason),
					"data":       string(m.Data()),
				}
			}
			_ = m.Ack()
		}
		return len(got) == 2
	})
	v := got["deadletter.auth.email.verification_requested"]
	if v == nil || v["deliveries"] != "3" || !strings.Contains(v["reason"], "unknown key") || !strings.Contains(v["data"], unknownKid.ID) {
		t.Errorf("unknown-kid dead letter = %v; want it after 3 deliveries, naming the unknown key, with the event", v)
	}
	if v := got["deadletter.auth.email.register_existing"]; v == nil || v["deliveries"] != "1" || v["data"] != `{"id": 42` {
		t.Errorf("malformed-event dead letter = %v; want it at once, as it came", v)
	}
	settled(t, r.nats, r.js, app.EmailConsumer, 4)
	if n := len(r.relay.Messages()); n != 0 {
		t.Errorf("%d emails sent for events that cannot be sent", n)
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_dead_letters_total",
		map[string]string{"consumer": "email", "type": "auth.email.verification_requested"}); got != 1 {
		t.Errorf("dead_letters_total = %v, want 1", got)
	}
}

func TestPerAddressCapAndExpiredLinks(t *testing.T) {
	t.Parallel()
	r := newRig(t, workertest.Env{"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "2"})
	to := address(t, "gus")
	for range 4 {
		r.nats.Publish(t, r.js, event(t, r.keys, "auth.email.register_existing", map[string]any{"email": to, "name": "Gus"}), "")
	}
	other := address(t, "hal")
	r.nats.Publish(t, r.js, event(t, r.keys, "auth.email.password_reset_requested",
		map[string]any{"email": other, "name": "Hal", "token": token(), "expires_at": time.Now().Add(-time.Minute)}), "")
	settled(t, r.nats, r.js, app.EmailConsumer, 5)
	sent := map[string]int{}
	for _, m := range r.relay.Messages() {
		sent[m.To[0]]++
	}
	if sent[to] != 2 {
		t.Errorf("%s got %d emails with a cap of 2 per hour, want 2", to, sent[to])
	}
	if sent[other] != 0 {
		t.Errorf("an expired reset link was sent")
	}
	reg := r.worker.App.Metrics
	if got := metric(t, reg, "token_worker_events_consumed_total", map[string]string{"consumer": "email", "result": "capped"}); got != 2 {
		t.Errorf("events_consumed_total{capped} = %v, want 2", got)
	}
	if got := metric(t, reg, "token_worker_events_consumed_total", map[string]string{"consumer": "email", "result": "expired"}); got != 1 {
		t.Errorf("events_consumed_total{expired} = %v, want 1", got)
	}
	var capped int
	if err := workertest.Conn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM sent_emails WHERE recipient = $1 AND state = 'capped'", to).Scan(&capped); err != nil {
		t.Fatal(err)
	}
	if capped != 2 {
		t.Errorf("%d capped rows, want 2", capped)
	}
}

package tokenhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/webhook"
)

// receiver is a hook receiver on a real socket: it checks each call's signature with
// the official Standard Webhooks library and answers what the test sets.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	wh     *standardwebhooks.Webhook

	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request)
	bodies [][]byte
	ids    []string
	bad    []string // signature failures
	calls  atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{t: t, secret: webhook.NewSecret()}
	wh, err := standardwebhooks.NewWebhook(rc.secret)
	if err != nil {
		t.Fatal(err)
	}
	rc.wh = wh
	rc.answer = func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"claims":{}}`) }
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
		if err := rc.wh.Verify(body, r.Header); err != nil || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/json" {
			rc.bad = append(rc.bad, fmt.Sprintf("%s %s: %v", r.Method, r.Header.Get("Content-Type"), err))
		}
		answer := rc.answer
		rc.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) set(f func(w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) respond(status int, body string) {
	rc.set(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func (rc *receiver) checkSignatures() {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		rc.t.Fatalf("calls not signed as Standard Webhooks sign: %v", rc.bad)
	}
}

func (rc *receiver) hook(t *testing.T, mod func(*Config)) (*Hook, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{URL: rc.srv.URL + "/claims", Secret: rc.secret, Timeout: time.Second, Metrics: reg}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func request() Request {
	return Request{Type: TypeIssued,
		User:    map[string]any{"id": "u-1", "email": "u@example.com", "roles": []string{"user"}},
		Session: Session{ID: "s-1", AMR: []string{"pwd"}, CreatedAt: time.Now()},
		Claims:  map[string]any{"sub": "u-1", "sid": "s-1", "roles": []string{"user"}}}
}

func calls(t *testing.T, reg *prometheus.Registry, outcome string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "access_token_hook_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

func TestCallIsSignedAndAnswersExt(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.respond(http.StatusOK, `{"claims": {"tenant": "acme", "seats": 12345678901234567890, "org": {"plan": "pro"}}}`)
	h, reg := rc.hook(t, nil)
	ext, err := h.Extend(context.Background(), request())
	if err != nil {
		t.Fatal(err)
	}
	if ext["tenant"] != "acme" || ext["seats"] != json.Number("12345678901234567890") || ext["org"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("ext = %#v", ext)
	}
	rc.respond(http.StatusNoContent, "")
	if _, err := h.Extend(context.Background(), request()); err == nil {
		t.Fatal("an empty 204 passed for an answer")
	}
	rc.checkSignatures()

	rc.mu.Lock()
	defer rc.mu.Unlock()
	var got struct {
		Type    string         `json:"type"`
		User    map[string]any `json:"user"`
		Session map[string]any `json:"session"`
		Claims  map[string]any `json:"claims"`
	}
	if err := json.Unmarshal(rc.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != TypeIssued || got.User["email"] != "u@example.com" || got.Session["id"] != "s-1" ||
		got.Session["created_at"] == nil || got.Claims["sid"] != "s-1" {
		t.Fatalf("the hook was sent %s", rc.bodies[0])
	}
	if len(rc.ids) != 2 || rc.ids[0] == rc.ids[1] || !strings.HasPrefix(rc.ids[0], "msg_") {
		t.Fatalf("webhook-id %q: want a fresh id per call", rc.ids)
	}
	if calls(t, reg, OutcomeOK) != 1 || calls(t, reg, OutcomeAnswer) != 1 {
		t.Fatalf("ok %d, bad_answer %d", calls(t, reg, OutcomeOK), calls(t, reg, OutcomeAnswer))
	}
}

// Anything but 2xx and {"claims": {...}} within the bounds fails (closed here); a
// missing, null or empty claims object adds nothing.
func TestAnswers(t *testing.T) {
	t.Parallel()
	redirected := atomic.Bool{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		redirected.Store(true)
		_, _ = io.WriteString(w, `{"claims":{"tenant":"acme"}}`)
	}))
	t.Cleanup(target.Close)
	big := `{"claims":{"x":"` + strings.Repeat("a", MaxAnswerBytes) + `"}}`
	bigClaims := `{"claims":{"x":"` + strings.Repeat("a", MaxClaimsBytes) + `"}}`
	padded := `{"claims":{"x":"y"}}` + strings.Repeat(" ", MaxAnswerBytes)
	cases := []struct {
		name, body string
		status     int
		outcome    string // "" : no claims, no error
	}{
		{"missing claims", `{"other": 1}`, 200, ""},
		{"null claims", `{"claims": null}`, 200, ""},
		{"empty claims", `{"claims": {}}`, 200, ""},
		{"201 counts", `{"claims": {}}`, 201, ""},
		{"server error", `{"claims": {"tenant": "acme"}}`, 500, OutcomeStatus},
		{"forbidden", `{"claims": {"tenant": "acme"}}`, 403, OutcomeStatus},
		{"not json", `claims: tenant`, 200, OutcomeAnswer},
		{"empty body", ``, 200, OutcomeAnswer},
		{"null", `null`, 200, OutcomeAnswer},
		{"array", `[{"claims": {}}]`, 200, OutcomeAnswer},
		{"claims array", `{"claims": ["a"]}`, 200, OutcomeAnswer},
		{"claims string", `{"claims": "tenant=acme"}`, 200, OutcomeAnswer},
		{"claims number", `{"claims": 1}`, 200, OutcomeAnswer},
		{"trailing data", `{"claims": {}} {"claims": {"x": 1}}`, 200, OutcomeAnswer},
		{"truncated", `{"claims": {"x": `, 200, OutcomeAnswer},
		{"answer over the limit", big, 200, OutcomeAnswer},
		{"padding over the limit", padded, 200, OutcomeAnswer},
		{"claims over the limit", bigClaims, 200, OutcomeAnswer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t)
			rc.respond(tc.status, tc.body)
			h, reg := rc.hook(t, nil)
			ext, err := h.Extend(context.Background(), request())
			if tc.outcome == "" {
				if err != nil || ext != nil {
					t.Fatalf("got %v, %v; want no claims and no error", ext, err)
				}
				return
			}
			if !errors.Is(err, ErrUnavailable) || ext != nil {
				t.Fatalf("got %v, %v; want ErrUnavailable", ext, err)
			}
			if calls(t, reg, tc.outcome) != 1 {
				t.Fatalf("outcome %s not counted (err %v)", tc.outcome, err)
			}
		})
	}
	t.Run("redirect not followed", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t)
		rc.set(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
		})
		h, reg := rc.hook(t, nil)
		if _, err := h.Extend(context.Background(), request()); !errors.Is(err, ErrUnavailable) || calls(t, reg, OutcomeStatus) != 1 {
			t.Fatalf("a redirect: %v", err)
		}
		if redirected.Load() {
			t.Fatal("the redirect was followed")
		}
	})
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	h, reg := rc.hook(t, func(c *Config) { c.Timeout = 100 * time.Millisecond })
	_, err := h.Extend(context.Background(), request())
	if !errors.Is(err, ErrUnavailable) || calls(t, reg, OutcomeTimeout) != 1 {
		t.Fatalf("a hook that never answers: %v", err)
	}
	if strings.Contains(err.Error(), rc.srv.URL) || strings.Contains(err.Error(), "/claims") {
		t.Fatalf("the error quotes the URL: %v", err)
	}
}

// After Failures consecutive failures the hook is not called while the breaker is open;
// once OpenFor passed, one call probes and a success closes it.
func TestBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.respond(http.StatusBadGateway, `{}`)
	h, reg := rc.hook(t, func(c *Config) { c.Failures = 3; c.OpenFor = 300 * time.Millisecond })
	for i := range 3 {
		if h.Rejecting() {
			t.Fatalf("rejecting after %d failures", i)
		}
		if _, err := h.Extend(context.Background(), request()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if !h.Rejecting() {
		t.Fatal("the breaker did not open after 3 consecutive failures")
	}
	rc.respond(http.StatusOK, `{"claims":{"tenant":"acme"}}`)
	before := rc.calls.Load()
	for range 5 {
		if _, err := h.Extend(context.Background(), request()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("while open: %v", err)
		}
	}
	if n := rc.calls.Load() - before; n != 0 {
		t.Fatalf("the hook was called %d times while the breaker was open", n)
	}
	if calls(t, reg, OutcomeBreakerOpen) != 5 {
		t.Fatalf("breaker_open = %d, want 5", calls(t, reg, OutcomeBreakerOpen))
	}
	if v := testutil.ToFloat64(h.m.breaker); v != 2 {
		t.Fatalf("breaker gauge = %v, want 2 (open)", v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Rejecting() {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never half-opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ext, err := h.Extend(context.Background(), request())
	if err != nil || ext["tenant"] != "acme" {
		t.Fatalf("the probe: %v %v", ext, err)
	}
	if v := testutil.ToFloat64(h.m.breaker); v != 0 {
		t.Fatalf("breaker gauge = %v after a good probe, want 0 (closed)", v)
	}
	rc.checkSignatures()
}

// Failing open: no claims, no error, a warning that names neither the secret, the URL
// nor any claim, and the fallback metric.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.respond(http.StatusInternalServerError, `{"claims":{"tenant":"leak-me"}}`)
	core, logs := observer.New(zapcore.WarnLevel)
	h, reg := rc.hook(t, func(c *Config) { c.FailOpen = true; c.Log = zap.New(core); c.Failures = 2 })
	for range 4 { // past the breaker too
		ext, err := h.Extend(context.Background(), request())
		if err != nil || ext != nil {
			t.Fatalf("failing open: %v %v", ext, err)
		}
	}
	if h.Rejecting() {
		t.Fatal("a hook failing open rejects")
	}
	if v := testutil.ToFloat64(h.m.fallbacks); v != 4 {
		t.Fatalf("fallbacks = %v, want 4", v)
	}
	if calls(t, reg, OutcomeStatus) != 2 || calls(t, reg, OutcomeBreakerOpen) != 2 {
		t.Fatalf("bad_status %d, breaker_open %d", calls(t, reg, OutcomeStatus), calls(t, reg, OutcomeBreakerOpen))
	}
	if logs.FilterMessageSnippet("without its claims").Len() != 4 {
		t.Fatalf("warnings: %v", logs.All())
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		for _, secret := range []string{rc.secret, strings.TrimPrefix(rc.secret, "whsec_"), "leak-me", rc.srv.URL, "u@example.com"} {
			if strings.Contains(e.Message+string(line), secret) {
				t.Fatalf("a log line holds %q: %s %s", secret, e.Message, line)
			}
		}
	}
}

// A caller that goes away is an error, but not the hook's failure: it never opens
// the breaker.
func TestCallerCancelDoesNotTripTheBreaker(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	entered := make(chan struct{}, 8)
	rc.set(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	})
	h, reg := rc.hook(t, func(c *Config) { c.Failures = 1; c.FailOpen = true })
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-entered; cancel() }()
		if _, err := h.Extend(ctx, request()); err == nil {
			t.Fatal("a canceled call answered no error")
		}
		cancel()
	}
	if calls(t, reg, OutcomeCanceled) != 3 || calls(t, reg, OutcomeBreakerOpen) != 0 {
		t.Fatalf("canceled %d, breaker_open %d", calls(t, reg, OutcomeCanceled), calls(t, reg, OutcomeBreakerOpen))
	}
	if v := testutil.ToFloat64(h.m.fallbacks); v != 0 {
		t.Fatalf("fallbacks = %v for callers that went away", v)
	}
}

func TestFromConfigAndNew(t *testing.T) {
	t.Parallel()
	if h, err := FromConfig(config.AccessTokenHook{}, nil, nil); h != nil || err != nil {
		t.Fatalf("no URL: %v %v, want no hook", h, err)
	}
	secret := webhook.NewSecret()
	h, err := FromConfig(config.AccessTokenHook{URL: "http://hook.internal/claims", Secret: secret, Timeout: time.Second, Failure: "open"}, prometheus.NewRegistry(), nil)
	if err != nil || !h.FailsOpen() {
		t.Fatalf("open: %v %v", h, err)
	}
	for _, c := range []Config{
		{URL: "http://hook.internal/claims", Secret: "whsec_short"},
		{URL: "http://hook.internal/claims", Secret: "not-whsec"},
		{URL: "/claims", Secret: secret},
		{URL: "ftp://hook.internal/claims", Secret: secret},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		} else if strings.Contains(err.Error(), c.Secret) {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
	// Two hooks on one registry share the metrics rather than panic.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Config{URL: "http://hook.internal/claims", Secret: secret, Metrics: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

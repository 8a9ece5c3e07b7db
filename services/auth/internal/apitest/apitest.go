package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/services/auth/internal/app"
)

var databases = platformtest.NewDatabases("auth_test_")

// Database creates one migrated database for the test binary; DropDatabase drops it.
func Database(t testing.TB) string {
	t.Helper()
	return databases.Shared(t)
}

// NewDatabase creates a migrated database for one test and drops it when the test
// ends: for a test whose outbox relay must not publish (and clear) other tests' events.
// Pass it as DATABASE_URL to Start.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return databases.Own(t)
}

// DropDatabase removes the test binary's database; call it from TestMain.
func DropDatabase() { databases.Drop() }

// Env is one running auth service.
type Env struct {
	T   testing.TB
	URL string
	App *app.App
	Cfg *config.Config
	// Client does not follow redirects and has a short timeout: a hang is a failure.
	Client *http.Client
	// emails: the email request processor runs (Start).
	emails bool
}

// Start runs the service with test settings, overridden by env (names as in API.md).
// EVENT_KEYS and MFA_ENCRYPTION_KEYS are random keys of the service's own (the event
// key's id too, so WaitEmailRequests knows this service's requests). The outbox relay
// is built but does not run, so the events the service wrote stay in the outbox for the
// test to read (OutboxPayload, OutboxToken); RunRelay starts it. The email request
// processor runs, as in production.
func Start(t testing.TB, env map[string]string) *Env {
	t.Helper()
	return start(t, env, true)
}

// StartWithoutEmailProcessor is Start with the email request processor not running: the
// forgot-password and resend requests it accepts stay in email_requests, as those of a
// replica that stopped right after answering.
func StartWithoutEmailProcessor(t testing.TB, env map[string]string) *Env {
	t.Helper()
	return start(t, env, false)
}

func start(t testing.TB, env map[string]string, emails bool) *Env {
	t.Helper()
	// On the shared NATS every test has streams and subjects of its own, so relays and
	// consumers of parallel tests (and a `make run` stack) never see each other's events.
	cfg := platformtest.Settings(t, map[string]string{
		"DATABASE_URL":                Database(t),
		"JWT_KEYS_DIR":                t.TempDir(),
		"PUBLIC_URL":                  "http://auth.test",
		"LOG_LEVEL":                   "error",
		"PASSWORD_ARGON_MEMORY_KIB":   "1024",
		"PASSWORD_ARGON_ITERATIONS":   "1",
		"PASSWORD_HASH_CONCURRENCY":   "4",
		"EMAIL_VERIFICATION_REQUIRED": "true",
		// Every test binary shares 127.0.0.1 and one Redis: limits are off unless a
		// test turns them on (and then it sends its own X-Forwarded-For).
		"RATE_LIMIT_ENABLED":  "false",
		"EVENT_KEYS":          platformtest.KeySpec("test-" + platformtest.RandomHex(6)),
		"MFA_ENCRYPTION_KEYS": platformtest.KeySpec("test"),
	}, env, platformtest.WithNamespace()).Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	opts := []app.Option{app.WithoutRelay()}
	if !emails {
		opts = append(opts, app.WithoutEmailProcessor())
	}
	a, err := app.New(ctx, cfg, zap.NewNop(), opts...)
	if err != nil {
		cancel()
		t.Fatalf("start auth: %v", err)
	}
	platformtest.PingRedis(t, a.Redis)
	// A test that names its own NATS (StartNATS) may have it down on purpose.
	if !platformtest.OwnNATS(env) {
		platformtest.PingNATS(t, a.NATS)
	}
	ln := platformtest.Listen(t)
	platformtest.Serve(t, "server", cancel, func() error { return a.Server.Serve(ctx, ln) }, a.Close)
	return &Env{
		T: t, URL: "http://" + ln.Addr().String(), App: a, Cfg: cfg, emails: emails,
		Client: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// RunRelay runs the service's outbox relay, as production does, until the test ends.
// Use it on a database of the test's own (NewDatabase): the relay publishes every
// pending event and clears its payload.
func (e *Env) RunRelay() {
	stop := e.App.Relay.Start(context.Background())
	e.T.Cleanup(func() { _ = stop() })
}

// Response is a read answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Code returns error.code of a v1 error body ("" when there is none).
func (r *Response) Code() string {
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &body)
	return body.Error.Code
}

// Request sends a raw request. body may be nil, a string/[]byte (sent as is), or any
// value (sent as JSON). Content-Type defaults to application/json when there is a body.
func (e *Env) Request(method, path string, body any, header http.Header) *Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		e.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	// Forgot-password and resend answer before their email is decided; a test reads
	// the outcome (an outbox event, or none) as the old synchronous answer left it.
	if res.StatusCode == http.StatusAccepted && e.emails &&
		(strings.HasSuffix(path, "/auth/password/forgot") || strings.HasSuffix(path, "/auth/email/resend") ||
			strings.HasSuffix(path, "/auth/otp")) {
		e.WaitEmailRequests()
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: out}
}

// WaitEmailRequests waits, up to 30 s, until the service's processor has handled every
// forgot-password and resend request the service accepted (those whose address is
// sealed under its event key): their email, if any, is in the outbox. Request calls it
// after each 202 of those routes.
func (e *Env) WaitEmailRequests() {
	e.T.Helper()
	probe, err := e.App.EventKeys.Seal(nil, "probe")
	if err != nil {
		e.T.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.App.DB.NewSelect().Table("email_requests").Where("email_sealed->>'kid' = ?", probe.KID).
			Count(context.Background())
		if err != nil {
			e.T.Fatalf("count email requests: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("%d email requests still waiting after 30 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Do sends a JSON request with an optional bearer token.
func (e *Env) Do(method, path string, body any, bearer string) *Response {
	e.T.Helper()
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return e.Request(method, path, body, h)
}

// Expect fails the test unless the answer has status (and code, when not empty).
func Expect(t testing.TB, r *Response, status int, code string) {
	t.Helper()
	if r.Status != status || (code != "" && r.Code() != code) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

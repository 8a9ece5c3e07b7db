package workertest

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/services/token-worker/internal/app"
)

// Worker is one running token-worker.
type Worker struct {
	App  *app.App
	Cfg  *config.Config
	URL  string
	stop func()
}

// Env is what a worker is started with: the shared configuration and the worker's
// settings by variable name (API.md and app.Settings).
type Env map[string]string

// StartWorker runs the worker against the test database, nats and relay with fast test
// timings, overridden by env. It stops with the test, or earlier with Stop.
func StartWorker(t testing.TB, n *NATS, relay *SMTP, keys string, env Env, opts ...app.Option) *Worker {
	t.Helper()
	log := zap.NewNop()
	if testing.Verbose() {
		log, _ = zap.NewDevelopment()
	}
	return StartWorkerLogging(t, n, relay, keys, env, log, opts...)
}

// StartWorkerLogging is StartWorker logging to log (tests that read the worker's logs).
func StartWorkerLogging(t testing.TB, n *NATS, relay *SMTP, keys string, env Env, log *zap.Logger, opts ...app.Option) *Worker {
	t.Helper()
	vars := platformtest.Settings(t, Env{
		"DATABASE_URL":                       Database(t),
		"NATS_URL":                           n.URL(),
		"NATS_NAMESPACE":                     string(n.Namespace),
		"SMTP_HOST":                          relay.Host,
		"SMTP_PORT":                          strconv.Itoa(relay.Port),
		"SMTP_FROM":                          "no-reply@talentforge.test",
		"SMTP_TLS":                           "none",
		"APP_URL":                            "https://app.talentforge.test",
		"EVENT_KEYS":                         keys,
		"LOG_LEVEL":                          "error",
		"SHUTDOWN_TIMEOUT":                   "2s",
		"WORKER_ACK_WAIT":                    "2s",
		"WORKER_SMTP_TIMEOUT":                "1s",
		"WORKER_RETRY_MIN":                   "50ms",
		"WORKER_RETRY_MAX":                   "200ms",
		"WORKER_SMTP_BREAKER_TIMEOUT":        "300ms",
		"WORKER_LAG_INTERVAL":                "200ms",
		"WORKER_EMAILS_PER_ADDRESS_PER_HOUR": "0",
		"WORKER_SMS_TIMEOUT":                 "1s",
		"WORKER_SMS_BREAKER_TIMEOUT":         "300ms",
		"WORKER_SMS_PER_NUMBER_PER_HOUR":     "0",
	}, env)
	cfg := vars.Config(t)
	s, err := app.LoadSettings(vars.Lookup)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	keyring, err := cfg.EventKeyring()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	a, err := app.New(cfg, s, keyring, log, append([]app.Option{app.WithFetchWait(300 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatalf("start worker: %v", err)
	}
	ln := platformtest.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	return &Worker{App: a, Cfg: cfg, URL: "http://" + ln.Addr().String(),
		stop: platformtest.Serve(t, "worker", cancel, func() error { return a.Serve(ctx, ln) }, a.Close)}
}

// Stop stops the worker and closes its connections.
func (w *Worker) Stop() { w.stop() }

// Get fetches path from the worker's HTTP server.
func (w *Worker) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(w.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

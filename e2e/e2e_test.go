package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/twiliofake"
)

const (
	appURL = "http://app.e2e.test"
	// uiCallback is the hosted UI's social sign-in callback under the default PUBLIC_URL.
	uiCallback = "http://localhost:8081/ui/oauth/callback"
	password   = "correct horse battery staple"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds bin/auth, bin/oauth and bin/token-worker once for the test binary.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, svc := range []string{"auth", "oauth", "token-worker"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, svc), "./services/"+svc)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", svc, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// stack is auth, oauth and the token-worker running as processes, with an OpenID
// Connect provider ("acme") for oauth.
// The fake Twilio account of the stack.
const (
	e2eTwilioSID   = "AC0123456789abcdef0123456789abcdef"
	e2eTwilioToken = "e2e-twilio-token"
)

type stack struct {
	t        *testing.T
	authURL  string
	oauthURL string
	dbURL    string
	mail     *mailbox
	nats     *natstest.Server // nil on the machine's NATS (startStack)
	oidc     *mockoidc.MockOIDC
	sms      *twiliofake.Server // the worker's SMS provider, Twilio's API over a socket
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startStack runs the stack on the machine's NATS (NATS_URL), in a namespace of the
// test's own.
func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackOn(t, nil)
}

// startStackOn runs the stack on own, a nats-server process of the test's own that it
// may stop, in the default stream layout; nil means the machine's NATS. extra are
// settings (NAME=value) for every service.
func startStackOn(t *testing.T, own *natstest.Server, extra ...string) *stack {
	t.Helper()
	bin := binaries(t)
	db := "auth_e2e_" + randomHex(6)
	dbURL := "postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable"
	t.Cleanup(func() { dropDatabase(db) })
	key, mfaKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(key)
	_, _ = rand.Read(mfaKey)

	op, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Shutdown() })
	sms, err := twiliofake.Start(e2eTwilioSID, e2eTwilioToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sms.Close() })
	s := &stack{t: t, mail: startMailbox(t), nats: own, oidc: op, dbURL: dbURL, sms: sms}
	natsEnv := []string{"NATS_URL=" + natstest.URL(), "NATS_NAMESPACE=" + natstest.Namespace(t)}
	if own != nil {
		natsEnv = []string{"NATS_URL=" + own.URL(), "NATS_NAMESPACE="}
	}
	authPort, oauthPort, workerPort := freePort(t), freePort(t), freePort(t)
	s.oauthURL = fmt.Sprintf("http://127.0.0.1:%d", oauthPort)
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"EVENT_KEYS=e2e:"+base64.StdEncoding.EncodeToString(key),
		"MFA_ENCRYPTION_KEYS=e2e:"+base64.StdEncoding.EncodeToString(mfaKey),
		"JWT_KEYS_DIR="+t.TempDir(), // auth makes the key; oauth signs with it too
		"APP_URL="+appURL,
		fmt.Sprintf("SMTP_HOST=%s", s.mail.addr.IP), fmt.Sprintf("SMTP_PORT=%d", s.mail.addr.Port),
		"SMTP_TLS=none", "SMTP_FROM=no-reply@e2e.test",
		"RATE_LIMIT_ENABLED=false", "LOG_LEVEL=warn",
		"PASSWORD_ARGON_MEMORY_KIB=1024", "PASSWORD_ARGON_ITERATIONS=1",
		"WORKER_RETRY_MIN=200ms", "WORKER_RETRY_MAX=1s",
		"SMS_PROVIDER=twilio", "TWILIO_ACCOUNT_SID="+e2eTwilioSID, "TWILIO_AUTH_TOKEN="+e2eTwilioToken,
		"TWILIO_FROM=+15005550006", "TWILIO_API_URL="+sms.URL(),
	)
	env = append(append(env, natsEnv...), extra...)
	migrate := exec.Command(filepath.Join(bin, "auth"), "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("auth migrate: %v\n%s", err, out)
	}
	s.authURL = fmt.Sprintf("http://127.0.0.1:%d", authPort)
	// The hosted UI offers oauth's providers, whose callback is the UI's page on the
	// default PUBLIC_URL (a test reaches it at authURL).
	s.run(filepath.Join(bin, "auth"), append(env, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", authPort), "UI_OAUTH_URL="+s.oauthURL))
	s.run(filepath.Join(bin, "token-worker"), append(env, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", workerPort)))
	s.waitReady(s.authURL)
	s.run(filepath.Join(bin, "oauth"), append(env, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", oauthPort),
		"OAUTH_CALLBACK_BASE_URL="+s.oauthURL, "OAUTH_REDIRECT_ALLOWLIST="+appURL+","+uiCallback,
		"OAUTH_OIDC_NAME=acme", "OAUTH_OIDC_ISSUER="+op.Issuer(),
		"OAUTH_OIDC_CLIENT_ID="+op.ClientID, "OAUTH_OIDC_CLIENT_SECRET="+op.ClientSecret))
	s.waitReady(s.oauthURL)
	s.waitReady(fmt.Sprintf("http://127.0.0.1:%d", workerPort))
	return s
}

// run starts a service; its output is shown only when the test fails.
func (s *stack) run(path string, env []string) {
	s.t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(path)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if s.t.Failed() {
			s.t.Logf("%s output:\n%s", filepath.Base(path), out.String())
		}
	})
}

func (s *stack) waitReady(base string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready in 30 s", base)
}

func (s *stack) post(path string, body any) (int, []byte) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(s.authURL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

func (s *stack) mustPost(path string, body any, want int) []byte {
	s.t.Helper()
	status, out := s.post(path, body)
	if status != want {
		s.t.Fatalf("POST %s: %d %s, want %d", path, status, out, want)
	}
	return out
}

// waitMail waits until rcpt has n messages, then returns them.
func (s *stack) waitMail(rcpt string, n int) []message {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.mail.to(rcpt)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s got %d emails in 30 s, want %d", rcpt, len(got), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMailSaying waits for an email to rcpt whose text says what, and returns it.
func (s *stack) waitMailSaying(rcpt, what string) message {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range s.mail.to(rcpt) {
			if strings.Contains(text(s.t, m.Raw), what) {
				return m
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no email saying %q to %s in 30 s", what, rcpt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text returns every text part of a message, decoded.
func text(t *testing.T, raw string) string {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(h mail.Header, body io.Reader)
	walk = func(h mail.Header, body io.Reader) {
		mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(mail.Header(p.Header), p)
			}
		}
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		data, _ := io.ReadAll(body)
		b.Write(data)
		b.WriteString("\n")
	}
	walk(msg.Header, msg.Body)
	return b.String()
}

var linkToken = regexp.MustCompile(regexp.QuoteMeta(appURL) + `/(verify-email|reset-password|magic-link)\?token=([A-Za-z0-9_-]{43})`)

func tokenFrom(t *testing.T, m message, page string) string {
	t.Helper()
	for _, match := range linkToken.FindAllStringSubmatch(text(t, m.Raw), -1) {
		if match[1] == page {
			return match[2]
		}
	}
	t.Fatalf("no %s link in:\n%s", page, text(t, m.Raw))
	return ""
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// A user registers, gets the email, verifies, signs in, forgets the password, resets it
// from the second email and signs in with the new one: the whole product, as processes.
func TestSignUpToResetThroughEmails(t *testing.T) {
	s := startStack(t)
	email := "e2e-" + randomHex(4) + "@example.com"

	s.mustPost("/v1/auth/register", map[string]string{"email": email, "password": password, "name": "Ada"}, http.StatusAccepted)
	verify := s.waitMail(email, 1)[0]
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, verify, "verify-email")}, http.StatusOK)
	s.mustPost("/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK)

	s.mustPost("/v1/auth/password/forgot", map[string]string{"email": strings.ToUpper(email)}, http.StatusAccepted)
	// after the verification and the email verified notice, the reset
	reset := s.waitMailSaying(email, appURL+"/reset-password?token=")
	const newPassword = "a brand new passphrase here"
	s.mustPost("/v1/auth/password/reset", map[string]string{"token": tokenFrom(t, reset, "reset-password"), "password": newPassword}, http.StatusNoContent)
	s.mustPost("/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusUnauthorized)
	s.mustPost("/v1/auth/login", map[string]string{"email": email, "password": newPassword}, http.StatusOK)
}

// NATS is down while a user registers: the answer is the usual 202, and the email
// arrives once NATS is back, exactly once.
func TestEmailSurvivesNATSOutage(t *testing.T) {
	s := startStackOn(t, natstest.Run(t))
	s.nats.Stop()
	email := "e2e-outage-" + randomHex(4) + "@example.com"
	s.mustPost("/v1/auth/register", map[string]string{"email": email, "password": password}, http.StatusAccepted)
	time.Sleep(time.Second)
	if n := len(s.mail.to(email)); n != 0 {
		t.Fatalf("%d emails while NATS was down", n)
	}
	s.nats.Start()
	s.waitMail(email, 1)
	time.Sleep(3 * time.Second) // room for a duplicate to show up
	got := s.mail.to(email)
	if len(got) != 1 {
		t.Fatalf("%d emails after NATS came back, want 1", len(got))
	}
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, got[0], "verify-email")}, http.StatusOK)
}

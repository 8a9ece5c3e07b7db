// Command smoke signs a new user up end to end the way a newcomer does after `make run`,
// against real processes: bin/auth, bin/oauth and bin/token-worker (make build), and a
// Mailpit (scripts/mailpit.sh) catching the emails, each on a free port of its own, with a
// fresh PostgreSQL database, a NATS namespace, signing keys and event keys of its own, on
// the machine's PostgreSQL, Redis and NATS. It registers, reads the verification email
// through Mailpit's API, verifies, logs in, passes /v1/auth/verify, resets the password
// through the emailed link and logs in with the new one. It stops everything it started,
// also on failure and Ctrl-C, and exits non-zero on any failure, printing the tail of the
// logs of the process at fault.
//
// Run it from the repository root: make smoke (or go run ./e2e/cmd/smoke after make build).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/talentforge/auth/pkg/natstest"

	"github.com/talentforge/auth/e2e/internal/local"
	"github.com/talentforge/auth/pkg/platformtest"
)

const (
	// runTimeout bounds the run once Mailpit is built (its first build takes minutes and
	// has its own bound).
	runTimeout   = 3 * time.Minute
	buildTimeout = 15 * time.Minute
	mailTimeout  = 60 * time.Second
	appURL       = "http://app.smoke.test" // base of the links in the emails
	password1    = "plum kettle orbit 42"
	password2    = "quiet harbour lantern 7"
	tailLines    = 40
)

func main() {
	os.Exit(run())
}

func say(format string, args ...any) { fmt.Printf("smoke: "+format+"\n", args...) }

func run() int {
	root, err := local.RepoRoot()
	if err != nil {
		say("%v", err)
		return 1
	}
	for _, b := range []string{"auth", "oauth", "token-worker"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			say("bin/%s is missing: run make build first (make smoke does)", b)
			return 1
		}
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	mailpit, err := mailpitBinary(bctx, root)
	cancel()
	if err != nil {
		say("FAIL mailpit: %v", err)
		return 1
	}

	ctx, cancel = context.WithTimeout(ctx, runTimeout)
	defer cancel()
	s := &stack{root: root, started: time.Now()}
	defer s.cleanup()
	if err := s.start(ctx, mailpit); err != nil {
		if interrupted(ctx) {
			say("interrupted while starting: stopping")
			return 130
		}
		say("FAIL start: %v", err)
		s.failed = true
		s.showLogs(s.suspects...)
		return 1
	}
	return s.steps(ctx)
}

// interrupted tells whether ctx ended by Ctrl-C or SIGTERM rather than by its timeout.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// mailpitBinary builds Mailpit once (scripts/mailpit.sh) and returns its path.
func mailpitBinary(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "mailpit.sh"), "path")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/mailpit.sh path: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// proc is one process the smoke started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // once done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type stack struct {
	root     string
	started  time.Time
	tmp      string
	env      []string
	db       string
	adminURL string // the same server's postgres database, to drop ours
	natsURL  string
	ns       string
	procs    []*proc
	suspects []string // the processes whose logs explain the current step

	authURL, mailURL string
	failed           bool
}

// answers tells whether something listens on addr.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// databaseURLs are the smoke's own database on the server of DATABASE_URL (default the
// local one) and that server's postgres database.
func databaseURLs(db string) (own, admin string, err error) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("DATABASE_URL: %v", err)
	}
	u.Path = "/" + db
	own = u.String()
	u.Path = "/postgres"
	return own, u.String(), nil
}

func (s *stack) start(ctx context.Context, mailpit string) error {
	natsURL := os.Getenv("NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	s.natsURL = natsURL
	own, admin, err := databaseURLs("smoke_" + platformtest.RandomHex(5))
	if err != nil {
		return err
	}
	s.db, s.adminURL = strings.TrimPrefix(mustParse(own).Path, "/"), admin
	for name, addr := range map[string]string{"PostgreSQL": mustParse(own).Host, "NATS": mustParse(natsURL).Host} {
		if !answers(addr) {
			return fmt.Errorf("%s is not answering on %s (bash scripts/services.sh starts it)", name, addr)
		}
	}
	if os.Getenv("REDIS_URL") == "" && !answers("127.0.0.1:6379") {
		return errors.New("redis is not answering on 127.0.0.1:6379 (bash scripts/services.sh starts it)")
	}

	if s.tmp, err = os.MkdirTemp("", "smoke-"); err != nil {
		return err
	}
	ports, err := local.FreePorts(5)
	if err != nil {
		return err
	}
	authPort, oauthPort, workerPort, smtpPort, mailPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	s.authURL = fmt.Sprintf("http://127.0.0.1:%d", authPort)
	s.mailURL = fmt.Sprintf("http://127.0.0.1:%d", mailPort)
	s.ns = "smoke" + platformtest.RandomHex(5)
	say("database %s, NATS namespace %s, files in %s", s.db, s.ns, s.tmp)

	// The settings below win over the caller's (the last of a duplicate key is used),
	// and the caller's *_FILE secrets would clash with the keys given here.
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CONFIG_FILE" || strings.HasSuffix(k, "_FILE") || strings.HasPrefix(k, "SMTP_") {
			continue
		}
		env = append(env, kv)
	}
	s.env = append(env,
		"DATABASE_URL="+own,
		"NATS_URL="+natsURL,
		"NATS_NAMESPACE="+s.ns,
		"EVENT_KEYS="+platformtest.KeySpec("smoke"),
		"MFA_ENCRYPTION_KEYS="+platformtest.KeySpec("smoke"),
		"JWT_KEYS_DIR="+filepath.Join(s.tmp, "keys"), // auth makes the key; oauth signs with it
		"PUBLIC_URL="+s.authURL,
		"APP_URL="+appURL,
		"SMTP_HOST=127.0.0.1", fmt.Sprintf("SMTP_PORT=%d", smtpPort), "SMTP_TLS=none",
		"SMTP_FROM=no-reply@smoke.test",
		"LOG_FORMAT=console",
		// Rate limits stay on, with room for many runs an hour from 127.0.0.1.
		"RATE_LIMIT_REGISTER=1000/h", "RATE_LIMIT_FORGOT=1000/h", "RATE_LIMIT_EMAIL_VERIFY=1000/h",
	)

	s.suspects = []string{"mailpit"}
	if err := s.spawn("mailpit", mailpit,
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", mailPort),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check"); err != nil {
		return err
	}
	if err := s.waitOK(ctx, "mailpit", s.mailURL+"/api/v1/messages"); err != nil {
		return err
	}

	s.suspects = []string{"migrate"}
	migrate := exec.CommandContext(ctx, filepath.Join(s.root, "bin", "auth"), "migrate")
	migrate.Env = s.env
	out, err := migrate.CombinedOutput()
	_ = os.WriteFile(filepath.Join(s.tmp, "migrate.log"), out, 0o600)
	if err != nil {
		return fmt.Errorf("bin/auth migrate: %v", err)
	}
	say("bin/auth migrate created %s", s.db)

	for _, svc := range []struct {
		name string
		port int
	}{{"auth", authPort}, {"oauth", oauthPort}, {"token-worker", workerPort}} {
		s.suspects = []string{svc.name}
		env := append(slices.Clip(s.env), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", svc.port))
		if err := s.spawnEnv(svc.name, env, filepath.Join(s.root, "bin", svc.name)); err != nil {
			return err
		}
		if err := s.waitOK(ctx, svc.name, fmt.Sprintf("http://127.0.0.1:%d/readyz", svc.port)); err != nil {
			return err
		}
	}
	s.suspects = nil
	return nil
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return &url.URL{}
	}
	return u
}

func (s *stack) spawn(name, path string, args ...string) error {
	return s.spawnEnv(name, s.env, path, args...)
}

// spawnEnv starts a process with its output in a log file of the run. It gets SIGTERM
// should the smoke itself die without cleaning up.
func (s *stack) spawnEnv(name string, env []string, path string, args ...string) error {
	logPath := filepath.Join(s.tmp, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	s.procs = append(s.procs, p)
	say("started %s (pid %d)", name, cmd.Process.Pid)
	return nil
}

func (s *stack) proc(name string) *proc {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// waitOK waits until GET u answers 200, for up to 30 s, while the process lives.
func (s *stack) waitOK(ctx context.Context, name, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if p := s.proc(name); p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v", name, p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				say("%s ready: %s", name, u)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %v", name, u, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanup stops every process, deletes the namespace's streams, drops the database and
// removes the run's files (kept, with the logs, after a failure).
func (s *stack) cleanup() {
	for _, p := range slices.Backward(s.procs) {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			say("%s did not stop in 15 s: killed", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if len(s.procs) > 0 {
		say("stopped %d processes", len(s.procs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.ns != "" {
		if n, err := deleteStreams(ctx, s.natsURL, s.ns); err != nil {
			say("delete the streams of %s: %v", s.ns, err)
		} else if n > 0 {
			say("deleted %d JetStream streams of %s", n, s.ns)
		}
	}
	if s.db != "" {
		if err := dropDatabase(ctx, s.adminURL, s.db); err != nil {
			say("drop database %s: %v", s.db, err)
		} else {
			say("dropped database %s", s.db)
		}
	}
	if s.tmp != "" {
		if s.failed {
			say("logs kept in %s", s.tmp)
		} else {
			_ = os.RemoveAll(s.tmp)
		}
	}
}

func dropDatabase(ctx context.Context, adminURL, db string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}

// showLogs prints the tail of the named processes' logs and of any that exited.
func (s *stack) showLogs(names ...string) {
	for _, p := range s.procs {
		if p.exited() && !slices.Contains(names, p.name) {
			names = append(names, p.name)
		}
	}
	for _, name := range names {
		path := filepath.Join(s.tmp, name+".log")
		lines, err := tail(path, tailLines)
		if err != nil || len(lines) == 0 {
			continue
		}
		state := ""
		if p := s.proc(name); p != nil && p.exited() {
			state = fmt.Sprintf(", exited: %v", p.err)
		}
		fmt.Printf("----- last %d lines of %s (%s%s) -----\n", len(lines), name, path, state)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	if len(names) > 0 {
		fmt.Println("-----")
	}
}

func tail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, sc.Err()
}

// A step is one check; suspects name the processes whose logs explain its failure.
type step struct {
	name     string
	suspects []string
	run      func(ctx context.Context) error
}

func (s *stack) steps(ctx context.Context) int {
	email := "smoke-" + platformtest.RandomHex(4) + "@example.com"
	var user struct {
		ID string `json:"id"`
	}
	var access1, access2 string
	var verifyToken, resetToken string

	steps := []step{
		{"POST /v1/auth/register answers 202 verification_pending", []string{"auth"}, func(ctx context.Context) error {
			var body struct {
				Status string `json:"status"`
			}
			if err := s.call(ctx, http.MethodPost, "/v1/auth/register", "",
				map[string]string{"email": email, "password": password1, "name": "Smoke"}, http.StatusAccepted, &body, nil); err != nil {
				return err
			}
			if body.Status != "verification_pending" {
				return fmt.Errorf("status %q, want verification_pending", body.Status)
			}
			return nil
		}},
		{"the verification email reaches Mailpit with " + appURL + "/verify-email?token=", []string{"token-worker", "auth", "mailpit"}, func(ctx context.Context) error {
			var err error
			verifyToken, err = s.waitLink(ctx, email, appURL+"/verify-email?token=")
			return err
		}},
		{"POST /v1/auth/email/verify answers 200 with email_verified", []string{"auth"}, func(ctx context.Context) error {
			var u struct {
				ID            string `json:"id"`
				EmailVerified bool   `json:"email_verified"`
			}
			if err := s.call(ctx, http.MethodPost, "/v1/auth/email/verify", "", map[string]string{"token": verifyToken}, http.StatusOK, &u, nil); err != nil {
				return err
			}
			if !u.EmailVerified || u.ID == "" {
				return fmt.Errorf("user %+v, want email_verified", u)
			}
			user.ID = u.ID
			return nil
		}},
		{"POST /v1/auth/login answers 200 with a Bearer token pair", []string{"auth"}, func(ctx context.Context) error {
			var err error
			access1, err = s.login(ctx, email, password1)
			return err
		}},
		{"GET /v1/auth/verify with the access token answers 200 and the X-Auth-* headers", []string{"auth"}, func(ctx context.Context) error {
			var h http.Header
			if err := s.call(ctx, http.MethodGet, "/v1/auth/verify", access1, nil, http.StatusOK, nil, &h); err != nil {
				return err
			}
			want := map[string]string{"X-Auth-User-Id": user.ID, "X-Auth-Email": email}
			for k, v := range want {
				if h.Get(k) != v {
					return fmt.Errorf("%s: %q, want %q", k, h.Get(k), v)
				}
			}
			if !slices.Contains(strings.Split(h.Get("X-Auth-Roles"), ","), "user") {
				return fmt.Errorf("X-Auth-Roles: %q, want it to hold user", h.Get("X-Auth-Roles"))
			}
			if h.Get("X-Auth-Session-Id") == "" {
				return errors.New("no X-Auth-Session-Id")
			}
			return nil
		}},
		{"POST /v1/auth/password/forgot answers 202", []string{"auth"}, func(ctx context.Context) error {
			return s.call(ctx, http.MethodPost, "/v1/auth/password/forgot", "", map[string]string{"email": email}, http.StatusAccepted, nil, nil)
		}},
		{"the reset email reaches Mailpit with " + appURL + "/reset-password?token=", []string{"token-worker", "auth", "mailpit"}, func(ctx context.Context) error {
			var err error
			resetToken, err = s.waitLink(ctx, email, appURL+"/reset-password?token=")
			return err
		}},
		{"POST /v1/auth/password/reset answers 204", []string{"auth"}, func(ctx context.Context) error {
			return s.call(ctx, http.MethodPost, "/v1/auth/password/reset", "",
				map[string]string{"token": resetToken, "password": password2}, http.StatusNoContent, nil, nil)
		}},
		{"the reset ended the session: GET /v1/auth/verify with the first token answers 401", []string{"auth"}, func(ctx context.Context) error {
			return s.call(ctx, http.MethodGet, "/v1/auth/verify", access1, nil, http.StatusUnauthorized, nil, nil)
		}},
		{"POST /v1/auth/login with the old password answers 401 invalid_credentials", []string{"auth"}, func(ctx context.Context) error {
			var e apiError
			if err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password1},
				http.StatusUnauthorized, &e, nil); err != nil {
				return err
			}
			if e.Error.Code != "invalid_credentials" {
				return fmt.Errorf("code %q, want invalid_credentials", e.Error.Code)
			}
			return nil
		}},
		{"POST /v1/auth/login with the new password answers 200, and its token passes /v1/auth/verify", []string{"auth"}, func(ctx context.Context) error {
			var err error
			if access2, err = s.login(ctx, email, password2); err != nil {
				return err
			}
			return s.call(ctx, http.MethodGet, "/v1/auth/verify", access2, nil, http.StatusOK, nil, nil)
		}},
	}

	passed := 0
	for i, st := range steps {
		start := time.Now()
		err := st.run(ctx)
		if err == nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			if interrupted(ctx) {
				say("[%d/%d] interrupted during %s: stopping", i+1, len(steps), st.name)
				return 130
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%v (the whole run is bounded to %s)", err, runTimeout)
			}
			say("[%d/%d] FAIL %s: %v", i+1, len(steps), st.name, err)
			s.failed = true
			s.showLogs(st.suspects...)
			say("%d passed, 1 failed, %d not run (%.1fs)", passed, len(steps)-i-1, time.Since(s.started).Seconds())
			return 1
		}
		passed++
		say("[%d/%d] ok %s (%s)", i+1, len(steps), st.name, time.Since(start).Round(time.Millisecond))
	}
	say("%d passed, 0 failed (%.1fs)", passed, time.Since(s.started).Seconds())
	return 0
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

var client = &http.Client{Timeout: 20 * time.Second}

// call sends a JSON request to auth and checks the status; out (if any) gets the JSON
// answer, header (if any) its headers.
func (s *stack) call(ctx context.Context, method, path, bearer string, body any, want int, out any, header *http.Header) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.authURL+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s, want %d", method, path, res.StatusCode, bytes.TrimSpace(data), want)
	}
	if header != nil {
		*header = res.Header
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return nil
}

func (s *stack) login(ctx context.Context, email, password string) (string, error) {
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
	}
	if err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password},
		http.StatusOK, &pair, nil); err != nil {
		return "", err
	}
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != "Bearer" {
		return "", fmt.Errorf("token pair without access_token, refresh_token or token_type Bearer")
	}
	return pair.AccessToken, nil
}

// waitLink polls Mailpit's API (GET /api/v1/messages, GET /api/v1/message/{ID}) until a
// message to rcpt holds a link starting with prefix, and returns the link's token.
func (s *stack) waitLink(ctx context.Context, rcpt, prefix string) (string, error) {
	re := regexp.MustCompile(regexp.QuoteMeta(prefix) + `([^\s"'<>&]+)`)
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	seen := map[string]bool{}
	for {
		var list struct {
			Messages []struct {
				ID string `json:"ID"`
				To []struct {
					Address string `json:"Address"`
				} `json:"To"`
			} `json:"messages"`
		}
		if err := s.mailpit(ctx, "/api/v1/messages", &list); err == nil {
			for _, m := range list.Messages {
				if seen[m.ID] || !slices.ContainsFunc(m.To, func(a struct {
					Address string `json:"Address"`
				}) bool {
					return strings.EqualFold(a.Address, rcpt)
				}) {
					continue
				}
				var msg struct {
					Subject string `json:"Subject"`
					Text    string `json:"Text"`
				}
				if err := s.mailpit(ctx, "/api/v1/message/"+url.PathEscape(m.ID), &msg); err != nil {
					continue
				}
				seen[m.ID] = true
				if sub := re.FindStringSubmatch(msg.Text); sub != nil {
					tok, err := url.QueryUnescape(sub[1])
					if err != nil {
						return "", fmt.Errorf("link in %q: %v", msg.Subject, err)
					}
					return tok, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no email to %s with a link %s... in %s (%d messages to it seen): %v",
				rcpt, prefix, mailTimeout, len(seen), context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *stack) mailpit(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.mailURL+path, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// deleteStreams deletes the JetStream streams of namespace ns (natstest.DeleteNamespace).
func deleteStreams(ctx context.Context, natsURL, ns string) (int, error) {
	nc, err := nats.Connect(natsURL, nats.Name("smoke"), nats.Timeout(5*time.Second))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	return natstest.DeleteNamespace(ctx, js, ns)
}

// Command uitest drives the hosted UI (/ui/ of bin/auth) in headless Chromium, against
// real processes as e2e/cmd/smoke does: bin/auth and bin/token-worker (make build) and a
// Mailpit (scripts/mailpit.sh) on free ports of their own, with a fresh PostgreSQL
// database, a NATS namespace and keys of its own, on the machine's PostgreSQL, Redis and
// NATS. The browser part is e2e/ui/walkthrough.mjs (Playwright's playwright-core with
// Debian's /usr/bin/chromium, axe-core; scripts/ui-deps.sh installs them when missing):
// register, the email in Mailpit, verify, sign in, a passkey on Chromium's virtual
// authenticator, TOTP, sessions, the accessibility and CSP checks and the screenshots.
//
// It also runs the gateway flow as Traefik's ForwardAuth drives it: a second bin/auth on
// the same database, Redis and NATS namespace (PUBLIC_URL https://auth.example.test:PORT,
// SESSION_COOKIE_DOMAIN=example.test) behind a gateway emulated here: one TLS listener
// (a CA and a certificate made at start) routing auth.example.test to that auth and
// app.example.test through the shipped `protected` middleware chain, read from
// deploy/traefik/dynamic/routes.yml (strip-auth-headers, then the auth-verify forwardAuth,
// applied as Traefik applies them), to a test upstream that only the gateway reaches.
// Chromium maps *.example.test to 127.0.0.1 and trusts the certificate by its key's hash.
//
// It stops everything it started, also on failure, timeout and Ctrl-C, and exits non-zero
// on any failure, printing the tail of each service's log.
//
// Run it from the repository root: make test-ui (or go run ./e2e/cmd/uitest after make
// build). Screenshots go to var/ui-screenshots/ (-screenshots DIR).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/talentforge/auth/e2e/internal/local"
	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/platformtest"
)

const (
	depsTimeout  = 15 * time.Minute // scripts/ui-deps.sh: apt-get and npm on a new machine
	buildTimeout = 15 * time.Minute // Mailpit's first build
	mailTimeout  = 60 * time.Second
	tailLines    = 40
	gwPassword   = "harbour violet engine 58"
	gwDomain     = "example.test"
	routesFile   = "deploy/traefik/dynamic/routes.yml"
	chainName    = "protected" // the shipped chain a protected route attaches
)

func main() {
	os.Exit(run())
}

func say(format string, args ...any) { fmt.Printf("uitest: "+format+"\n", args...) }

func run() int {
	shots := flag.String("screenshots", "var/ui-screenshots", "folder for the screenshots (relative to the repository root)")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound of the whole run, after the installs and Mailpit's build")
	flag.Parse()

	root, err := local.RepoRoot()
	if err != nil {
		say("%v", err)
		return 1
	}
	for _, b := range []string{"auth", "token-worker"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			say("bin/%s is missing: run make build first (make test-ui does)", b)
			return 1
		}
	}
	shotDir := *shots
	if !filepath.IsAbs(shotDir) {
		shotDir = filepath.Join(root, shotDir)
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	dctx, cancel := context.WithTimeout(ctx, depsTimeout)
	deps := exec.CommandContext(dctx, "bash", filepath.Join(root, "scripts", "ui-deps.sh"))
	deps.Stdout, deps.Stderr = os.Stdout, os.Stderr
	err = deps.Run()
	cancel()
	if err != nil {
		say("FAIL scripts/ui-deps.sh: %v", err)
		return 1
	}

	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	mailpit, err := mailpitBinary(bctx, root)
	cancel()
	if err != nil {
		say("FAIL mailpit: %v", err)
		return 1
	}

	ctx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	s := &stack{root: root, started: time.Now(), timeout: *timeout}
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
	return s.walk(ctx, shotDir)
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

// proc is one process the run started.
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
	timeout  time.Duration
	tmp      string
	env      []string
	db       string
	adminURL string // the same server's postgres database, to drop ours
	natsURL  string
	ns       string
	procs    []*proc
	suspects []string // the processes whose logs explain the current step

	authURL string // http://localhost:PORT, the browser's
	apiURL  string // http://127.0.0.1:PORT, the same auth, for the runner's own calls
	mailURL string
	gw      *gateway
	gwUser  string // the gateway user's id
	gwEmail string
	failed  bool
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

// databaseURLs are the run's own database on the server of DATABASE_URL (default the
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
	own, admin, err := databaseURLs("uitest_" + platformtest.RandomHex(5))
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

	if s.tmp, err = os.MkdirTemp("", "uitest-"); err != nil {
		return err
	}
	ports, err := local.FreePorts(5)
	if err != nil {
		return err
	}
	authPort, gwAuthPort, workerPort, smtpPort, mailPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	s.authURL = fmt.Sprintf("http://localhost:%d", authPort)
	s.apiURL = fmt.Sprintf("http://127.0.0.1:%d", authPort)
	s.mailURL = fmt.Sprintf("http://127.0.0.1:%d", mailPort)
	s.ns = "uitest" + platformtest.RandomHex(5)
	say("database %s, NATS namespace %s, files in %s", s.db, s.ns, s.tmp)

	// The settings below win over the caller's (the last of a duplicate key is used),
	// and the caller's *_FILE secrets would clash with the keys given here.
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CONFIG_FILE" || strings.HasSuffix(k, "_FILE") || strings.HasPrefix(k, "SMTP_") ||
			strings.HasPrefix(k, "OTEL_") || k == "SESSION_COOKIE_DOMAIN" || k == "TRUSTED_PROXIES" {
			continue
		}
		env = append(env, kv)
	}
	s.env = append(env,
		"DATABASE_URL="+own,
		"NATS_URL="+natsURL,
		"NATS_NAMESPACE="+s.ns,
		"EVENT_KEYS="+platformtest.KeySpec("uitest"),
		"MFA_ENCRYPTION_KEYS="+platformtest.KeySpec("uitest"),
		"JWT_KEYS_DIR="+filepath.Join(s.tmp, "keys"), // the first auth makes the key, the second reads it
		"PUBLIC_URL="+s.authURL,
		"APP_URL="+s.authURL+"/ui", // the links in the emails open the hosted pages
		"WEBAUTHN_RP_ID=localhost",
		"EMAIL_VERIFICATION_REQUIRED=true",
		"RATE_LIMIT_ENABLED=false",
		"OTEL_EXPORTER_OTLP_ENDPOINT=", // tracing off
		"SMTP_HOST=127.0.0.1", fmt.Sprintf("SMTP_PORT=%d", smtpPort), "SMTP_TLS=none",
		"SMTP_FROM=no-reply@uitest.test",
		"LOG_FORMAT=console",
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
	}{{"auth", authPort}, {"token-worker", workerPort}} {
		s.suspects = []string{svc.name}
		env := append(slices.Clip(s.env), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", svc.port))
		if err := s.spawnEnv(svc.name, env, filepath.Join(s.root, "bin", svc.name)); err != nil {
			return err
		}
		if err := s.waitOK(ctx, svc.name, fmt.Sprintf("http://127.0.0.1:%d/readyz", svc.port)); err != nil {
			return err
		}
	}

	// The gateway: its listener first (its port is in the second auth's PUBLIC_URL),
	// then that auth, then serving.
	s.suspects = []string{"gateway"}
	gwLog, err := os.Create(filepath.Join(s.tmp, "gateway.log"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gwLog.Close()
		return err
	}
	gwPort := ln.Addr().(*net.TCPAddr).Port
	backend := fmt.Sprintf("http://127.0.0.1:%d", gwAuthPort)
	gw, err := newGateway(filepath.Join(s.root, routesFile), backend, gwPort, log.New(gwLog, "", log.LstdFlags|log.Lmicroseconds))
	if err != nil {
		ln.Close()
		gwLog.Close()
		return err
	}
	s.gw = gw
	if err := os.WriteFile(filepath.Join(s.tmp, "gateway-ca.pem"), gw.caPEM, 0o600); err != nil {
		return err
	}

	s.suspects = []string{"auth-gateway"}
	gwEnv := append(slices.Clip(s.env),
		fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", gwAuthPort),
		"PUBLIC_URL="+gw.authOrigin,
		"APP_URL="+gw.authOrigin+"/ui",
		"WEBAUTHN_RP_ID=auth."+gwDomain,
		"SESSION_COOKIE_DOMAIN="+gwDomain,
		"TRUSTED_PROXIES=127.0.0.1/32",
		"OAUTH_REDIRECT_ALLOWLIST="+gw.appOrigin,
	)
	if err := s.spawnEnv("auth-gateway", gwEnv, filepath.Join(s.root, "bin", "auth")); err != nil {
		return err
	}
	if err := s.waitOK(ctx, "auth-gateway", backend+"/readyz"); err != nil {
		return err
	}
	go gw.serve(ln, gwLog)
	say("gateway on 127.0.0.1:%d: %s → auth-gateway, %s → chain %s of %s → the test upstream",
		gwPort, gw.authOrigin, gw.appOrigin, chainName, routesFile)
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
// should the runner itself die without cleaning up.
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
	if s.gw != nil {
		s.gw.close()
	}
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

// showLogs prints the tail of the named logs (processes, or the gateway's) and of any
// process that exited.
func (s *stack) showLogs(names ...string) {
	for _, p := range s.procs {
		if p.exited() && !slices.Contains(names, p.name) {
			names = append(names, p.name)
		}
	}
	shown := 0
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
		shown++
	}
	if shown > 0 {
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

// walk checks that both auths serve the hosted UI, makes the gateway's user through the
// API, then runs the browser walk-through.
func (s *stack) walk(ctx context.Context, shotDir string) int {
	all := []string{"auth", "auth-gateway", "gateway", "token-worker", "mailpit"}
	fail := func(format string, args ...any) int {
		if interrupted(ctx) {
			say("interrupted: stopping")
			return 130
		}
		msg := fmt.Sprintf(format, args...)
		if ctx.Err() != nil {
			msg += fmt.Sprintf(" (the whole run is bounded to %s, -timeout)", s.timeout)
		}
		say("FAIL %s", msg)
		s.failed = true
		s.showLogs(all...)
		return 1
	}
	if err := s.servesUI(ctx, s.apiURL); err != nil {
		return fail("%v", err)
	}
	if err := s.makeGatewayUser(ctx); err != nil {
		return fail("the gateway's user: %v", err)
	}
	say("gateway user %s (%s), TOTP off", s.gwEmail, s.gwUser)
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		return fail("%v", err)
	}
	// Last run's pictures would pass for this run's: remove the walk-through's own
	// ({page}-{light|dark}-{desktop|phone}.png, FAIL-*.png), nothing else of the folder.
	old, _ := filepath.Glob(filepath.Join(shotDir, "*.png"))
	for _, f := range old {
		if shotName.MatchString(filepath.Base(f)) {
			_ = os.Remove(f)
		}
	}

	deadline := time.Now().Add(time.Until(s.deadline(ctx)) - 10*time.Second)
	args := []string{
		"--host-resolver-rules=MAP *." + gwDomain + " 127.0.0.1",
		"--ignore-certificate-errors-spki-list=" + s.gw.spki,
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(s.root, "e2e", "ui", "walkthrough.mjs"))
	cmd.Dir = filepath.Join(s.root, "e2e", "ui")
	cmd.Env = append(os.Environ(),
		"UI_AUTH_URL="+s.authURL,
		"UI_APP_URL="+s.authURL+"/ui",
		"UI_MAILPIT_URL="+s.mailURL,
		"UI_GATEWAY_AUTH_URL="+s.gw.authOrigin,
		"UI_GATEWAY_APP_URL="+s.gw.appOrigin,
		"UI_GATEWAY_EMAIL="+s.gwEmail,
		"UI_GATEWAY_PASSWORD="+gwPassword,
		"UI_GATEWAY_USER_ID="+s.gwUser,
		"UI_GATEWAY_HOST_IP=127.0.0.1",
		"UI_SCREENSHOTS="+shotDir,
		"UI_CHROMIUM=/usr/bin/chromium",
		"UI_CHROMIUM_GATEWAY_ARGS="+strings.Join(args, "\n"),
		"UI_DEADLINE_MS="+strconv.FormatInt(deadline.UnixMilli(), 10),
		"NODE_EXTRA_CA_CERTS="+filepath.Join(s.tmp, "gateway-ca.pem"), // node's own requests to the gateway
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// SIGTERM lets Playwright close Chromium; SIGKILL 10 s later if it has not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	say("node e2e/ui/walkthrough.mjs (screenshots to %s)", shotDir)
	if err := cmd.Run(); err != nil {
		return fail("e2e/ui/walkthrough.mjs: %v", err)
	}
	n := 0
	if all, err := filepath.Glob(filepath.Join(shotDir, "*.png")); err == nil {
		for _, f := range all {
			if shotName.MatchString(filepath.Base(f)) {
				n++
			}
		}
	}
	say("walk-through passed in %.1fs; %d screenshots in %s", time.Since(s.started).Seconds(), n, shotDir)
	return 0
}

// shotName is the walk-through's screenshot names.
var shotName = regexp.MustCompile(`^([a-z]+(-[a-z]+)*-(light|dark)-(desktop|phone)|FAIL-.+)\.png$`)

func (s *stack) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(s.timeout)
}

// servesUI fails early, and plainly, when bin/auth has no hosted UI.
func (s *stack) servesUI(ctx context.Context, base string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ui/login", nil)
	req.Header.Set("Accept", "text/html")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		return fmt.Errorf("bin/auth answers GET /ui/login with %d %s, not a page: this build has no hosted UI (services/auth/internal/ui)",
			res.StatusCode, res.Header.Get("Content-Type"))
	}
	return nil
}

// makeGatewayUser registers and verifies the gateway flow's user through the API.
func (s *stack) makeGatewayUser(ctx context.Context) error {
	s.gwEmail = "gateway-" + platformtest.RandomHex(4) + "@example.com"
	if err := s.call(ctx, http.MethodPost, "/v1/auth/register", map[string]string{"email": s.gwEmail, "password": gwPassword, "name": "Gateway"},
		http.StatusAccepted, nil); err != nil {
		return err
	}
	tok, err := s.waitLink(ctx, s.gwEmail, "/verify-email?token=")
	if err != nil {
		return err
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := s.call(ctx, http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": tok}, http.StatusOK, &u); err != nil {
		return err
	}
	if u.ID == "" {
		return errors.New("POST /v1/auth/email/verify answered no user id")
	}
	s.gwUser = u.ID
	return nil
}

var client = &http.Client{Timeout: 20 * time.Second}

// call sends a JSON request to auth and checks the status; out (if any) gets the answer.
func (s *stack) call(ctx context.Context, method, path string, body any, want int, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s, want %d", method, path, res.StatusCode, bytes.TrimSpace(data), want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return nil
}

// waitLink polls Mailpit's API until a message to rcpt holds a link containing marker,
// and returns the link's token.
func (s *stack) waitLink(ctx context.Context, rcpt, marker string) (string, error) {
	re := regexp.MustCompile(`https?://[^\s"'<>]*` + regexp.QuoteMeta(marker) + `([^\s"'<>&]+)`)
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
					Text string `json:"Text"`
				}
				if err := s.mailpit(ctx, "/api/v1/message/"+url.PathEscape(m.ID), &msg); err != nil {
					continue
				}
				seen[m.ID] = true
				if sub := re.FindStringSubmatch(msg.Text); sub != nil {
					return url.QueryUnescape(sub[1])
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no email to %s with a link ...%s in %s (%d messages to it seen): %v",
				rcpt, marker, mailTimeout, len(seen), context.Cause(ctx))
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
	nc, err := nats.Connect(natsURL, nats.Name("uitest"), nats.Timeout(5*time.Second))
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

// ---------------------------------------------------------------- the gateway

// gateway emulates the Traefik of deploy/traefik on one TLS listener: the entry point
// (client X-Forwarded-* dropped, its own set), a router per host, and for the protected
// app the middlewares of the shipped chain, read from routes.yml.
type gateway struct {
	authOrigin, appOrigin string // https://auth.example.test:PORT, https://app.example.test:PORT
	port                  int
	backend               *url.URL // the second auth, plain HTTP
	authProxy             *httputil.ReverseProxy
	protected             http.Handler // the chain, ending at the upstream
	upstream              *pipeListener
	srv                   *http.Server
	cert                  tls.Certificate
	caPEM                 []byte
	spki                  string // base64 SHA-256 of the leaf's SubjectPublicKeyInfo (Chromium's pin)
	log                   *log.Logger
}

func newGateway(routes, backend string, port int, lg *log.Logger) (*gateway, error) {
	g := &gateway{
		authOrigin: fmt.Sprintf("https://auth.%s:%d", gwDomain, port),
		appOrigin:  fmt.Sprintf("https://app.%s:%d", gwDomain, port),
		port:       port,
		backend:    mustParse(backend),
		log:        lg,
	}
	if err := g.makeCert(); err != nil {
		return nil, fmt.Errorf("gateway certificate: %v", err)
	}
	g.authProxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(g.backend)
			pr.Out.Host = pr.In.Host // Traefik's passHostHeader
			g.forwarded(pr.Out, pr.In)
		},
		ErrorLog:     lg,
		ErrorHandler: g.badGateway,
	}
	g.upstream = newPipeListener()
	up := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "upstream.internal"})
			pr.Out.Host = pr.In.Host
			// The entry point's X-Forwarded-* reach the upstream, as from Traefik.
			for k, vs := range pr.In.Header {
				if strings.HasPrefix(k, "X-Forwarded-") || k == "X-Real-Ip" {
					pr.Out.Header[k] = append([]string(nil), vs...)
				}
			}
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				pr.Out.Header.Set("X-Forwarded-For", ip)
			}
		},
		Transport:    &http.Transport{DialContext: g.upstream.dial, DisableCompression: true},
		ErrorLog:     lg,
		ErrorHandler: g.badGateway,
	}
	chain, err := loadChain(routes, chainName, backend, up, lg)
	if err != nil {
		return nil, err
	}
	g.protected = chain
	g.srv = &http.Server{
		Handler:           g,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{g.cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          lg,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		srv := &http.Server{Handler: http.HandlerFunc(upstreamPage), ErrorLog: lg, ReadHeaderTimeout: 10 * time.Second}
		_ = srv.Serve(g.upstream)
	}()
	return g, nil
}

// makeCert makes a CA and, signed by it, a certificate for auth.example.test and
// app.example.test, valid for a day.
func (g *gateway) makeCert() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "uitest gateway CA " + platformtest.RandomHex(3)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "auth." + gwDomain},
		DNSNames:     []string{"auth." + gwDomain, "app." + gwDomain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	leafCert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(leafCert.RawSubjectPublicKeyInfo)
	g.spki = base64.StdEncoding.EncodeToString(sum[:])
	g.cert = tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key, Leaf: leafCert}
	g.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return nil
}

func (g *gateway) serve(ln net.Listener, logFile io.Closer) {
	err := g.srv.ServeTLS(ln, "", "")
	g.log.Printf("gateway stopped: %v", err)
	_ = logFile.Close()
}

func (g *gateway) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = g.srv.Shutdown(ctx)
	cancel()
	g.upstream.Close()
}

// ServeHTTP is the entry point and the routers: by Host, as routes.yml routes by rules.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	defer func() {
		g.log.Printf("%s %s %s%s → %d %s (%s)", r.RemoteAddr, r.Method, r.Host, r.URL.RequestURI(), rec.status,
			rec.Header().Get("Location"), time.Since(start).Round(time.Millisecond))
	}()
	// The entry point: the client is not a trusted proxy, so its X-Forwarded-* go
	// (Traefik's forwardedHeaders without trustedIPs), and the entry point's own are set.
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-forwarded-") || strings.EqualFold(k, "X-Real-Ip") {
			r.Header.Del(k)
		}
	}
	g.forwarded(r, r)
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	switch host {
	case "auth." + gwDomain:
		g.authProxy.ServeHTTP(rec, r)
	case "app." + gwDomain:
		g.protected.ServeHTTP(rec, r)
	default:
		http.Error(rec, "404 page not found", http.StatusNotFound) // Traefik's answer when no router matches
	}
}

// forwarded sets on out the X-Forwarded-* headers that Traefik's entry point sets for in.
func (g *gateway) forwarded(out, in *http.Request) {
	out.Header.Set("X-Forwarded-Proto", "https")
	out.Header.Set("X-Forwarded-Host", in.Host)
	out.Header.Set("X-Forwarded-Port", strconv.Itoa(g.port))
	out.Header.Set("X-Forwarded-Server", "uitest-gateway")
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		out.Header.Set("X-Real-Ip", ip)
		if out != in {
			out.Header.Set("X-Forwarded-For", ip)
		}
	}
}

func (g *gateway) badGateway(w http.ResponseWriter, r *http.Request, err error) {
	g.log.Printf("proxy %s%s: %v", r.Host, r.URL.RequestURI(), err)
	http.Error(w, "Bad Gateway", http.StatusBadGateway)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// loadChain builds the handler of the named chain middleware of routes.yml, in front of
// next: the middleware kinds a protected route uses (headers.customRequestHeaders,
// forwardAuth), each applied as Traefik applies it, the forwardAuth's address pointed at
// backend (the same path and query). Any other kind in the chain is an error: the
// emulation would not be the shipped configuration.
func loadChain(path, name, backend string, next http.Handler, lg *log.Logger) (http.Handler, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		HTTP struct {
			Middlewares map[string]middlewareConfig `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	mws := cfg.HTTP.Middlewares
	var flat []string
	var expand func(n string, depth int) error
	expand = func(n string, depth int) error {
		m, ok := mws[n]
		if !ok {
			return fmt.Errorf("%s: no middleware %s", path, n)
		}
		if m.Chain == nil {
			flat = append(flat, n)
			return nil
		}
		if depth > 5 {
			return fmt.Errorf("%s: chain %s nests too deep", path, n)
		}
		for _, c := range m.Chain.Middlewares {
			if err := expand(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := expand(name, 0); err != nil {
		return nil, err
	}
	h := next
	for _, n := range slices.Backward(flat) {
		m := mws[n]
		switch {
		case m.Headers != nil && len(m.Headers.CustomRequestHeaders) > 0:
			h = customRequestHeaders(m.Headers.CustomRequestHeaders, h)
		case m.ForwardAuth != nil:
			fa, err := newForwardAuth(n, *m.ForwardAuth, backend, h, lg)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			h = fa
		default:
			return nil, fmt.Errorf("%s: middleware %s of chain %s is of a kind the gateway emulation does not do", path, n, name)
		}
	}
	if !slices.ContainsFunc(flat, func(n string) bool { return mws[n].ForwardAuth != nil }) {
		return nil, fmt.Errorf("%s: chain %s (%v) has no forwardAuth", path, name, flat)
	}
	lg.Printf("chain %s: %v", name, flat)
	return h, nil
}

type middlewareConfig struct {
	Chain *struct {
		Middlewares []string `yaml:"middlewares"`
	} `yaml:"chain"`
	Headers *struct {
		CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
	} `yaml:"headers"`
	ForwardAuth *forwardAuthConfig `yaml:"forwardAuth"`
}

type forwardAuthConfig struct {
	Address                  string   `yaml:"address"`
	TrustForwardHeader       bool     `yaml:"trustForwardHeader"`
	AuthResponseHeaders      []string `yaml:"authResponseHeaders"`
	AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
	AuthRequestHeaders       []string `yaml:"authRequestHeaders"`
	MaxResponseBodySize      *int64   `yaml:"maxResponseBodySize"`
}

// customRequestHeaders is Traefik's headers middleware for request headers: an empty
// value deletes the header (Header.Del: Go's server keys headers canonically, so any
// letter case of the name goes), any other value sets it.
func customRequestHeaders(set map[string]string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range set {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardAuth is Traefik v3's forwardAuth middleware (pkg/middlewares/auth/forward.go).
type forwardAuth struct {
	name    string
	cfg     forwardAuthConfig
	address string
	regex   *regexp.Regexp
	next    http.Handler
	client  *http.Client
	log     *log.Logger
}

// hopHeaders are the hop-by-hop headers Traefik leaves out of the auth request and answer.
var hopHeaders = []string{"Connection", "Keep-Alive", "Te", "Trailers", "Transfer-Encoding", "Upgrade"}

func newForwardAuth(name string, cfg forwardAuthConfig, backend string, next http.Handler, lg *log.Logger) (*forwardAuth, error) {
	addr, err := url.Parse(cfg.Address)
	if err != nil || addr.Host == "" {
		return nil, fmt.Errorf("forwardAuth %s: address %q", name, cfg.Address)
	}
	b := mustParse(backend)
	addr.Scheme, addr.Host = b.Scheme, b.Host
	fa := &forwardAuth{
		name: name, cfg: cfg, address: addr.String(), next: next, log: lg,
		client: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if cfg.AuthResponseHeadersRegex != "" {
		if fa.regex, err = regexp.Compile(cfg.AuthResponseHeadersRegex); err != nil {
			return nil, fmt.Errorf("forwardAuth %s: authResponseHeadersRegex: %v", name, err)
		}
	}
	lg.Printf("forwardAuth %s: %s (configured %s), trustForwardHeader %v, authResponseHeaders %v, regex %q",
		name, fa.address, cfg.Address, cfg.TrustForwardHeader, cfg.AuthResponseHeaders, cfg.AuthResponseHeadersRegex)
	return fa, nil
}

func (fa *forwardAuth) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	freq, err := http.NewRequestWithContext(req.Context(), http.MethodGet, fa.address, nil)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	fa.writeHeader(req, freq)
	res, err := fa.client.Do(freq)
	if err != nil {
		fa.log.Printf("forwardAuth %s: %v", fa.name, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	defer res.Body.Close()
	var body []byte
	if n := fa.cfg.MaxResponseBodySize; n != nil && *n >= 0 {
		body, err = io.ReadAll(io.LimitReader(res.Body, *n+1))
		if err == nil && int64(len(body)) > *n {
			fa.log.Printf("forwardAuth %s: answer body over maxResponseBodySize %d", fa.name, *n)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	} else {
		body, err = io.ReadAll(res.Body)
	}
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	fa.log.Printf("forwardAuth %s: %s %s%s (Accept %q, cookie %v) → %d %s", fa.name, req.Method, req.Host, req.URL.RequestURI(),
		req.Header.Get("Accept"), req.Header.Get("Cookie") != "", res.StatusCode, res.Header.Get("Location"))

	if res.StatusCode < http.StatusOK || res.StatusCode >= http.StatusMultipleChoices {
		for k, vs := range res.Header {
			w.Header()[k] = append([]string(nil), vs...)
		}
		for _, h := range hopHeaders {
			w.Header().Del(h)
		}
		if loc, err := res.Location(); err == nil {
			w.Header().Set("Location", loc.String())
		} else if !errors.Is(err, http.ErrNoLocation) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(body)
		return
	}

	if fa.regex != nil {
		for k := range req.Header {
			if fa.regex.MatchString(k) {
				req.Header.Del(k)
			}
		}
		for k, vs := range res.Header {
			if fa.regex.MatchString(k) {
				req.Header[k] = append([]string(nil), vs...)
			}
		}
	}
	for _, name := range fa.cfg.AuthResponseHeaders {
		k := http.CanonicalHeaderKey(name)
		req.Header.Del(k)
		if len(res.Header[k]) > 0 {
			req.Header[k] = append([]string(nil), res.Header[k]...)
		}
	}
	req.RequestURI = req.URL.RequestURI()
	fa.next.ServeHTTP(w, req)
}

// writeHeader is Traefik's: the original request's headers (all, or authRequestHeaders)
// less the hop-by-hop ones, and X-Forwarded-For, -Method, -Proto, -Port, -Host, -Uri.
func (fa *forwardAuth) writeHeader(req, freq *http.Request) {
	trust := fa.cfg.TrustForwardHeader
	for k, vs := range req.Header {
		freq.Header[k] = append([]string(nil), vs...)
	}
	for _, f := range req.Header["Connection"] {
		for _, h := range strings.Split(f, ",") {
			freq.Header.Del(strings.TrimSpace(h))
		}
	}
	for _, h := range hopHeaders {
		freq.Header.Del(h)
	}
	if len(fa.cfg.AuthRequestHeaders) > 0 {
		kept := http.Header{}
		for _, h := range fa.cfg.AuthRequestHeaders {
			if vs := freq.Header.Values(h); len(vs) > 0 {
				kept[http.CanonicalHeaderKey(h)] = append([]string(nil), vs...)
			}
		}
		freq.Header = kept
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		if prior, ok := req.Header["X-Forwarded-For"]; ok && trust {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		freq.Header.Set("X-Forwarded-For", ip)
	}
	pick := func(h, own string) {
		switch v := req.Header.Get(h); {
		case v != "" && trust:
			freq.Header.Set(h, v)
		case own != "":
			freq.Header.Set(h, own)
		default:
			freq.Header.Del(h)
		}
	}
	pick("X-Forwarded-Method", req.Method)
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	pick("X-Forwarded-Proto", proto)
	if v := req.Header.Get("X-Forwarded-Port"); v != "" && trust {
		freq.Header.Set("X-Forwarded-Port", v)
	}
	pick("X-Forwarded-Host", req.Host)
	pick("X-Forwarded-Uri", req.URL.RequestURI())
}

// upstreamPage is the protected app: it shows the identity the gateway gave it, and
// every X-Auth header in any spelling it received (a forged one would show here).
func upstreamPage(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Protected app</title></head><body><main>\n")
	b.WriteString("<h1>Protected app</h1>\n")
	fmt.Fprintf(&b, "<p id=\"user\">%s</p>\n", html.EscapeString(r.Header.Get("X-Auth-User-Id")))
	fmt.Fprintf(&b, "<p id=\"email\">%s</p>\n", html.EscapeString(r.Header.Get("X-Auth-Email")))
	fmt.Fprintf(&b, "<p id=\"path\">%s</p>\n", html.EscapeString(r.URL.RequestURI()))
	b.WriteString("<ul id=\"auth-headers\">\n")
	re := regexp.MustCompile(`(?i)^x[-_]auth[-_]`)
	var keys []string
	for k := range r.Header {
		if re.MatchString(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "<li>%s: %s</li>\n", html.EscapeString(k), html.EscapeString(v))
		}
	}
	b.WriteString("</ul>\n</main></body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, b.String())
}

// pipeListener is a listener reached only through its dial, in memory: the upstream
// has no port anyone else could reach.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "upstream.internal" }

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
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
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

	"go.yaml.in/yaml/v3"

	"github.com/talentforge/auth/e2e/internal/local"
	"github.com/talentforge/auth/pkg/platformtest"
)

const (
	depsTimeout = 15 * time.Minute // scripts/ui-deps.sh: apt-get and npm on a new machine
	gwPassword  = "harbour violet engine 58"
	gwDomain    = "example.test"
	routesFile  = "deploy/traefik/dynamic/routes.yml"
	chainName   = "protected" // the shipped chain a protected route attaches
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
	if err := local.RequireBins(root, "make test-ui", "auth", "token-worker"); err != nil {
		say("%v", err)
		return 1
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

	mailpit, err := local.MailpitBinary(ctx, root)
	if err != nil {
		say("FAIL mailpit: %v", err)
		return 1
	}

	ctx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	s := &stack{Stack: local.NewStack("uitest", root), timeout: *timeout}
	defer s.cleanup()
	if err := s.start(ctx, mailpit); err != nil {
		return s.FailedStart(ctx, err)
	}
	return s.walk(ctx, shotDir)
}

// stack is the run: Mailpit, bin/auth and bin/token-worker, and the gateway with its
// own bin/auth.
type stack struct {
	*local.Stack
	timeout time.Duration

	authURL string    // http://localhost:PORT, the browser's
	api     local.API // the same auth at http://127.0.0.1:PORT, for the runner's own calls
	gw      *gateway
	gwUser  string // the gateway user's id
	gwEmail string
}

func (s *stack) start(ctx context.Context, mailpit string) error {
	ports, err := s.Prepare(3, "OTEL_", "SESSION_COOKIE_DOMAIN", "TRUSTED_PROXIES")
	if err != nil {
		return err
	}
	authPort, gwAuthPort, workerPort := ports[0], ports[1], ports[2]
	s.authURL = fmt.Sprintf("http://localhost:%d", authPort)
	s.api = local.API{URL: fmt.Sprintf("http://127.0.0.1:%d", authPort)}
	s.Env = append(s.Env,
		"PUBLIC_URL="+s.authURL,
		"APP_URL="+s.authURL+"/ui", // the links in the emails open the hosted pages
		"WEBAUTHN_RP_ID=localhost",
		"EMAIL_VERIFICATION_REQUIRED=true",
		"RATE_LIMIT_ENABLED=false",
		"OTEL_EXPORTER_OTLP_ENDPOINT=", // tracing off
	)
	if err := s.StartMailpit(ctx, mailpit); err != nil {
		return err
	}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	if err := s.StartService(ctx, "auth", "auth", authPort); err != nil {
		return err
	}
	if err := s.StartService(ctx, "token-worker", "token-worker", workerPort); err != nil {
		return err
	}

	// The gateway: its listener first (its port is in the second auth's PUBLIC_URL),
	// then that auth, then serving.
	s.Suspects = []string{"gateway"}
	gwLog, err := os.Create(filepath.Join(s.Dir, "gateway.log"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gwLog.Close()
		return err
	}
	gwPort := ln.Addr().(*net.TCPAddr).Port
	backend := &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", gwAuthPort)}
	gw, err := newGateway(filepath.Join(s.Root, routesFile), backend, gwPort, log.New(gwLog, "", log.LstdFlags|log.Lmicroseconds))
	if err != nil {
		ln.Close()
		gwLog.Close()
		return err
	}
	s.gw = gw
	if err := os.WriteFile(filepath.Join(s.Dir, "gateway-ca.pem"), gw.caPEM, 0o600); err != nil {
		return err
	}

	if err := s.StartService(ctx, "auth-gateway", "auth", gwAuthPort,
		"PUBLIC_URL="+gw.authOrigin,
		"APP_URL="+gw.authOrigin+"/ui",
		"WEBAUTHN_RP_ID=auth."+gwDomain,
		"SESSION_COOKIE_DOMAIN="+gwDomain,
		"TRUSTED_PROXIES=127.0.0.1/32",
		"OAUTH_REDIRECT_ALLOWLIST="+gw.appOrigin,
	); err != nil {
		return err
	}
	go gw.serve(ln, gwLog)
	say("gateway on 127.0.0.1:%d: %s → auth-gateway, %s → chain %s of %s → the test upstream",
		gwPort, gw.authOrigin, gw.appOrigin, chainName, routesFile)
	s.Suspects = nil
	return nil
}

// cleanup closes the gateway, then the stack.
func (s *stack) cleanup() {
	if s.gw != nil {
		s.gw.close()
	}
	s.Cleanup()
}

// walk checks that both auths serve the hosted UI, makes the gateway's user through the
// API, then runs the browser walk-through.
func (s *stack) walk(ctx context.Context, shotDir string) int {
	all := []string{"auth", "auth-gateway", "gateway", "token-worker", "mailpit"}
	fail := func(format string, args ...any) int {
		if local.Interrupted(ctx) {
			say("interrupted: stopping")
			return 130
		}
		msg := fmt.Sprintf(format, args...)
		if ctx.Err() != nil {
			msg += fmt.Sprintf(" (the whole run is bounded to %s, -timeout)", s.timeout)
		}
		say("FAIL %s", msg)
		s.Fail(all...)
		return 1
	}
	if err := s.servesUI(ctx, s.api.URL); err != nil {
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
	cmd := exec.CommandContext(ctx, "node", filepath.Join(s.Root, "e2e", "ui", "walkthrough.mjs"))
	cmd.Dir = filepath.Join(s.Root, "e2e", "ui")
	cmd.Env = append(os.Environ(),
		"UI_AUTH_URL="+s.authURL,
		"UI_APP_URL="+s.authURL+"/ui",
		"UI_MAILPIT_URL="+s.MailURL,
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
		"NODE_EXTRA_CA_CERTS="+filepath.Join(s.Dir, "gateway-ca.pem"), // node's own requests to the gateway
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
	say("walk-through passed in %.1fs; %d screenshots in %s", time.Since(s.Started).Seconds(), n, shotDir)
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
	reg := map[string]string{"email": s.gwEmail, "password": gwPassword, "name": "Gateway"}
	if _, err := s.api.Call(ctx, http.MethodPost, "/v1/auth/register", "", reg, http.StatusAccepted, nil); err != nil {
		return err
	}
	tok, err := s.WaitLink(ctx, s.gwEmail, "/verify-email?token=")
	if err != nil {
		return err
	}
	var u struct {
		ID string `json:"id"`
	}
	if _, err := s.api.Call(ctx, http.MethodPost, "/v1/auth/email/verify", "", map[string]string{"token": tok}, http.StatusOK, &u); err != nil {
		return err
	}
	if u.ID == "" {
		return errors.New("POST /v1/auth/email/verify answered no user id")
	}
	s.gwUser = u.ID
	return nil
}

// client is for the runner's requests to auth that are not JSON calls.
var client = &http.Client{Timeout: 20 * time.Second}

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

func newGateway(routes string, backend *url.URL, port int, lg *log.Logger) (*gateway, error) {
	g := &gateway{
		authOrigin: fmt.Sprintf("https://auth.%s:%d", gwDomain, port),
		appOrigin:  fmt.Sprintf("https://app.%s:%d", gwDomain, port),
		port:       port,
		backend:    backend,
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
func loadChain(path, name string, backend *url.URL, next http.Handler, lg *log.Logger) (http.Handler, error) {
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

func newForwardAuth(name string, cfg forwardAuthConfig, backend *url.URL, next http.Handler, lg *log.Logger) (*forwardAuth, error) {
	addr, err := url.Parse(cfg.Address)
	if err != nil || addr.Host == "" {
		return nil, fmt.Errorf("forwardAuth %s: address %q", name, cfg.Address)
	}
	addr.Scheme, addr.Host = backend.Scheme, backend.Host
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

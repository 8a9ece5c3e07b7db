// Command enumtiming measures whether the answer time of the routes that must not tell
// whether an address has an account does tell it, against the real bin/auth (make build)
// in its own process, on a database, NATS namespace and keys of its own, on the machine's
// PostgreSQL, Redis and NATS:
//   - POST /v1/auth/password/forgot and /v1/auth/email/resend (issue 14, item 13), for an
//     address with an account and for addresses without one; the known account is
//     unverified, so both routes have an email to send it;
//   - POST /v1/auth/login with a wrong password, for that account and for addresses
//     without one (an unknown address pays a dummy argon2id verify).
//
// The unknown addresses are fresh each time. Requests alternate known and unknown (which
// goes first alternates too) from one keep-alive client, after a warm-up. It prints the
// median and p90 of each side and a Mann-Whitney U test of the two (SECURITY-TESTS.md,
// D.23 and D.25), and asserts nothing: tests never assert times
// (TestEmailRequestAnswerDoesTheSameWorkForKnownAndUnknownAddresses checks that both
// answers of forgot and resend do the same work).
//
// Run it from the repository root: make enum-timing (or go run ./e2e/cmd/enumtiming
// after make build). -n sets the samples per side and route (default 300), -bin the
// binary (another build, to compare).
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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

func say(format string, args ...any) { fmt.Printf("enumtiming: "+format+"\n", args...) }

func main() {
	n := flag.Int("n", 300, "samples per side (known, unknown) and route")
	warmup := flag.Int("warmup", 30, "unmeasured requests per side and route first")
	bin := flag.String("bin", "", "the auth binary (default bin/auth of the repository)")
	flag.Parse()
	if err := run(*n, *warmup, *bin); err != nil {
		say("FAIL %v", err)
		os.Exit(1)
	}
}

func run(n, warmup int, bin string) error {
	if n < 1 {
		return errors.New("-n must be at least 1")
	}
	root, err := local.RepoRoot()
	if err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(root, "bin", "auth")
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run make build first (make enum-timing does)", bin)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable"
	}
	natsURL := os.Getenv("NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %v", err)
	}
	db := "enumtiming_" + platformtest.RandomHex(5)
	u.Path = "/" + db
	own := u.String()
	u.Path = "/postgres"
	admin := u.String()
	ns := "enumtiming" + platformtest.RandomHex(5)
	tmp, err := os.MkdirTemp("", "enumtiming-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer cleanup(admin, db, natsURL, ns)

	ports, err := local.FreePorts(1)
	if err != nil {
		return err
	}
	authURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	// Every budget is wide, so nothing is refused and every known request would send
	// (a spent per-address budget would hide what sending costs); the client IP is one
	// of the run's own, claimed behind a trusted proxy, so no other run shares a budget.
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CONFIG_FILE" || strings.HasSuffix(k, "_FILE") || strings.HasPrefix(k, "RATE_LIMIT_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"DATABASE_URL="+own, "NATS_URL="+natsURL, "NATS_NAMESPACE="+ns,
		"EVENT_KEYS="+platformtest.KeySpec("timing"), "MFA_ENCRYPTION_KEYS="+platformtest.KeySpec("timing"),
		"JWT_KEYS_DIR="+filepath.Join(tmp, "keys"), "PUBLIC_URL="+authURL,
		fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", ports[0]), "LOG_LEVEL=warn", "LOG_FORMAT=console",
		"TRUSTED_PROXIES=127.0.0.1/32",
		"RATE_LIMIT_GLOBAL=1000000/h", "RATE_LIMIT_REGISTER=1000000/h", "RATE_LIMIT_FORGOT=1000000/h",
		"RATE_LIMIT_RESEND=1000000/h", "RATE_LIMIT_EMAILS_PER_ADDRESS=1000000/h",
		// The throttle's thresholds are at their maximum (100); the login probe spreads its
		// failures over accounts and client addresses so that none reaches them.
		"RATE_LIMIT_LOGIN=1000000/h", "LOGIN_THROTTLE_FAILURES=100", "LOGIN_THROTTLE_IP_FAILURES=100",
	)
	migrate := exec.CommandContext(ctx, bin, "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("%s migrate: %v\n%s", bin, err, out)
	}
	logPath := filepath.Join(tmp, "auth.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitReady(ctx, authURL+"/readyz", done); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%v\n%s", err, out)
	}
	version, _ := exec.Command(bin, "version").Output()
	say("%s (%s), database %s", bin, strings.TrimSpace(string(version)), db)

	c := &client{base: authURL, ip: fmt.Sprintf("2001:db8:%s:%s::1", platformtest.RandomHex(2), platformtest.RandomHex(2)),
		http: &http.Client{Timeout: 10 * time.Second}}
	known := "timing-known-" + platformtest.RandomHex(4) + "@example.com"
	if _, err := c.post(ctx, "/v1/auth/register", map[string]string{"email": known, "password": "plum kettle orbit 42"},
		http.StatusAccepted); err != nil {
		return err
	}
	unknown := func() string { return "timing-unknown-" + platformtest.RandomHex(6) + "@example.com" }
	// Wrong passwords count in the login throttle: each known account takes at most 90 of
	// them, and each login comes from an address (an IPv6 /64) of its own.
	knownLogins := []string{known}
	for len(knownLogins)*90 < warmup+n {
		k := "timing-known-" + platformtest.RandomHex(4) + "@example.com"
		if _, err := c.post(ctx, "/v1/auth/register", map[string]string{"email": k, "password": "plum kettle orbit 42"},
			http.StatusAccepted); err != nil {
			return err
		}
		knownLogins = append(knownLogins, k)
	}
	baseIP := c.ip

	say("%d samples per side and route after %d warm-up requests, known and unknown alternating", n, warmup)
	fmt.Printf("%-30s %-8s %10s %10s\n", "route", "address", "median", "p90")
	emailOnly := func(addr string) any { return map[string]string{"email": addr} }
	probes := []struct {
		route string
		want  int
		body  func(addr string) any
	}{
		{"/v1/auth/password/forgot", http.StatusAccepted, emailOnly},
		{"/v1/auth/email/resend", http.StatusAccepted, emailOnly},
		{"/v1/auth/login", http.StatusUnauthorized, func(addr string) any {
			return map[string]string{"email": addr, "password": "not the password 0"}
		}},
	}
	for _, p := range probes {
		route := p.route
		var k, un []time.Duration
		for i := range warmup + n {
			// Which side goes first alternates, so neither always follows the other.
			order := []bool{true, false}
			if i%2 == 1 {
				order = []bool{false, true}
			}
			for _, isKnown := range order {
				addr := known
				c.ip = baseIP
				if p.route == "/v1/auth/login" {
					addr = knownLogins[i%len(knownLogins)]
					c.ip = fmt.Sprintf("2001:db8:%s:%s::1", platformtest.RandomHex(2), platformtest.RandomHex(2))
				}
				if !isKnown {
					addr = unknown()
				}
				d, err := c.post(ctx, route, p.body(addr), p.want)
				if err != nil {
					return err
				}
				if i < warmup {
					continue
				}
				if isKnown {
					k = append(k, d)
				} else {
					un = append(un, d)
				}
			}
		}
		km, kp := stats(k)
		um, up := stats(un)
		fmt.Printf("%-30s %-8s %10s %10s\n", route, "known", km, kp)
		fmt.Printf("%-30s %-8s %10s %10s\n", "", "unknown", um, up)
		fmt.Printf("%-30s %-8s %10s %10s\n", "", "k - u", km-um, kp-up)
		z, pv := mannWhitney(k, un)
		fmt.Printf("%-30s Mann-Whitney U: z = %.2f, two-sided p = %.3f (a small p tells the sides apart)\n", "", z, pv)
	}
	return nil
}

// mannWhitney compares two samples by rank (the test SECURITY-TESTS.md names for timing
// oracles): z of the U statistic, ties averaged, normal approximation (fine at n ≥ 20),
// and its two-sided p-value.
func mannWhitney(a, b []time.Duration) (z, p float64) {
	type obs struct {
		d     time.Duration
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, d := range a {
		all = append(all, obs{d, true})
	}
	for _, d := range b {
		all = append(all, obs{d, false})
	}
	slices.SortFunc(all, func(x, y obs) int { return cmp.Compare(x.d, y.d) })
	var rankA, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].d == all[i].d {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1..j, averaged
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := rankA - n1*(n1+1)/2
	n := n1 + n2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return 0, 1
	}
	z = (u - n1*n2/2) / sigma
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}

// stats returns the median and the 90th percentile (nearest rank), to the microsecond.
func stats(ds []time.Duration) (median, p90 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))].Round(time.Microsecond)
	}
	return rank(0.5), rank(0.9)
}

type client struct {
	base, ip string
	http     *http.Client
}

// post sends one JSON request, wants the status want, and returns how long the answer
// took, from the send to the last byte of the body.
func (c *client) post(ctx context.Context, path string, body any, want int) (time.Duration, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", c.ip)
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(res.Body)
	d := time.Since(start)
	res.Body.Close()
	if err != nil {
		return 0, err
	}
	if res.StatusCode != want {
		return 0, fmt.Errorf("POST %s: %d %s, want %d", path, res.StatusCode, bytes.TrimSpace(data), want)
	}
	return d, nil
}

func waitReady(ctx context.Context, u string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("auth exited: %v", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("auth not ready at %s", u)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup drops the run's database and deletes its JetStream streams.
func cleanup(adminURL, db, natsURL, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, adminURL); err == nil {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			say("drop database %s: %v", db, err)
		}
		conn.Close(ctx)
	} else {
		say("drop database %s: %v", db, err)
	}
	nc, err := nats.Connect(natsURL, nats.Name("enumtiming"), nats.Timeout(5*time.Second))
	if err != nil {
		say("delete the streams of %s: %v", ns, err)
		return
	}
	defer nc.Close()
	if js, err := jetstream.New(nc); err == nil {
		if _, err := natstest.DeleteNamespace(ctx, js, ns); err != nil {
			say("delete the streams of %s: %v", ns, err)
		}
	}
}

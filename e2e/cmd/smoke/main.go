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
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/talentforge/auth/e2e/internal/local"
	"github.com/talentforge/auth/pkg/platformtest"
)

const (
	// runTimeout bounds the run once Mailpit is built (its first build takes minutes and
	// has its own bound).
	runTimeout = 3 * time.Minute
	appURL     = "http://app.smoke.test" // base of the links in the emails
	password1  = "plum kettle orbit 42"
	password2  = "quiet harbour lantern 7"
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
	if err := local.RequireBins(root, "make smoke", services...); err != nil {
		say("%v", err)
		return 1
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	mailpit, err := local.MailpitBinary(ctx, root)
	if err != nil {
		say("FAIL mailpit: %v", err)
		return 1
	}

	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	s := &stack{Stack: local.NewStack("smoke", root)}
	defer s.Cleanup()
	if err := s.start(ctx, mailpit); err != nil {
		return s.FailedStart(ctx, err)
	}
	return s.steps(ctx)
}

// stack is the smoke's run: Mailpit, bin/auth, bin/oauth and bin/token-worker.
type stack struct {
	*local.Stack
	auth local.API
}

// services are the processes the smoke starts after Mailpit, in order, each on a port of
// its own.
var services = []string{"auth", "oauth", "token-worker"}

func (s *stack) start(ctx context.Context, mailpit string) error {
	ports, err := s.Prepare(len(services))
	if err != nil {
		return err
	}
	s.auth = local.API{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	s.Env = append(s.Env,
		"PUBLIC_URL="+s.auth.URL,
		"APP_URL="+appURL,
		// Rate limits stay on, with room for many runs an hour from 127.0.0.1.
		"RATE_LIMIT_REGISTER=1000/h", "RATE_LIMIT_FORGOT=1000/h", "RATE_LIMIT_EMAIL_VERIFY=1000/h",
	)
	if err := s.StartMailpit(ctx, mailpit); err != nil {
		return err
	}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	for i, name := range services {
		if err := s.StartService(ctx, name, name, ports[i]); err != nil {
			return err
		}
	}
	s.Suspects = nil
	return nil
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
				map[string]string{"email": email, "password": password1, "name": "Smoke"}, http.StatusAccepted, &body); err != nil {
				return err
			}
			if body.Status != "verification_pending" {
				return fmt.Errorf("status %q, want verification_pending", body.Status)
			}
			return nil
		}},
		{"the verification email reaches Mailpit with " + appURL + "/verify-email?token=", []string{"token-worker", "auth", "mailpit"}, func(ctx context.Context) error {
			var err error
			verifyToken, err = s.WaitLink(ctx, email, appURL+"/verify-email?token=")
			return err
		}},
		{"POST /v1/auth/email/verify answers 200 with email_verified", []string{"auth"}, func(ctx context.Context) error {
			var u struct {
				ID            string `json:"id"`
				EmailVerified bool   `json:"email_verified"`
			}
			if err := s.call(ctx, http.MethodPost, "/v1/auth/email/verify", "", map[string]string{"token": verifyToken}, http.StatusOK, &u); err != nil {
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
			h, err := s.auth.Call(ctx, http.MethodGet, "/v1/auth/verify", access1, nil, http.StatusOK, nil)
			if err != nil {
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
			return s.call(ctx, http.MethodPost, "/v1/auth/password/forgot", "", map[string]string{"email": email}, http.StatusAccepted, nil)
		}},
		{"the reset email reaches Mailpit with " + appURL + "/reset-password?token=", []string{"token-worker", "auth", "mailpit"}, func(ctx context.Context) error {
			var err error
			resetToken, err = s.WaitLink(ctx, email, appURL+"/reset-password?token=")
			return err
		}},
		{"POST /v1/auth/password/reset answers 204", []string{"auth"}, func(ctx context.Context) error {
			return s.call(ctx, http.MethodPost, "/v1/auth/password/reset", "",
				map[string]string{"token": resetToken, "password": password2}, http.StatusNoContent, nil)
		}},
		{"the reset ended the session: GET /v1/auth/verify with the first token answers 401", []string{"auth"}, func(ctx context.Context) error {
			return s.call(ctx, http.MethodGet, "/v1/auth/verify", access1, nil, http.StatusUnauthorized, nil)
		}},
		{"POST /v1/auth/login with the old password answers 401 invalid_credentials", []string{"auth"}, func(ctx context.Context) error {
			var e apiError
			if err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password1},
				http.StatusUnauthorized, &e); err != nil {
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
			return s.call(ctx, http.MethodGet, "/v1/auth/verify", access2, nil, http.StatusOK, nil)
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
			if local.Interrupted(ctx) {
				say("[%d/%d] interrupted during %s: stopping", i+1, len(steps), st.name)
				return 130
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%v (the whole run is bounded to %s)", err, runTimeout)
			}
			say("[%d/%d] FAIL %s: %v", i+1, len(steps), st.name, err)
			s.Fail(st.suspects...)
			say("%d passed, 1 failed, %d not run (%.1fs)", passed, len(steps)-i-1, time.Since(s.Started).Seconds())
			return 1
		}
		passed++
		say("[%d/%d] ok %s (%s)", i+1, len(steps), st.name, time.Since(start).Round(time.Millisecond))
	}
	say("%d passed, 0 failed (%.1fs)", passed, time.Since(s.Started).Seconds())
	return 0
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call is a call to auth whose answer's headers do not matter.
func (s *stack) call(ctx context.Context, method, path, bearer string, body any, want int, out any) error {
	_, err := s.auth.Call(ctx, method, path, bearer, body, want, out)
	return err
}

func (s *stack) login(ctx context.Context, email, password string) (string, error) {
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
	}
	if err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password},
		http.StatusOK, &pair); err != nil {
		return "", err
	}
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != "Bearer" {
		return "", fmt.Errorf("token pair without access_token, refresh_token or token_type Bearer")
	}
	return pair.AccessToken, nil
}

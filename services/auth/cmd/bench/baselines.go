package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // served only with -pprof, on localhost
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/redisx"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/auth/internal/app"
)

// A baseline is a minimal handler doing only the irreducible work of a route, served
// by a process of its own (this binary, `bench baseline KIND`), as the service is. It
// shares the service's Redis, pool size and hasher parameters and bound.
const (
	baseVerifyCached = "verify-cached" // a map of verified tokens (else EdDSA) + one Redis GET
	baseVerifySig    = "verify-sig"    // EdDSA every time + one Redis GET
	baseRefresh      = "refresh"       // one refresh script + one signature
	baseHash         = "hash"          // the hasher alone
)

// ready is what a baseline process prints, as one JSON line, once it serves.
type ready struct {
	URL    string   `json:"url"`
	Access string   `json:"access,omitempty"` // a token the verify baselines accept
	Tokens []string `json:"tokens,omitempty"` // refresh tokens of the refresh baseline
	PID    int      `json:"-"`                // its process, when it has its own
}

// baseline is one minimal handler with what it needs to be driven.
type baseline struct {
	ready
	closers []func()
}

func (b *baseline) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// serveBaseline is the main of a baseline process: it serves kind on addr, prints its
// ready line and serves until stdin closes (its parent is gone), SIGTERM (proc.stop,
// Pdeathsig) or ctx ends; then it removes its keys and its Redis entries.
func serveBaseline(ctx context.Context, kind, addr string, tokens int) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := benchConfig(benchEnv())
	if err != nil {
		return err
	}
	b, err := newBaseline(ctx, cfg, kind, addr, tokens)
	if err != nil {
		return err
	}
	defer b.close()
	line, _ := json.Marshal(b.ready)
	fmt.Println(string(line))
	ctx, cancel := context.WithCancel(ctx)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	<-ctx.Done()
	return nil
}

func newBaseline(ctx context.Context, cfg *config.Config, kind, addr string, tokens int) (_ *baseline, err error) {
	b := &baseline{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	dir, err := os.MkdirTemp("", "auth-bench-base")
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { _ = os.RemoveAll(dir) })
	if _, err := token.EnsureKey(dir, token.AlgEdDSA, time.Now().Add(-time.Hour)); err != nil {
		return nil, err
	}
	keys, err := token.LoadKeySet(dir, token.WithPublishDelay(0))
	if err != nil {
		return nil, err
	}
	const iss, aud = "http://baseline.bench", "bench"
	issuer := token.NewIssuer(keys, iss, aud, 15*time.Minute)
	verifier := token.NewVerifier(keys, iss, aud)
	// The service's pool size: a pool setting is configuration, not work the route does.
	rdb, err := redisx.New(redisx.Options{URL: cfg.RedisURL, PoolSize: app.RedisPoolSize, MinIdleConns: 16})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { _ = rdb.Close() })
	sessions := session.New(rdb)

	var h echo.HandlerFunc
	switch kind {
	case baseVerifyCached, baseVerifySig:
		userID, sid := uuid.NewString(), uuid.NewString()
		if b.Access, _, err = issuer.Issue(userID, sid, time.Now(), []string{"user"}, []string{"pwd"}); err != nil {
			return nil, err
		}
		sessKey := "bench:baseline:session:" + sid
		if err := rdb.Set(ctx, sessKey, "x", time.Hour).Err(); err != nil {
			return nil, fmt.Errorf("redis must be running: %w", err)
		}
		b.closers = append(b.closers, func() { _ = rdb.Del(context.Background(), sessKey).Err() })
		check := verifier.Verify
		if kind == baseVerifyCached {
			check = cachedVerify(verifier)
		}
		h = func(c echo.Context) error {
			raw, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok {
				return c.NoContent(http.StatusUnauthorized)
			}
			cl, err := check(raw)
			if err != nil {
				return c.NoContent(http.StatusUnauthorized)
			}
			if err := rdb.Get(c.Request().Context(), "bench:baseline:session:"+cl.SessionID).Err(); err != nil {
				return c.NoContent(http.StatusUnauthorized)
			}
			c.Response().Header().Set("X-Auth-User-Id", cl.Subject)
			return c.NoContent(http.StatusOK)
		}
	case baseRefresh:
		if b.Tokens, err = newRefreshTokens(ctx, sessions, tokens); err != nil {
			return nil, err
		}
		h = func(c echo.Context) error {
			var in struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil {
				return c.NoContent(http.StatusBadRequest)
			}
			s, next, err := sessions.Refresh(c.Request().Context(), in.RefreshToken, session.Meta{IP: c.RealIP()})
			if err != nil {
				return c.NoContent(http.StatusUnauthorized)
			}
			at, _, err := issuer.Issue(s.UserID, s.ID, s.CreatedAt, []string{"user"}, s.AMR)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, map[string]string{"access_token": at, "refresh_token": next})
		}
	case baseHash:
		params := password.DefaultParams()
		params.Memory, params.Iterations, params.Parallelism =
			cfg.PasswordArgonMemoryKiB, cfg.PasswordArgonIterations, cfg.PasswordArgonParallelism
		hasher := password.NewHasher(params, cfg.PasswordHashConcurrency, cfg.PasswordHashQueueTimeout)
		h = func(c echo.Context) error {
			if _, err := hasher.Hash(c.Request().Context(), benchPassword); err != nil {
				if errors.Is(err, password.ErrBusy) {
					c.Response().Header().Set("Retry-After", "1")
					return c.NoContent(http.StatusServiceUnavailable)
				}
				return err
			}
			return c.NoContent(http.StatusOK)
		}
	default:
		return nil, fmt.Errorf("unknown baseline %q", kind)
	}
	if b.URL, err = b.serve(addr, h); err != nil {
		return nil, err
	}
	return b, nil
}

// cachedVerify skips the signature of a token it has verified (exp still checked).
func cachedVerify(v *token.Verifier) func(string) (*token.AccessClaims, error) {
	var seen sync.Map // raw token -> *token.AccessClaims
	return func(raw string) (*token.AccessClaims, error) {
		if v, ok := seen.Load(raw); ok {
			cl := v.(*token.AccessClaims)
			if time.Now().Before(cl.ExpiresAt.Time) {
				return cl, nil
			}
		}
		cl, err := v.Verify(raw)
		if err == nil {
			seen.Store(raw, cl)
		}
		return cl, err
	}
}

// serve runs h for every path on addr and returns its URL.
func (b *baseline) serve(addr string, h echo.HandlerFunc) (string, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Any("/*", h)
	if os.Getenv("BENCH_PPROF") != "" { // -pprof: each process can be profiled
		e.GET("/debug/pprof/*", echo.WrapHandler(http.DefaultServeMux))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.closers = append(b.closers, func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// newRefreshTokens creates n sessions for the refresh baseline.
func newRefreshTokens(ctx context.Context, sessions *session.Store, n int) ([]string, error) {
	out := make([]string, n)
	var uid string
	for i := range out {
		if i%50 == 0 { // a user holds at most 100 sessions
			uid = uuid.NewString()
		}
		_, rt, err := sessions.Create(ctx, uid, "baseline@example.com", []string{"pwd"}, "", session.Meta{IP: "127.0.0.1"})
		if err != nil {
			return nil, err
		}
		out[i] = rt
	}
	return out, nil
}

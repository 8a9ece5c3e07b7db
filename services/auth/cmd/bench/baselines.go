package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
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

// baselines are the minimal handlers, each on its own port, sharing the service's
// Redis and the hasher parameters and bound of cfg.
type baselines struct {
	verifySig, verifyCached, refresh, hash string // base URLs
	access                                 string // an access token the verify baselines accept
	sessions                               *session.Store
	userID                                 string
	closers                                []func()
}

func (b *baselines) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func startBaselines(ctx context.Context, cfg *config.Config) (_ *baselines, err error) {
	b := &baselines{}
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
	b.sessions = session.New(rdb)
	b.userID = uuid.NewString()
	sid := uuid.NewString()
	if b.access, _, err = issuer.Issue(b.userID, sid, time.Now(), []string{"user"}, []string{"pwd"}); err != nil {
		return nil, err
	}
	sessKey := "bench:baseline:session:" + sid
	if err := rdb.Set(ctx, sessKey, "x", time.Hour).Err(); err != nil {
		return nil, fmt.Errorf("redis must be running: %w", err)
	}
	b.closers = append(b.closers, func() { _ = rdb.Del(context.Background(), sessKey).Err() })

	// verify: one EdDSA check, one Redis GET; the cached variant skips the signature of
	// a token it has verified (exp still checked).
	verifyWith := func(check func(string) (*token.AccessClaims, error)) echo.HandlerFunc {
		return func(c echo.Context) error {
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
	}
	var seen sync.Map // raw token -> *token.AccessClaims
	cached := func(raw string) (*token.AccessClaims, error) {
		if v, ok := seen.Load(raw); ok {
			cl := v.(*token.AccessClaims)
			if time.Now().Before(cl.ExpiresAt.Time) {
				return cl, nil
			}
		}
		cl, err := verifier.Verify(raw)
		if err == nil {
			seen.Store(raw, cl)
		}
		return cl, err
	}
	if b.verifySig, err = b.serve(verifyWith(verifier.Verify)); err != nil {
		return nil, err
	}
	if b.verifyCached, err = b.serve(verifyWith(cached)); err != nil {
		return nil, err
	}

	// refresh: one Redis script (the session store's own) and one signature.
	if b.refresh, err = b.serve(func(c echo.Context) error {
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil {
			return c.NoContent(http.StatusBadRequest)
		}
		s, next, err := b.sessions.Refresh(c.Request().Context(), in.RefreshToken, session.Meta{IP: c.RealIP()})
		if err != nil {
			return c.NoContent(http.StatusUnauthorized)
		}
		at, _, err := issuer.Issue(s.UserID, s.ID, s.CreatedAt, []string{"user"}, s.AMR)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"access_token": at, "refresh_token": next})
	}); err != nil {
		return nil, err
	}

	// hash: the service's hasher parameters and bound, the hash alone.
	params := password.DefaultParams()
	params.Memory, params.Iterations, params.Parallelism =
		cfg.PasswordArgonMemoryKiB, cfg.PasswordArgonIterations, cfg.PasswordArgonParallelism
	hasher := password.NewHasher(params, cfg.PasswordHashConcurrency, hashQueueTimeout(cfg))
	if b.hash, err = b.serve(func(c echo.Context) error {
		if _, err := hasher.Hash(c.Request().Context(), "correct horse battery staple"); err != nil {
			if errors.Is(err, password.ErrBusy) {
				c.Response().Header().Set("Retry-After", "1")
				return c.NoContent(http.StatusServiceUnavailable)
			}
			return err
		}
		return c.NoContent(http.StatusOK)
	}); err != nil {
		return nil, err
	}
	return b, nil
}

// serve runs h for every path on a new localhost port and returns its URL.
func (b *baselines) serve(h echo.HandlerFunc) (string, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Any("/*", h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.closers = append(b.closers, func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// newRefreshTokens creates n sessions for the refresh baseline.
func (b *baselines) newRefreshTokens(ctx context.Context, n int) ([]string, error) {
	out := make([]string, n)
	var uid string
	for i := range out {
		if i%50 == 0 { // a user holds at most 100 sessions
			uid = uuid.NewString()
		}
		_, rt, err := b.sessions.Create(ctx, uid, "baseline@example.com", []string{"pwd"}, "", session.Meta{IP: "127.0.0.1"})
		if err != nil {
			return nil, err
		}
		out[i] = rt
	}
	return out, nil
}

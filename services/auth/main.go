// Command auth serves the auth API (no argument), applies migrations (`auth migrate`)
// adds a signing key (`auth keys rotate`) or reseals the TOTP secrets with the newest
// MFA_ENCRYPTION_KEYS key (`auth mfa reencrypt`).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/migrations"
	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/tracing"
	"github.com/talentforge/auth/services/auth/internal/app"
	"github.com/talentforge/auth/services/auth/internal/store"
)

// Set at build time with -ldflags -X.
var (
	version = "dev"
	commit  = "none"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := config.Load(":8081", nil)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0:
		return serve(ctx, cfg)
	case len(args) == 1 && args[0] == "migrate":
		v, err := migrations.Apply(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		fmt.Printf("database is at migration %d\n", v)
		return nil
	case len(args) == 2 && args[0] == "keys" && args[1] == "rotate":
		kid, err := token.GenerateKey(cfg.JWTKeysDir, cfg.JWTAlg, time.Now())
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Printf("added signing key %s: it is published now and signs from %s on\n", kid, app.JWKSMaxAge)
		return nil
	case len(args) == 2 && args[0] == "mfa" && args[1] == "reencrypt":
		n, err := reencryptMFA(ctx, cfg)
		if err != nil {
			return fmt.Errorf("mfa reencrypt: %w", err)
		}
		fmt.Printf("resealed %d TOTP secrets with the newest MFA_ENCRYPTION_KEYS key\n", n)
		return nil
	case len(args) == 1 && args[0] == "version":
		fmt.Println(version, commit)
		return nil
	}
	return fmt.Errorf("unknown command %q (commands: migrate, keys rotate, mfa reencrypt, version; none serves)", args)
}

// reencryptMFA reseals every TOTP secret with the first MFA_ENCRYPTION_KEYS key; the
// keys of the rows must still be listed. Idempotent.
func reencryptMFA(ctx context.Context, cfg *config.Config) (int, error) {
	keys, err := cfg.MFAKeyring()
	if err != nil {
		return 0, err
	}
	db, err := postgres.Open(cfg.DatabaseURL, nil, postgres.Options{MaxOpenConns: 2})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return store.NewMFA(store.NewUsers(db, nil, nil), keys).Reencrypt(ctx)
}

func serve(ctx context.Context, cfg *config.Config) error {
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, "auth")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopTracing, err := tracing.Start(ctx, log, "auth", version, cfg.OTELExporterOTLPEndpoint)
	if err != nil {
		return err
	}
	defer stopTracing() // after the server has drained
	log.Info("starting", zap.String("version", version), zap.String("commit", commit), zap.String("addr", cfg.HTTPAddr),
		zap.Bool("tracing", cfg.OTELExporterOTLPEndpoint != ""))
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Server.Run(ctx, cfg.HTTPAddr); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped")
	return nil
}

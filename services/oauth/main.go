// Command oauth serves social sign-in (no argument): GitHub, Google and one generic
// OpenID Connect issuer, issuing the same sessions and tokens as auth.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/tracing"
	"github.com/talentforge/auth/services/oauth/internal/app"
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
		fmt.Fprintln(os.Stderr, "oauth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := config.Load(":8082", nil)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0:
		return serve(ctx, cfg)
	case len(args) == 1 && args[0] == "version":
		fmt.Println(version, commit)
		return nil
	}
	return fmt.Errorf("unknown command %q (commands: version; none serves)", args)
}

func serve(ctx context.Context, cfg *config.Config) error {
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, "oauth")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopTracing, err := tracing.Start(ctx, log, "oauth", version, cfg.OTELExporterOTLPEndpoint)
	if err != nil {
		return err
	}
	defer stopTracing() // after the server has drained
	var names []string
	for _, p := range []config.OAuthProvider{cfg.OAuthProviders.Google, cfg.OAuthProviders.GitHub, cfg.OAuthProviders.OIDC} {
		if p.Enabled() {
			names = append(names, p.Name)
		}
	}
	log.Info("starting", zap.String("version", version), zap.String("commit", commit), zap.String("addr", cfg.HTTPAddr),
		zap.Strings("providers", names))
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

// Command token-worker consumes the auth events from JetStream: it sends the emails
// over SMTP, writes the audit log and runs the clean-up jobs. It serves /healthz,
// /readyz and /metrics only. Run with no argument it serves; it never migrates.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/tracing"
	"github.com/talentforge/auth/services/token-worker/internal/app"
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
		fmt.Fprintln(os.Stderr, "token-worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "version":
		fmt.Println(version, commit)
		return nil
	case len(args) > 0:
		return fmt.Errorf("unknown command %q (commands: version; none serves)", args)
	}
	cfg, err := config.Load(":8083", nil)
	if err != nil {
		return err
	}
	settings, err := app.LoadSettings(os.LookupEnv)
	if err != nil {
		return err
	}
	keys, err := cfg.EventKeyring()
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, "token-worker")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopTracing, err := tracing.Start(ctx, log, "token-worker", version, cfg.OTELExporterOTLPEndpoint)
	if err != nil {
		return err
	}
	defer stopTracing() // after the server has drained
	log.Info("starting", zap.String("version", version), zap.String("commit", commit), zap.String("addr", cfg.HTTPAddr),
		zap.Bool("tracing", cfg.OTELExporterOTLPEndpoint != ""))
	a, err := app.New(cfg, settings, keys, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Run(ctx, cfg.HTTPAddr); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// Command bench load-tests the auth service and compares each route with a baseline:
// a minimal handler in this binary doing only the irreducible work of that route.
//
//	go run ./services/auth/cmd/bench              # in-process service, fresh database
//	go run ./services/auth/cmd/bench -target URL  # a running service (limits off)
//
// Rows: GET /v1/auth/verify?role=user, GET /v1/users/me, POST /v1/auth/refresh,
// POST /v1/auth/login, POST /v1/auth/register. Baselines: verify (EdDSA check + one
// Redis GET, with and without a cache of verified signatures), refresh (one Redis
// script + one signature), hash (password.Hasher.Hash at the service's bound).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // served only with -pprof, on localhost
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/talentforge/auth/migrations"
	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/services/auth/internal/app"
)

func main() {
	var f flags
	flag.StringVar(&f.target, "target", "", "URL of a running auth service (default: start one in-process)")
	flag.DurationVar(&f.dur, "d", 3*time.Second, "duration of each cell (one route at one concurrency)")
	flag.StringVar(&f.levels, "c", "1,8,32,128", "concurrency levels")
	flag.StringVar(&f.rows, "rows", "verify,me,refresh,login,register", "routes to run")
	flag.StringVar(&f.pprof, "pprof", "", "serve net/http/pprof of this process on this address (e.g. 127.0.0.1:6060)")
	flag.BoolVar(&f.logs, "logs", true, "in-process service logs at info level (JSON encoded, discarded)")
	flag.Parse()
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type flags struct {
	target, levels, rows, pprof string
	dur                         time.Duration
	logs                        bool
}

func run(f flags) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if f.pprof != "" {
		go func() { _ = http.ListenAndServe(f.pprof, nil) }() //nolint:gosec // bench only
	}
	levels, err := parseLevels(f.levels)
	if err != nil {
		return err
	}
	env := benchEnv()
	cfg, err := config.Load("127.0.0.1:0", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	url := f.target
	if url == "" {
		dbName, dbURL, err := createDatabase(ctx)
		if err != nil {
			return fmt.Errorf("PostgreSQL must be running: %w", err)
		}
		defer dropDatabase(dbName)
		env["DATABASE_URL"] = dbURL
		dir, err := os.MkdirTemp("", "auth-bench-keys")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env["JWT_KEYS_DIR"] = dir
		if cfg, err = config.Load("127.0.0.1:0", func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		log := zap.NewNop()
		if f.logs {
			log = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
				zapcore.AddSync(io.Discard), zap.InfoLevel))
		}
		a, err := app.New(ctx, cfg, log, app.WithoutRelay())
		if err != nil {
			return fmt.Errorf("start auth: %w", err)
		}
		defer a.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- a.Server.Serve(ctx, ln) }()
		defer func() { cancel(); <-done }()
		url = "http://" + ln.Addr().String()
	}
	fmt.Printf("# %s, GOMAXPROCS=%d, %d cores; %s per cell; service %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), f.dur, url)

	base, err := startBaselines(ctx, cfg)
	if err != nil {
		return err
	}
	defer base.close()
	b := &bench{url: url, dur: f.dur, levels: levels, maxConc: levels[len(levels)-1]}
	return b.run(ctx, base, strings.Split(f.rows, ","))
}

// benchEnv is the service config: production defaults, limits off so the load
// generator (one IP) is not rate-limited, verification off so users log in at once.
func benchEnv() map[string]string {
	env := map[string]string{
		"PUBLIC_URL":                  "http://auth.bench",
		"LOG_LEVEL":                   "info",
		"EMAIL_VERIFICATION_REQUIRED": "false",
		"RATE_LIMIT_ENABLED":          "false",
		"EVENT_KEYS":                  "bench:" + randomKey(),
		"MFA_ENCRYPTION_KEYS":         "bench:" + randomKey(),
	}
	for _, k := range []string{"REDIS_URL", "NATS_URL", "PASSWORD_HASH_CONCURRENCY",
		"PASSWORD_ARGON_MEMORY_KIB", "PASSWORD_ARGON_ITERATIONS", "PASSWORD_HASH_QUEUE_TIMEOUT", "PPROF_ENABLED"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	return env
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-c: bad level %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func randomKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func createDatabase(ctx context.Context) (name, url string, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "auth_bench_" + hex.EncodeToString(b[:])
	cfg, err := pgx.ParseConfig(adminURL())
	if err != nil {
		return "", "", err
	}
	url = fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err = migrations.Apply(ctx, url)
	return name, url, err
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// progress receives one line per cell while the bench runs.
var progress = os.Stderr

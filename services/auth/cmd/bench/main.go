// Command bench load-tests the auth service and compares each route with a baseline:
// a minimal handler doing only the irreducible work of that route. The service, each
// baseline and this load generator are separate processes, as users run them.
//
//	go run ./services/auth/cmd/bench -auth bin/auth  # make bench: the built service, fresh database
//	go run ./services/auth/cmd/bench -target URL     # a running service (limits off)
//	go run ./services/auth/cmd/bench -inprocess      # profiling aid: service and baselines in this process
//
// Rows: GET /v1/auth/verify?role=user, GET /v1/users/me, POST /v1/auth/refresh,
// POST /v1/auth/login, POST /v1/auth/register. Baselines: verify (EdDSA check + one
// Redis GET, with and without a cache of verified signatures), refresh (one Redis
// script + one signature), hash (password.Hasher.Hash at the service's bound). At each
// concurrency level the baselines and rows run in alternating rounds; a row's ratio is
// the median of its per-round ratios to the baseline of the same round.
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
	"github.com/talentforge/auth/pkg/redisx"
	"github.com/talentforge/auth/services/auth/internal/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		fs := flag.NewFlagSet("baseline", flag.ExitOnError)
		kind := fs.String("kind", "", "verify-cached, verify-sig, refresh or hash")
		addr := fs.String("listen", "127.0.0.1:0", "listen address")
		tokens := fs.Int("tokens", 0, "refresh tokens to create (refresh)")
		_ = fs.Parse(os.Args[2:])
		if err := serveBaseline(context.Background(), *kind, *addr, *tokens); err != nil {
			fmt.Fprintln(os.Stderr, "bench baseline:", err)
			os.Exit(1)
		}
		return
	}
	var f flags
	flag.StringVar(&f.auth, "auth", "bin/auth", "the built auth binary to start (own process, fresh database)")
	flag.StringVar(&f.target, "target", "", "URL of a running auth service instead of -auth")
	flag.BoolVar(&f.inprocess, "inprocess", false, "profiling aid: the service and the baselines in this process (flatters the service)")
	flag.DurationVar(&f.dur, "d", 2*time.Second, "duration of each round of a cell (one route at one concurrency)")
	flag.IntVar(&f.rounds, "rounds", 3, "alternating rounds per cell")
	flag.StringVar(&f.levels, "c", "1,8,32,128", "concurrency levels")
	flag.StringVar(&f.rows, "rows", "verify,me,refresh,login,register", "routes to run")
	flag.StringVar(&f.logDir, "logs", "var/bench", "folder of the service's and the baselines' logs")
	flag.BoolVar(&f.count, "count", true, "after the load, count each row's Redis commands and PostgreSQL transactions per request")
	flag.StringVar(&f.pprof, "pprof", "", "-inprocess: serve net/http/pprof of this process on this address; "+
		"else any value sets PPROF_ENABLED=true on the service (its /debug/pprof/)")
	flag.Parse()
	f.countN = 1000
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type flags struct {
	auth, target, levels, rows, pprof, logDir string
	inprocess, count                          bool
	countN                                    int // requests per row counted (login and register: 30)
	dur                                       time.Duration
	rounds                                    int
}

func run(f flags) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	levels, err := parseLevels(f.levels)
	if err != nil {
		return err
	}
	if f.rounds < 1 {
		return fmt.Errorf("-rounds: at least 1")
	}
	if err := os.MkdirAll(f.logDir, 0o750); err != nil {
		return err
	}
	rows := strings.Split(f.rows, ",")
	maxConc := levels[len(levels)-1]
	env := benchEnv()
	if f.pprof != "" && !f.inprocess {
		env["PPROF_ENABLED"] = "true"
		_ = os.Setenv("BENCH_PPROF", "1") // the baselines, which inherit it
	}
	cfg, err := benchConfig(env)
	if err != nil {
		return err
	}
	url, method, pid, dbName := f.target, "processes: the running service "+f.target, 0, ""
	if url == "" {
		var dbURL string
		dbName, dbURL, err = createDatabase(ctx)
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
		if f.inprocess {
			stop, u, err := startInProcess(ctx, env, f.pprof)
			if err != nil {
				return err
			}
			defer stop()
			url, method = u, "in-process (profiling aid: client, service and baselines share one Go runtime)"
		} else {
			p, u, err := startAuthProc(ctx, f.auth, env, f.logDir)
			if err != nil {
				return err
			}
			defer p.stop()
			pid = p.cmd.Process.Pid
			url, method = u, "processes: "+f.auth+" (pid "+strconv.Itoa(p.cmd.Process.Pid)+"), each baseline and this load generator"
		}
	}
	fmt.Fprintf(out, "# %s, GOMAXPROCS=%d, %d cores; %d rounds of %s per cell; %s; service %s, logs in %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), f.rounds, f.dur, method, url, f.logDir)

	base, err := startBaselines(ctx, cfg, rows, maxConc, f.inprocess, f.logDir)
	if err != nil {
		return err
	}
	defer base.close()
	b := &bench{url: url, pid: pid, dur: f.dur, rounds: f.rounds, levels: levels, maxConc: maxConc}
	if f.count {
		rdb, err := redisx.New(redisx.Options{URL: cfg.RedisURL})
		if err != nil {
			return err
		}
		defer rdb.Close()
		b.stores = &storeCounter{rdb: rdb, pgURL: adminURL(), dbName: dbName, n: func(row string) int {
			if strings.Contains(row, "login") || strings.Contains(row, "register") {
				return min(30, f.countN)
			}
			return f.countN
		}}
	}
	return b.run(ctx, base, rows)
}

// baselineSet is the baselines the rows need, each a process of its own (or, with
// -inprocess, served by this one).
type baselineSet struct {
	verifyCached, verifySig, refresh, hash *ready
	closers                                []func()
}

func (s *baselineSet) close() {
	for _, c := range s.closers {
		c()
	}
}

func startBaselines(ctx context.Context, cfg *config.Config, rows []string, tokens int, inprocess bool, logDir string) (_ *baselineSet, err error) {
	s := &baselineSet{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	start := func(kind string) (*ready, error) {
		if inprocess {
			b, err := newBaseline(ctx, cfg, kind, "127.0.0.1:0", tokens)
			if err != nil {
				return nil, err
			}
			s.closers = append(s.closers, b.close)
			return &b.ready, nil
		}
		p, r, err := startBaselineProc(kind, tokens, logDir)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, p.stop)
		r.PID = p.cmd.Process.Pid
		return r, nil
	}
	want := func(names ...string) bool {
		for _, r := range rows {
			for _, n := range names {
				if r == n {
					return true
				}
			}
		}
		return false
	}
	if want("verify", "me") {
		if s.verifyCached, err = start(baseVerifyCached); err != nil {
			return nil, err
		}
		if s.verifySig, err = start(baseVerifySig); err != nil {
			return nil, err
		}
	}
	if want("refresh") {
		if s.refresh, err = start(baseRefresh); err != nil {
			return nil, err
		}
	}
	if want("login", "register") {
		if s.hash, err = start(baseHash); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startInProcess serves the service through app.New in this process.
func startInProcess(ctx context.Context, env map[string]string, pprof string) (func(), string, error) {
	if pprof != "" {
		go func() { _ = http.ListenAndServe(pprof, nil) }() //nolint:gosec // bench only
	}
	cfg, err := benchConfig(env)
	if err != nil {
		return nil, "", err
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zap.InfoLevel))
	a, err := app.New(ctx, cfg, log, app.WithoutRelay())
	if err != nil {
		return nil, "", fmt.Errorf("start auth: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, "", err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Server.Serve(sctx, ln) }()
	return func() { cancel(); <-done; a.Close() }, "http://" + ln.Addr().String(), nil
}

func benchConfig(env map[string]string) (*config.Config, error) {
	cfg, err := config.Load("127.0.0.1:0", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
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
		"PASSWORD_ARGON_MEMORY_KIB", "PASSWORD_ARGON_ITERATIONS", "PASSWORD_HASH_QUEUE_TIMEOUT", "PPROF_ENABLED", "GOGC", "GOMEMLIMIT", "GOMAXPROCS"} {
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

// out receives the tables, progress one line per round while the bench runs.
var (
	out      io.Writer = os.Stdout
	progress io.Writer = os.Stderr
)

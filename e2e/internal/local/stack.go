package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/platformtest"
)

// tailLines is how much of a log a failure shows.
const tailLines = 40

// Stack is one run of the services on this machine: a database, a NATS namespace and a
// folder of its own, and the processes it started, each logging to NAME.log there.
// Cleanup undoes all of it, whatever point the run reached.
type Stack struct {
	Name    string    // the command's: its messages' prefix, and that of the run's names
	Root    string    // the repository's
	Started time.Time // when NewStack made it
	Dir     string    // the run's files: logs, keys; kept after a failure
	Env     []string  // the services' environment; Prepare sets what they all share
	MailURL string    // Mailpit's API, once Prepare has reserved its ports
	// Suspects are the processes whose logs explain a failure of the current start step.
	Suspects []string
	Failed   bool // keeps Dir, with the logs

	db, adminURL, natsURL, ns string
	smtpPort                  int
	procs                     []*proc
}

// NewStack is a run of the command name in the repository at root; nothing is started.
func NewStack(name, root string) *Stack {
	return &Stack{Name: name, Root: root, Started: time.Now()}
}

// Say prints a line of the run, prefixed with its name.
func (s *Stack) Say(format string, args ...any) {
	fmt.Printf(s.Name+": "+format+"\n", args...)
}

// Prepare claims the run's share of the machine: it checks that PostgreSQL, NATS and
// Redis answer, names the run's database and NATS namespace, makes its folder and
// reserves n loopback ports for the caller (returned) and two for Mailpit, at once so
// that all differ. Env becomes the caller's environment less the settings that would
// clash with the run's (CONFIG_FILE, the *_FILE secrets, SMTP_*, and the keys in drop, a
// key ending in _ standing for all that start so), then the run's database, namespace,
// keys, SMTP to Mailpit and console logs; the caller appends its own (the last of a
// duplicate key is used).
func (s *Stack) Prepare(n int, drop ...string) ([]int, error) {
	s.natsURL = os.Getenv("NATS_URL")
	if s.natsURL == "" {
		s.natsURL = "nats://127.0.0.1:4222"
	}
	own, admin, err := databaseURLs(s.Name + "_" + platformtest.RandomHex(5))
	if err != nil {
		return nil, err
	}
	s.db, s.adminURL = strings.TrimPrefix(hostPath(own).Path, "/"), admin
	for name, addr := range map[string]string{"PostgreSQL": hostPath(own).Host, "NATS": hostPath(s.natsURL).Host} {
		if !answers(addr) {
			return nil, fmt.Errorf("%s is not answering on %s (bash scripts/services.sh starts it)", name, addr)
		}
	}
	if os.Getenv("REDIS_URL") == "" && !answers("127.0.0.1:6379") {
		return nil, errors.New("redis is not answering on 127.0.0.1:6379 (bash scripts/services.sh starts it)")
	}

	if s.Dir, err = os.MkdirTemp("", s.Name+"-"); err != nil {
		return nil, err
	}
	ports, err := FreePorts(n + 2)
	if err != nil {
		return nil, err
	}
	s.smtpPort = ports[n]
	s.MailURL = fmt.Sprintf("http://127.0.0.1:%d", ports[n+1])
	s.ns = s.Name + platformtest.RandomHex(5)
	s.Say("database %s, NATS namespace %s, files in %s", s.db, s.ns, s.Dir)

	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !clashes(k, drop) {
			s.Env = append(s.Env, kv)
		}
	}
	s.Env = append(s.Env,
		"DATABASE_URL="+own,
		"NATS_URL="+s.natsURL,
		"NATS_NAMESPACE="+s.ns,
		"EVENT_KEYS="+platformtest.KeySpec(s.Name),
		"MFA_ENCRYPTION_KEYS="+platformtest.KeySpec(s.Name),
		"JWT_KEYS_DIR="+filepath.Join(s.Dir, "keys"), // the first auth makes the key, the others read it
		"SMTP_HOST=127.0.0.1", fmt.Sprintf("SMTP_PORT=%d", s.smtpPort), "SMTP_TLS=none",
		"SMTP_FROM=no-reply@"+s.Name+".test",
		"LOG_FORMAT=console",
	)
	return ports[:n], nil
}

// clashes tells whether the caller's setting k would fight the run's own.
func clashes(k string, drop []string) bool {
	if k == "CONFIG_FILE" || strings.HasSuffix(k, "_FILE") || strings.HasPrefix(k, "SMTP_") {
		return true
	}
	return slices.ContainsFunc(drop, func(d string) bool {
		return k == d || strings.HasSuffix(d, "_") && strings.HasPrefix(k, d)
	})
}

// databaseURLs are the run's own database on the server of DATABASE_URL (default the
// local one) and that server's postgres database, from which ours is dropped.
func databaseURLs(db string) (own, admin string, err error) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/auth?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("DATABASE_URL: %v", err)
	}
	u.Path = "/" + db
	own = u.String()
	u.Path = "/postgres"
	return own, u.String(), nil
}

// hostPath parses a URL that databaseURLs or NATS_URL gave; a bad one has no host, and
// fails as a service not answering.
func hostPath(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// Migrate runs bin/auth migrate, which creates the run's database; its output goes to
// migrate.log.
func (s *Stack) Migrate(ctx context.Context) error {
	s.Suspects = []string{"migrate"}
	migrate := exec.CommandContext(ctx, filepath.Join(s.Root, "bin", "auth"), "migrate")
	migrate.Env = s.Env
	out, err := migrate.CombinedOutput()
	_ = os.WriteFile(filepath.Join(s.Dir, "migrate.log"), out, 0o600)
	if err != nil {
		return fmt.Errorf("bin/auth migrate: %v", err)
	}
	s.Say("bin/auth migrate created %s", s.db)
	return nil
}

// StartService starts bin/BIN as name on 127.0.0.1:port (HTTP_ADDR), with Env and then
// extra, and waits for its /readyz.
func (s *Stack) StartService(ctx context.Context, name, bin string, port int, extra ...string) error {
	s.Suspects = []string{name}
	env := append(slices.Clip(s.Env), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	if err := s.spawn(name, append(env, extra...), filepath.Join(s.Root, "bin", bin)); err != nil {
		return err
	}
	return s.waitReady(ctx, name, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
}

// FailedStart reports err from starting the run and gives the exit code: 130 when Ctrl-C
// or SIGTERM cut the start short, else 1, after the logs of the step's suspects.
func (s *Stack) FailedStart(ctx context.Context, err error) int {
	if Interrupted(ctx) {
		s.Say("interrupted while starting: stopping")
		return 130
	}
	s.Say("FAIL start: %v", err)
	s.Fail(s.Suspects...)
	return 1
}

// proc is one process the run started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // once done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// spawn starts a process with its output in NAME.log of the run. It gets SIGTERM should
// the command itself die without cleaning up.
func (s *Stack) spawn(name string, env []string, path string, args ...string) error {
	f, err := os.Create(filepath.Join(s.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	s.procs = append(s.procs, p)
	s.Say("started %s (pid %d)", name, cmd.Process.Pid)
	return nil
}

func (s *Stack) proc(name string) *proc {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// waitReady waits until GET u answers 200, for up to 30 s, while the process lives.
func (s *Stack) waitReady(ctx context.Context, name, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if p := s.proc(name); p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v", name, p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.Say("%s ready: %s", name, u)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %v", name, u, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Cleanup stops every process (SIGTERM, the last started first; SIGKILL after 15 s),
// deletes the namespace's streams, drops the database and removes the run's folder
// (kept, with the logs, after a failure).
func (s *Stack) Cleanup() {
	for _, p := range slices.Backward(s.procs) {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			s.Say("%s did not stop in 15 s: killed", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if len(s.procs) > 0 {
		s.Say("stopped %d processes", len(s.procs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.ns != "" {
		if n, err := s.deleteStreams(ctx); err != nil {
			s.Say("delete the streams of %s: %v", s.ns, err)
		} else if n > 0 {
			s.Say("deleted %d JetStream streams of %s", n, s.ns)
		}
	}
	if s.db != "" {
		if err := dropDatabase(ctx, s.adminURL, s.db); err != nil {
			s.Say("drop database %s: %v", s.db, err)
		} else {
			s.Say("dropped database %s", s.db)
		}
	}
	if s.Dir != "" {
		if s.Failed {
			s.Say("logs kept in %s", s.Dir)
		} else {
			_ = os.RemoveAll(s.Dir)
		}
	}
}

// deleteStreams deletes the JetStream streams of the run's namespace
// (natstest.DeleteNamespace).
func (s *Stack) deleteStreams(ctx context.Context) (int, error) {
	nc, err := nats.Connect(s.natsURL, nats.Name(s.Name), nats.Timeout(5*time.Second))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	return natstest.DeleteNamespace(ctx, js, s.ns)
}

func dropDatabase(ctx context.Context, adminURL, db string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}

// Fail marks the run failed, which keeps its folder, and prints the tail of the named
// logs (NAME.log of the folder: a process's, or one the command writes there) and of
// any process that exited: those explain the failure.
func (s *Stack) Fail(names ...string) {
	s.Failed = true
	for _, p := range s.procs {
		if p.exited() && !slices.Contains(names, p.name) {
			names = append(names, p.name)
		}
	}
	shown := 0
	for _, name := range names {
		path := filepath.Join(s.Dir, name+".log")
		lines, err := tail(path, tailLines)
		if err != nil || len(lines) == 0 {
			continue
		}
		state := ""
		if p := s.proc(name); p != nil && p.exited() {
			state = fmt.Sprintf(", exited: %v", p.err)
		}
		fmt.Printf("----- last %d lines of %s (%s%s) -----\n", len(lines), name, path, state)
		for _, l := range lines {
			fmt.Println(l)
		}
		shown++
	}
	if shown > 0 {
		fmt.Println("-----")
	}
}

func tail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, sc.Err()
}

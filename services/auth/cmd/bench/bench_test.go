package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The baselines are this binary run as `bench baseline`: in a test, the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		main()
		return
	}
	os.Exit(m.Run())
}

// make bench as users run it, in small: the built service, the baselines and the load
// generator each their own process, against the machine's PostgreSQL and Redis. The
// table has every row with its answers, CPU per request and ratio, then the memory and
// the store operations of each row.
func TestProcessBenchPrintsTheTable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "auth")
	build := exec.Command("go", "build", "-o", bin, "github.com/talentforge/auth/services/auth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build auth: %v\n%s", err, b)
	}
	var buf bytes.Buffer
	out, progress = &buf, &bytes.Buffer{}
	pgStatFlush = 100 * time.Millisecond // PostgreSQL's counts are not checked here
	logs := t.TempDir()
	err := run(flags{auth: bin, levels: "4", rows: "verify,me,refresh,login", dur: 300 * time.Millisecond,
		rounds: 2, logDir: logs, count: true, countN: 20})
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(logs, "auth.log"))
		t.Fatalf("bench: %v\n%s\nauth log:\n%s", err, buf.String(), b)
	}
	text := buf.String()
	if !strings.Contains(text, "processes: "+bin+" (pid ") {
		t.Fatalf("the header does not name the process method:\n%s", text)
	}
	// route | conc | req/s | p50 | p90 | p99 | errors (503) | CPU | ratio | p99 ratio | target
	row := func(name string) []string {
		t.Helper()
		for _, l := range strings.Split(text, "\n") {
			if f := strings.Split(l, " | "); len(f) == 11 && strings.TrimPrefix(f[0], "| ") == name {
				return f
			}
		}
		t.Fatalf("no row %q in:\n%s", name, text)
		return nil
	}
	ratio := regexp.MustCompile(`^\d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)$`)
	for _, name := range []string{"GET /v1/auth/verify?role=", "GET /v1/users/me", "POST /v1/auth/refresh", "POST /v1/auth/login"} {
		f := row(name)
		if f[2] == "0" || f[6] != "0 (0)" || f[7] == "" || f[7] == "0" || !ratio.MatchString(f[8]) {
			t.Errorf("row %q: req/s %s, errors %s, CPU µs %q, ratio %q", name, f[2], f[6], f[7], f[8])
		}
	}
	for _, name := range []string{"base: verify (cached sig)", "base: verify (sig+GET)", "base: refresh (script+sign)", "base: password hash"} {
		if f := row(name); f[2] == "0" || f[6] != "0 (0)" || f[7] == "" {
			t.Errorf("baseline %q: req/s %s, errors %s, CPU µs %q", name, f[2], f[6], f[7])
		}
	}
	if !regexp.MustCompile(`service memory \(RSS\): \d+ MiB at rest after setup, \d+ MiB peak`).MatchString(text) {
		t.Errorf("no memory line:\n%s", text)
	}
	// Other tests share the Redis: the counts carry their noise, not the commands' names.
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "| GET /v1/auth/verify?role= | 20 (20 ok) | ") {
			if !strings.Contains(l, "HMGET") || !strings.Contains(l, "GET 1") {
				t.Errorf("verify's store operations: %s", l)
			}
			return
		}
	}
	t.Errorf("no store operations of verify:\n%s", text)
}

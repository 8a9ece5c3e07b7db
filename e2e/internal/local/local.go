// Package local holds what the e2e commands (make smoke, make test-ui) need to run the
// stack on this machine: the repository's root, free loopback ports, the run's share of
// the machine's PostgreSQL and NATS, the services as child processes with a log file
// each (Stack), Mailpit catching their emails, and calls to their JSON APIs.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// RepoRoot is the folder holding go.work, from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the repository (no go.work above the working directory)")
		}
		dir = parent
	}
}

// RequireBins fails, naming the make target that builds them, when a binary of bin/ is
// missing: the commands run what make build made, never a stale go run of their own.
func RequireBins(root, target string, names ...string) error {
	for _, b := range names {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			return fmt.Errorf("bin/%s is missing: run make build first (%s does)", b, target)
		}
	}
	return nil
}

// Interrupted tells whether ctx ended by Ctrl-C or SIGTERM rather than by its timeout:
// an interrupted run exits 130 without calling it a failure.
func Interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// FreePorts reserves n distinct loopback ports and releases them for the processes.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// answers tells whether something listens on addr.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

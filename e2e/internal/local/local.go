// Package local holds what the e2e commands need to run the stack on this machine:
// the repository's root and free loopback ports.
package local

import (
	"errors"
	"net"
	"os"
	"path/filepath"
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

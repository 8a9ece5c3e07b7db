package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process of the bench: the service or a baseline. Its stdin is a
// pipe the bench holds, so a baseline stops when the bench is gone, and the kernel
// sends it SIGTERM when the bench dies (Pdeathsig).
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

func startProc(name string, cmd *exec.Cmd, logFile string) (*proc, io.Reader, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	log, err := os.Create(logFile)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stdin: in, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); log.Close() }()
	return p, out, nil
}

// stop asks the process to end (SIGTERM), then kills it after 20 s.
func (p *proc) stop() {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startBaselineProc runs `bench baseline KIND` (this binary) and reads its ready line.
func startBaselineProc(kind string, tokens int, logDir string) (*proc, *ready, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self, "baseline", "-kind", kind, "-tokens", strconv.Itoa(tokens))
	p, out, err := startProc("baseline "+kind, cmd, filepath.Join(logDir, "baseline-"+kind+".log"))
	if err != nil {
		return nil, nil, err
	}
	line := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		if sc.Scan() {
			line <- sc.Bytes()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		var r ready
		if !ok || json.Unmarshal(l, &r) != nil || r.URL == "" {
			p.stop()
			return nil, nil, fmt.Errorf("baseline %s did not start: see %s", kind, filepath.Join(logDir, "baseline-"+kind+".log"))
		}
		return p, &r, nil
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, nil, fmt.Errorf("baseline %s: no ready line within 60 s", kind)
	}
}

// startAuthProc runs the built service binary on a free loopback port with env (and
// nothing of the bench's environment but PATH and HOME), logging to logDir/auth.log,
// and waits until it is ready.
func startAuthProc(ctx context.Context, bin string, env map[string]string, logDir string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HTTP_ADDR=" + addr}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logFile := filepath.Join(logDir, "auth.log")
	p, out, err := startProc("auth", cmd, logFile)
	if err != nil {
		return nil, "", err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return nil, "", fmt.Errorf("%s exited (%v): see %s", bin, err, logFile)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, url, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("%s not ready within 60 s: see %s", bin, logFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cpuTime is the user + system CPU time process pid has used (0 when unknown).
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

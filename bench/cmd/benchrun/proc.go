package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children tracks every process benchrun started, so that they can be
// stopped by PID whatever happens (error, signal).
var children = struct {
	sync.Mutex
	procs map[int]*exec.Cmd
}{procs: map[int]*exec.Cmd{}}

func track(c *exec.Cmd) {
	children.Lock()
	children.procs[c.Process.Pid] = c
	children.Unlock()
}

func untrack(c *exec.Cmd) {
	children.Lock()
	delete(children.procs, c.Process.Pid)
	children.Unlock()
}

// stopAll sends sig to every tracked child (by PID).
func stopAll(sig os.Signal) {
	children.Lock()
	defer children.Unlock()
	for pid, c := range children.procs {
		if err := c.Process.Signal(sig); err == nil {
			fmt.Fprintf(os.Stderr, "benchrun: sent %v to pid %d\n", sig, pid)
		}
	}
}

// server is a started server process.
type server struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	logf   *os.File
	stderr *tailBuffer
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts bin with args (placeholders already substituted),
// logging to logPath, and waits until GET /health answers 200.
func startServer(ctx context.Context, name, bin string, args []string, addr, logPath string) (*server, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	tail := &tailBuffer{max: 4096}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, tail)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	track(cmd)
	s := &server{name: name, addr: addr, cmd: cmd, done: make(chan struct{}), logf: logf, stderr: tail}
	go func() {
		s.err = cmd.Wait()
		untrack(cmd)
		close(s.done)
	}()
	fmt.Fprintf(os.Stderr, "benchrun: started %s pid %d on %s: %s %s\n", name, cmd.Process.Pid, addr, bin, strings.Join(args, " "))
	if err := waitHealthy(ctx, s, 20*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func waitHealthy(ctx context.Context, s *server, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	url := "http://" + s.addr + "/health"
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before becoming healthy (%w); stderr:\n%s", s.name, s.err, s.stderr.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy at %s after %s (last error: %w)", s.name, url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server by PID: SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(os.Stderr, "benchrun: %s pid %d ignored SIGTERM, killing\n", s.name, s.pid())
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.logf.Close()
	// Keep only logs that say something.
	if st, err := os.Stat(s.logf.Name()); err == nil && st.Size() == 0 {
		_ = os.Remove(s.logf.Name())
		_ = os.Remove(filepath.Dir(s.logf.Name())) // only succeeds when empty
	}
}

// runTool runs a command to completion (tracked, so a signal stops it),
// with its stdout copied to os.Stdout and to outPath when given.
func runTool(ctx context.Context, bin string, args []string, outPath string) error {
	cmd := exec.Command(bin, args...)
	var out io.Writer = os.Stdout
	if outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	fmt.Fprintf(os.Stderr, "benchrun: %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	track(cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		untrack(cmd)
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			_ = err // stopped on purpose: its exit status does not matter
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			if err := <-done; err != nil {
				fmt.Fprintf(os.Stderr, "benchrun: killed %s: %v\n", bin, err)
			}
		}
		untrack(cmd)
		return ctx.Err()
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var errBuild = errors.New("build failed")

// build runs go build for each package into binDir.
func build(ctx context.Context, binDir string, pkgs map[string]string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	for name, pkg := range pkgs {
		out := binDir + "/" + name
		fmt.Fprintf(os.Stderr, "benchrun: go build -o %s %s\n", out, pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Stdout = os.Stderr
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%w: go build %s: %w", errBuild, pkg, err)
		}
	}
	return nil
}

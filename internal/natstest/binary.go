package natstest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BinaryName is the executable RunBinary looks for. CI installs it with
// `go install github.com/nats-io/nats-server/v2@v2.15.2`.
const BinaryName = "nats-server"

// Process is the real nats-server binary running as a child of the test, with
// JetStream on a random loopback port and its store in a temporary directory.
type Process struct {
	cmd   *exec.Cmd
	bin   string
	dir   string
	log   string
	extra []string
	port  int
}

// RunBinary starts the nats-server binary (found on PATH, else in
// $(go env GOBIN) or $(go env GOPATH)/bin) with -js on a random loopback port
// and a temporary store directory, waits up to 15 s until it answers, and
// kills it by its PID at tb's cleanup. When the binary is missing it fails tb
// if the CI environment variable is non-empty, and skips tb otherwise.
// extra arguments are appended to the command line.
func RunBinary(tb testing.TB, extra ...string) *Process {
	tb.Helper()
	bin, err := FindBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("natstest: %v (CI must install it: go install github.com/nats-io/nats-server/v2@v2.15.2)", err)
		}
		tb.Skipf("natstest: %v", err)
	}
	dir := tb.TempDir()
	p := &Process{
		bin: bin, dir: dir, port: freePort(tb), extra: extra,
		log: filepath.Join(dir, "nats-server.log"),
	}
	tb.Cleanup(func() { p.Kill(tb) })
	p.start(tb)
	return p
}

// FindBinary returns the path of the nats-server binary: on PATH, else in the
// directory `go install` puts binaries in.
func FindBinary() (string, error) {
	if path, err := exec.LookPath(BinaryName); err == nil {
		return path, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// One line each, GOBIN first; an unset GOBIN is an empty line.
		lines := strings.Split(strings.TrimRight(string(out), "\r\n"), "\n")
		if len(lines) == 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, gopath := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gopath, "bin"))
			}
		}
	}
	for _, d := range dirs {
		path := filepath.Join(d, BinaryName)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH nor in %v", BinaryName, dirs)
}

func (p *Process) start(tb testing.TB) {
	tb.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	defer logf.Close()
	args := append([]string{
		"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"-sd", filepath.Join(p.dir, "store"), "-n", "natstest-binary",
	}, p.extra...)
	cmd := exec.Command(p.bin, args...) //nolint:gosec // G204: the nats-server binary FindBinary found, with arguments built here
	// An *os.File needs no copying goroutine; the log is read on failure.
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("natstest: start %s: %v", p.bin, err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(readyTimeout)
	for {
		if err := p.hello(); err == nil {
			return
		} else if time.Now().After(deadline) {
			p.Kill(tb)
			tb.Fatalf("natstest: %s not ready within %v: %v\n%s", p.bin, readyTimeout, err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hello connects and reads the server's INFO line.
func (p *Process) hello() error {
	conn, err := net.DialTimeout("tcp", p.addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

func (p *Process) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is the server's client URL; it stays the same across restarts.
func (p *Process) URL() string { return "nats://" + p.addr() }

// PID is the process id of the running server, 0 when stopped.
func (p *Process) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Log returns what the server has written to its standard output and error.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Stop asks the server to shut down (SIGTERM) and waits for it, killing it
// after 15 s. It does nothing when the server is stopped.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(readyTimeout):
		_ = p.cmd.Process.Kill()
		<-done
		tb.Errorf("natstest: %s ignored SIGTERM for %v; killed", p.bin, readyTimeout)
	}
	p.cmd = nil
}

// Kill kills the server (SIGKILL), as a crash would, and waits for it. It
// does nothing when the server is stopped.
func (p *Process) Kill(tb testing.TB) {
	tb.Helper()
	if p.cmd == nil {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Errorf("natstest: kill %d: %v", p.cmd.Process.Pid, err)
	}
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Restart starts the server again with the same port, store and arguments,
// killing it first if it is running.
func (p *Process) Restart(tb testing.TB) {
	tb.Helper()
	p.Kill(tb)
	p.start(tb)
}

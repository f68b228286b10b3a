// Package proc starts and stops the processes of a benchmark or soak run:
// servers on loopback ports, waited for until healthy, and tools run to
// completion. Every process is tracked by PID in a Group, so that it is
// stopped (SIGTERM, then SIGKILL) whatever happens: normal end, error, or a
// signal to the parent; on Linux the kernel also kills the children should
// the parent die.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrExited is returned by StartServer when the server exits before it
	// is healthy; the error also carries the end of its standard error.
	ErrExited = errors.New("proc: exited before becoming healthy")
	// ErrBuild is returned by Build when go build fails.
	ErrBuild = errors.New("proc: build failed")
)

// stopGrace is how long Stop and Run wait after SIGTERM before SIGKILL.
var stopGrace = 5 * time.Second

// Group tracks the processes it started. Its methods are safe for
// concurrent use; the zero value is ready to use.
type Group struct {
	mu    sync.Mutex
	procs map[int]*exec.Cmd
	// Log receives one line per process started or signalled (nil:
	// os.Stderr).
	Log io.Writer
	// Redact lists strings (secrets) replaced by "…" in the logged command
	// lines.
	Redact []string
}

func (g *Group) track(c *exec.Cmd) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.procs == nil {
		g.procs = map[int]*exec.Cmd{}
	}
	g.procs[c.Process.Pid] = c
}

func (g *Group) untrack(c *exec.Cmd) {
	g.mu.Lock()
	delete(g.procs, c.Process.Pid)
	g.mu.Unlock()
}

// Len returns the number of processes started and not yet reaped.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.procs)
}

// Signal sends sig to every tracked process, by PID.
func (g *Group) Signal(sig os.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for pid, c := range g.procs {
		if err := c.Process.Signal(sig); err == nil {
			g.logf("sent %v to pid %d", sig, pid)
		}
	}
}

func (g *Group) logf(format string, a ...any) {
	w := g.Log
	if w == nil {
		w = os.Stderr
	}
	line := fmt.Sprintf(format, a...)
	for _, s := range g.Redact {
		if s != "" {
			line = strings.ReplaceAll(line, s, "…")
		}
	}
	fmt.Fprintln(w, line)
}

// ServerSpec describes a server to start.
type ServerSpec struct {
	Name string   // for messages
	Bin  string   // executable
	Args []string // arguments, addresses already filled in
	Env  []string // extra environment variables (KEY=value)
	Addr string   // host:port it listens on
	// HealthPath is requested until it answers 200 (default "/health").
	HealthPath string
	// LogPath receives the server's standard output and error; the file
	// is removed at Stop when it stayed empty. Empty: no log file.
	LogPath string
	// Timeout bounds the wait for health (default 20 s).
	Timeout time.Duration
}

// Server is a started server process.
type Server struct {
	spec   ServerSpec
	g      *Group
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // the exit status, once done is closed
	logf   *os.File
	stderr *tailBuffer
}

// StartServer starts the server and waits until its health path answers
// 200. On failure the process is stopped and the error says why, with the
// end of its standard error.
func (g *Group) StartServer(ctx context.Context, spec ServerSpec) (*Server, error) {
	if spec.HealthPath == "" {
		spec.HealthPath = "/health"
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 20 * time.Second
	}
	var logf *os.File
	logw := io.Writer(io.Discard)
	if spec.LogPath != "" {
		f, err := createFile(spec.LogPath)
		if err != nil {
			return nil, err
		}
		logf, logw = f, f
	}
	tail := &tailBuffer{max: 4096}
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = logw
	cmd.Stderr = io.MultiWriter(logw, tail)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	g.track(cmd)
	s := &Server{spec: spec, g: g, cmd: cmd, done: make(chan struct{}), logf: logf, stderr: tail}
	go func() {
		s.err = cmd.Wait()
		g.untrack(cmd)
		close(s.done)
	}()
	g.logf("started %s pid %d on %s: %s %s", spec.Name, cmd.Process.Pid, spec.Addr, spec.Bin, strings.Join(spec.Args, " "))
	if err := s.waitHealthy(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func createFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

func (s *Server) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(s.spec.Timeout)
	url := "http://" + s.spec.Addr + s.spec.HealthPath
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s: %w (%w); its standard error ends with:\n%s", s.spec.Name, ErrExited, s.err, s.stderr.String())
		default:
		}
		err := healthy(ctx, url)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy at %s after %s (last error: %w)", s.spec.Name, url, s.spec.Timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.spec.Addr }

// Done is closed once the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitErr returns how the process ended (nil: exit status 0); only
// meaningful once Done is closed.
func (s *Server) ExitErr() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Stderr returns the last 4 KiB the server wrote to its standard error.
func (s *Server) Stderr() string { return s.stderr.String() }

// Stop ends the server by PID: SIGTERM, then SIGKILL after 5 s. It
// returns once the process is reaped; calling it again does nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			s.g.logf("%s pid %d ignored SIGTERM, killing", s.spec.Name, s.PID())
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if s.logf == nil {
		return
	}
	s.logf.Close()
	// Keep only logs that say something, and a "logs" directory only when
	// it holds one.
	name := s.logf.Name()
	if st, err := os.Stat(name); err == nil && st.Size() == 0 {
		_ = os.Remove(name)
		if dir := filepath.Dir(name); filepath.Base(dir) == "logs" {
			_ = os.Remove(dir) // only succeeds when empty
		}
	}
	s.logf = nil
}

// Run runs a command to completion, tracked so that a signal stops it,
// with its standard output copied to stdout and to outPath when given. When
// ctx ends first, the command gets SIGTERM, then SIGKILL after 5 s,
// and Run returns ctx's error.
func (g *Group) Run(ctx context.Context, stdout io.Writer, bin string, args []string, outPath string) error {
	cmd := exec.Command(bin, args...) //nolint:gosec // runs the bench's own tools, as the caller asks
	out := stdout
	if outPath != "" {
		f, err := createFile(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(stdout, f)
	}
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	g.logf("%s %s", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	g.track(cmd)
	defer g.untrack(cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			_ = err // stopped on purpose: its exit status does not matter
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			if err := <-done; err != nil {
				g.logf("killed %s: %v", bin, err)
			}
		}
		return ctx.Err()
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
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

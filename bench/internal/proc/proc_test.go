package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the child process: with PROC_TEST_HELPER set it
// runs helperMain instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("PROC_TEST_HELPER"); mode != "" {
		helperMain(mode)
		return
	}
	goleak.VerifyTestMain(m)
}

// helperMain is the child: "serve" answers /health on PROC_TEST_ADDR until
// SIGTERM; "stubborn" does too but ignores SIGTERM; "fail" writes an error
// and exits 2; "sleep" sleeps until killed.
func helperMain(mode string) {
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "flag provided but not defined: -streamer")
		os.Exit(2)
	case "sleep":
		fmt.Println("sleeping")
		time.Sleep(time.Hour)
	case "serve", "stubborn":
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, syscall.SIGTERM)
		ln, err := net.Listen("tcp", os.Getenv("PROC_TEST_ADDR"))
		if err != nil {
			os.Exit(3)
		}
		go func() {
			_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })) //nolint:gosec // test helper
		}()
		for range sigc {
			if mode == "serve" {
				os.Exit(0)
			}
		}
	}
}

func helperSpec(t *testing.T, mode string) ServerSpec {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return ServerSpec{
		Name: mode, Bin: os.Args[0], Addr: addr, Timeout: 15 * time.Second,
		Env:     []string{"PROC_TEST_HELPER=" + mode, "PROC_TEST_ADDR=" + addr},
		LogPath: filepath.Join(t.TempDir(), "logs", mode+".log"),
	}
}

func gone(pid int) bool { return syscall.Kill(pid, 0) != nil }

func TestStartServerAndStop(t *testing.T) {
	var log bytes.Buffer
	g := &Group{Log: &log}
	spec := helperSpec(t, "serve")
	s, err := g.StartServer(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1 || gone(s.PID()) || s.Addr() != spec.Addr {
		t.Fatalf("tracked %d, pid %d running %v", g.Len(), s.PID(), !gone(s.PID()))
	}
	s.Stop()
	s.Stop() // idempotent
	if err := s.ExitErr(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !gone(s.PID()) || g.Len() != 0 {
		t.Fatalf("pid %d still there, %d tracked", s.PID(), g.Len())
	}
	if _, err := os.Stat(filepath.Dir(spec.LogPath)); !os.IsNotExist(err) {
		t.Fatalf("empty log directory kept: %v", err)
	}
	if !strings.Contains(log.String(), "started serve pid") {
		t.Fatalf("log %q", log.String())
	}
}

func TestStartServerWithoutLog(t *testing.T) {
	g := &Group{Log: &bytes.Buffer{}}
	spec := helperSpec(t, "serve")
	spec.LogPath = ""
	s, err := g.StartServer(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if !gone(s.PID()) {
		t.Fatalf("pid %d still there", s.PID())
	}
}

func TestStartServerThatExits(t *testing.T) {
	g := &Group{Log: &bytes.Buffer{}}
	_, err := g.StartServer(context.Background(), helperSpec(t, "fail"))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "flag provided but not defined: -streamer") {
		t.Fatalf("error %v", err)
	}
	if g.Len() != 0 {
		t.Fatalf("%d tracked", g.Len())
	}
}

func TestStopKillsAServerThatIgnoresSIGTERM(t *testing.T) {
	old := stopGrace
	stopGrace = 300 * time.Millisecond
	t.Cleanup(func() { stopGrace = old })
	g := &Group{Log: &bytes.Buffer{}}
	s, err := g.StartServer(context.Background(), helperSpec(t, "stubborn"))
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if !gone(s.PID()) || s.ExitErr() == nil {
		t.Fatalf("pid %d survived (%v)", s.PID(), s.ExitErr())
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	var log bytes.Buffer
	g := &Group{Log: &log, Redact: []string{"s3cret"}}
	t.Setenv("PROC_TEST_HELPER", "sleep")
	out := filepath.Join(t.TempDir(), "out.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var stdout bytes.Buffer
	err := g.Run(ctx, &stdout, os.Args[0], []string{"-key", "s3cret"}, out)
	if !errors.Is(err, context.DeadlineExceeded) || g.Len() != 0 {
		t.Fatalf("err %v, %d tracked", err, g.Len())
	}
	if b, _ := os.ReadFile(out); string(b) != "sleeping\n" || stdout.String() != "sleeping\n" {
		t.Fatalf("output %q / %q", b, stdout.String())
	}
	if strings.Contains(log.String(), "s3cret") || !strings.Contains(log.String(), "-key …") {
		t.Fatalf("secret not redacted: %q", log.String())
	}
}

func TestSignalReachesEveryProcess(t *testing.T) {
	g := &Group{Log: &bytes.Buffer{}}
	s, err := g.StartServer(context.Background(), helperSpec(t, "serve"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	g.Signal(syscall.SIGTERM)
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("SIGTERM did not stop the server")
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	out := filepath.Join(t.TempDir(), "bin", "baseline")
	if err := Build(context.Background(), "../..", out, "./cmd/baseline"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("built binary: %v", err)
	}
	if err := Build(context.Background(), "../..", out, "./cmd/nonexistent"); !errors.Is(err, ErrBuild) {
		t.Fatalf("error %v, want ErrBuild", err)
	}
}

package app_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	json "github.com/goccy/go-json"
)

// execWithNofile is the environment variable that makes the test binary,
// started as a child, lower its descriptor limit and exec the service: the
// way to run the service under a limit without changing the test's own.
const execWithNofile = "APP_TEST_EXEC_NOFILE"

// maybeExecWithNofile runs in TestMain: in a child started by
// startBinaryWithNofile, it sets RLIMIT_NOFILE (soft and hard) and replaces
// itself with the service. It returns in the test process.
func maybeExecWithNofile() {
	limit := os.Getenv(execWithNofile)
	if limit == "" {
		return
	}
	n, err := strconv.ParseUint(limit, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", execWithNofile, limit)
		os.Exit(2)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(2)
	}
	args := os.Args[1:] // the service binary, then its arguments
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, execWithNofile+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(args[0], args, env) //nolint:gosec // the test's own freshly built binary
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(2)
}

// service is the real binary running in a child process.
type service struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

// startBinary runs the service binary with args (and, when nofile > 0, that
// descriptor limit) and waits for its listening line.
func startBinary(t *testing.T, nofile int, args ...string) *service {
	t.Helper()
	bin := build(t)
	var cmd *exec.Cmd
	if nofile > 0 {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(self, append([]string{bin}, args...)...)
		cmd.Env = append(os.Environ(), execWithNofile+"="+strconv.Itoa(nofile))
	} else {
		cmd = exec.Command(bin, args...)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &service{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for s.addr == "" {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			s.addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 30s:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// stream opens /events on a raw connection (readBuffer > 0 shrinks its
// receive buffer) and returns the connection and the chunk-decoded body,
// after the greeting.
func (s *service) stream(t *testing.T, readBuffer int) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{}
	if readBuffer > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuffer)
			})
		}
	}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	// Cleanups run last first: the connection is closed before the body,
	// whose Close would otherwise read the endless stream to its deadline.
	t.Cleanup(func() { _ = resp.Body.Close() })
	t.Cleanup(func() { _ = c.Close() })
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("greeting: %q %v", line, err)
	}
	return c, body
}

// TestSIGTERMWithAStuckListener: with a listener whose socket is full and a
// healthy one, SIGTERM makes the process exit 0 within 3 s with the default
// settings, and within -shutdown-timeout when that is shorter than
// -write-timeout; the healthy stream ends on a complete frame after a retry
// hint.
func TestSIGTERMWithAStuckListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	for _, tc := range []struct {
		name   string
		args   []string
		within time.Duration
	}{
		{"defaults", nil, 3 * time.Second},
		{"shutdown timeout below write timeout", []string{"-shutdown-timeout", "1s", "-write-timeout", "30s"}, 1500 * time.Millisecond},
		{"hijack streamer", []string{"-streamer", "hijack"}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startBinary(t, 0, append([]string{"-port", "127.0.0.1:0", "-heartbeat", "1h"}, tc.args...)...)
			s.stream(t, 4096) // stuck: never read again
			_, healthy := s.stream(t, 0)
			rest := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(healthy)
				rest <- b
			}()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			pad := strings.Repeat("x", 2<<10)
			for n := range 200 { // 400 KiB: the stuck socket's buffers (send buffer capped) fill
				resp, err := client.Post("http://"+s.addr+"/api/events", "application/json",
					strings.NewReader(fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad)))
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			tr.CloseIdleConnections()
			begin := time.Now()
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := s.cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, s.logs)
			}
			if d := time.Since(begin); d > tc.within {
				t.Errorf("exited %v after SIGTERM, want within %v", d, tc.within)
			}
			text := <-rest
			last := bytes.LastIndex(text, []byte(`"n":199,`))
			if last < 0 || !bytes.Contains(text[last:], []byte("\nretry: ")) || !bytes.HasSuffix(text, []byte("\n\n")) {
				t.Fatalf("healthy stream's end: ...%q", text[max(0, len(text)-120):])
			}
		})
	}
}

// TestDescriptorExhaustion runs the service with 256 descriptors and opens
// far more connections than that: the process stays up, answers the
// listeners it cannot hold with a retry hint, keeps accepting once
// descriptors are free again, and delivers events.
func TestDescriptorExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	s := startBinary(t, 256, "-port", "127.0.0.1:0", "-heartbeat", "1h")
	if !strings.Contains(s.logs.String(), "max_listeners=128") {
		t.Fatalf("listener limit not sized to the descriptors:\n%s", s.logs)
	}
	// 200 listeners: 128 get a stream, the others a retry hint.
	var mu sync.Mutex
	streams, turnedAway := 0, 0
	conns := make([]net.Conn, 0, 200)
	for range 200 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprint(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("listener: %v", err)
		}
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		t.Cleanup(func() { _ = resp.Body.Close() })
		mu.Lock()
		switch line {
		case ": connected\n":
			streams++
		case ": too many listeners\n":
			turnedAway++
		default:
			t.Fatalf("listener got %q", line)
		}
		mu.Unlock()
	}
	if streams != 128 || turnedAway != 72 {
		t.Fatalf("%d streams, %d turned away; want 128 and 72", streams, turnedAway)
	}
	// 200 more connections that send nothing: the process runs out of
	// descriptors and its accepts fail.
	var idle []net.Conn
	for range 200 {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			break // the backlog is full: that is fine too
		}
		idle = append(idle, c)
	}
	eventually(t, "accept errors retried", func() bool { return strings.Contains(s.logs.String(), "accept failed, retrying") })
	if s.cmd.ProcessState != nil {
		t.Fatalf("the process ended: %v\n%s", s.cmd.ProcessState, s.logs)
	}
	for _, c := range idle {
		_ = c.Close()
	}
	for _, c := range conns[:100] {
		_ = c.Close()
	}
	// It recovers: a POST is served, the closed listeners are released
	// (their hang-ups noticed), and a new listener gets a stream.
	eventually(t, "served again", func() bool {
		resp, err := http.Post("http://"+s.addr+"/api/events", "application/json", strings.NewReader(`{"after":1}`))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	eventually(t, "closed listeners released", func() bool {
		resp, err := http.Get("http://" + s.addr + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct {
			Listeners int `json:"listeners"`
		}
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Listeners <= 28
	})
	_, body := s.stream(t, 0)
	resp, err := http.Post("http://"+s.addr+"/api/events", "application/json", strings.NewReader(`{"last":1}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, `data: {"last":1,`) {
			break
		}
	}
	for _, c := range conns[100:] {
		_ = c.Close()
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after the exhaustion: %v", err)
	}
}

// eventually polls cond until it holds, failing after testutil.Wait.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, testutil.Wait, what, cond)
}

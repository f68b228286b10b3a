package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles the command from the repository root the way the original
// README runs it (go run cmd/event_dispatcher/main.go), and returns the
// binary's path.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "event_dispatcher")
	cmd := exec.Command("go", "build", "-o", bin, "cmd/event_dispatcher/main.go")
	cmd.Dir = filepath.Join("..", "..") // the repository root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build main.go: %v\n%s", err, out)
	}
	return bin
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// TestSIGTERMEndsStreamsAndExits runs the real binary, opens a stream,
// publishes, sends SIGTERM, and checks that the stream ends on a complete
// frame and the process exits 0 within the shutdown timeout.
func TestSIGTERMEndsStreamsAndExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd := exec.Command(build(t), "-port", "127.0.0.1:0", "-shutdown-timeout", "5s")
	cmd.Env = append(os.Environ(), "DISPATCHER_HEARTBEAT=1h")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	lines := bufio.NewScanner(stderr)
	var addr string
	for addr == "" && lines.Scan() {
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("no listening line")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Wait for the greeting, so the listener is surely registered.
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("greeting: %q %v", line, err)
	}
	post, err := http.Post("http://"+addr+"/api/events", "text/plain", strings.NewReader(`{"last":true}`))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()

	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(body) // ends at the terminating chunk
	if err != nil {
		t.Fatalf("stream ended with %v after %q", err, rest)
	}
	text := string(rest)
	if !strings.Contains(text, `data: {"last":true,"user_ip":"127.0.0.1"}`+"\n\n") ||
		!strings.Contains(text, "retry: ") || !strings.HasSuffix(text, "\n\n") {
		t.Fatalf("end of stream: %q", text)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("exited %v after SIGTERM, more than -shutdown-timeout", d)
	}
}

package opsdocs_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickStartCommands returns the README's Quick start commands: the fenced
// bash block after "With the service running".
func quickStartCommands(t *testing.T) string {
	t.Helper()
	readme := string(readFile(t, "README.md"))
	_, after, ok := strings.Cut(readme, "With the service running")
	if !ok {
		t.Fatal(`README.md: no "With the service running"`)
	}
	_, block, ok := strings.Cut(after, "```bash\n")
	if !ok {
		t.Fatal("README.md: no bash block after \"With the service running\"")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md: the Quick start block does not end")
	}
	return block
}

// TestReadmeQuickStart runs the README's Quick start commands, in order, as
// someone pastes them into bash, against the service running in-process
// (localhost:8080 becomes its address): the listener must show the greeting
// and the posted event, and /health must answer with "PONG".
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed")
		}
		t.Skip("curl is not installed")
	}
	commands := quickStartCommands(t)
	addr := startService(t)
	script := strings.ReplaceAll(commands, "localhost:8080", addr)
	if script == commands {
		t.Fatalf("the Quick start commands do not use localhost:8080:\n%s", commands)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	home := t.TempDir() // no ~/.curlrc or ~/.netrc of the machine's
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "HOME="+home, "CURL_HOME="+home)
	// The listener runs in the background: on a timeout, end the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// What a terminal shows; curl's progress meters, which it writes to
	// stderr only when its output is not a terminal, kept apart.
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	text := out.String()
	if err != nil {
		t.Fatalf("the Quick start commands: %v\n%s\n--- output:\n%s\n--- stderr:\n%s", err, script, text, &stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^: connected\nretry: \d+\n\n`),
		regexp.MustCompile(`(?m)^id: \S+\ndata: \{"msg":"data","timestamp":"\d+","user_ip":"127\.0\.0\.1"\}\n\n`),
		regexp.MustCompile(`\{"message":"PONG",`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the output lacks %s\n--- commands:\n%s\n--- output:\n%s", want, script, text)
		}
	}
}

// readmeBlock returns the body of the first fenced block of the language
// lang (bash, text) after the text marker in the README.
func readmeBlock(t *testing.T, marker, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(string(readFile(t, "README.md")), marker)
	if !ok {
		t.Fatalf("README.md: no %q", marker)
	}
	_, block, ok := strings.Cut(after, "```"+lang+"\n")
	if !ok {
		t.Fatalf("README.md: no %s block after %q", lang, marker)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("README.md: the %s block after %q does not end", lang, marker)
	}
	return block
}

// TestReadmeAccessExample runs the commands of the README's worked example
// of signed tokens, as someone pastes them into bash, against the service
// running in-process with DISPATCHER_JWT_SECRET set (localhost:8080 becomes
// its address, `go run ./cmd/mint-token` the command built here): the
// listener must be told what its token allows, receive player 42's event,
// and the POST on another topic must be refused; the output the README
// shows must have the same shape.
func TestReadmeAccessExample(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed")
		}
		t.Skip("curl is not installed")
	}
	const marker = "`cmd/mint-token` stands in for the service"
	commands := readmeBlock(t, marker, "bash")
	shown := readmeBlock(t, marker, "text")

	mint := filepath.Join(t.TempDir(), "mint-token")
	build := exec.Command("go", "build", "-o", mint, "./cmd/mint-token")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mint-token: %v\n%s", err, out)
	}
	const secret = "readme-example-secret-0123456789" // 32 bytes, as the README's openssl makes at least
	addr := startService(t, "DISPATCHER_JWT_SECRET", secret)
	script := strings.ReplaceAll(commands, "localhost:8080", addr)
	script = strings.ReplaceAll(script, "go run ./cmd/mint-token", mint)
	if strings.Contains(script, "localhost:8080") || strings.Contains(script, "go run") || !strings.Contains(script, addr) {
		t.Fatalf("the example's commands are not what this test expects:\n%s", commands)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	home := t.TempDir() // no ~/.curlrc or ~/.netrc of the machine's
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "HOME="+home, "CURL_HOME="+home, "DISPATCHER_JWT_SECRET="+secret)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example's commands: %v\n%s\n--- output:\n%s\n--- stderr:\n%s", err, script, &out, &stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^: connected\n: allowed player\.\*; expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\nretry: \d+\n\n`),
		regexp.MustCompile(`(?m)^id: \S+\ntopic: player\.42\ndata: \{"event":"START","user_ip":"127\.0\.0\.1"\}\n\n`),
		regexp.MustCompile(`(?m)^\{"error":"the token does not allow publishing on \\"player\.43\\""\}$`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("the output lacks %s\n--- commands:\n%s\n--- output:\n%s", want, script, &out)
		}
		if !want.MatchString(shown) {
			t.Errorf("the output the README shows lacks %s:\n%s", want, shown)
		}
	}
}

package opsdocs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

// The deployment files (Dockerfile, compose.yaml, deploy/kubernetes) pass
// flags and DISPATCHER_* variables to the binary and point probes at its
// endpoints. These helpers check both against the real thing: the binary's
// own parser, and the service running in-process.

// defaultPort is the port the binary listens on without -port.
const defaultPort = "8080"

// checkSettings runs the binary's parser on args and env, as the binary
// would get them, and reports what it refuses: a bad value, an unknown flag,
// and a DISPATCHER_* variable the binary never reads (misspelt, or shadowed
// by the same setting as a flag). where names the file and the part of it.
func checkSettings(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	var mu sync.Mutex
	read := map[string]bool{}
	getenv := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		read[name] = true
		return env[name]
	}
	if err := app.CheckSettings(args, getenv); err != nil {
		t.Errorf("%s: the binary refuses args %q with env %v: %v", where, args, env, err)
		return
	}
	for name := range env {
		if strings.HasPrefix(name, "DISPATCHER_") && !read[name] {
			t.Errorf("%s: %s is not read by the binary (no such setting, or the same setting is also given as a flag)", where, name)
		}
	}
}

// listenPort returns the port the binary listens on with args and env.
func listenPort(args []string, env map[string]string) string {
	addr := env["DISPATCHER_PORT"]
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "port" && strings.HasPrefix(a, "-") {
			if hasValue {
				addr = value
			} else if i+1 < len(args) {
				addr = args[i+1]
			}
		}
	}
	if addr == "" {
		return defaultPort
	}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return port
	}
	return strings.TrimPrefix(addr, ":")
}

// startService runs the service in-process on a free loopback port until
// the test ends, and returns its address. env are DISPATCHER_* variables
// it reads, as pairs of name and value.
func startService(t *testing.T, env ...string) string {
	t.Helper()
	getenv := func(name string) string {
		for i := 0; i+1 < len(env); i += 2 {
			if env[i] == name {
				return env[i+1]
			}
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-shutdown-timeout", "2s"},
			getenv, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the service ended with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the service did not stop within 15s")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				return line.Addr
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the service stopped: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not listen within 15s:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkHealthcheckCommand checks a container's health check, argv as the
// runtime executes it (no shell): the image's binary with -healthcheck and
// a URL on the container's loopback and the port the service listens on.
// It runs the command's arguments through the binary's Run against the
// service in-process (addr), the URL's host and port replaced by addr: the
// check must pass there, and fail when the path is not an endpoint of the
// service (so that it could fail at all).
func checkHealthcheckCommand(t *testing.T, where string, argv []string, binary, port, addr string) {
	t.Helper()
	if len(argv) < 3 || argv[0] != binary {
		t.Errorf("%s: health check %q: want %s -healthcheck URL", where, argv, binary)
		return
	}
	i := slices.Index(argv, "-healthcheck")
	if i < 0 || i+1 >= len(argv) {
		t.Errorf("%s: health check %q has no -healthcheck URL", where, argv)
		return
	}
	u, err := url.Parse(argv[i+1])
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if host := u.Hostname(); host != "127.0.0.1" && host != "localhost" && host != "::1" {
		t.Errorf("%s: health check of %s: want the container's own loopback", where, u)
	}
	if u.Port() != port {
		t.Errorf("%s: health check on port %q, the service listens on %s", where, u.Port(), port)
	}
	run := func(path string) error {
		local := *u
		local.Host = addr
		local.Path = path
		args := slices.Clone(argv[1:])
		args[i] = local.String()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return app.Run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard)
	}
	if err := run(u.Path); err != nil {
		t.Errorf("%s: health check %q fails against the service: %v", where, argv, err)
	}
	if err := run("/health/not-an-endpoint"); err == nil || errors.Is(err, app.ErrUsage) {
		t.Errorf("%s: the same check of a path the service lacks: %v, want a failure", where, err)
	}
}

// syncBuffer is a log destination safe for concurrent writes and reads.
type syncBuffer = testutil.SyncBuffer

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

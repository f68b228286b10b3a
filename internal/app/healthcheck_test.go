package app_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

// runHealthcheck runs Run as `event_dispatcher args...` with env, bounded
// in time, and returns its error and how long it took.
func runHealthcheck(t *testing.T, args []string, env map[string]string) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout strings.Builder
	begin := time.Now()
	err := app.Run(ctx, args, func(k string) string { return env[k] }, &stdout, io.Discard)
	took := time.Since(begin)
	if stdout.Len() > 0 {
		t.Errorf("the health check printed %q on stdout", stdout.String())
	}
	return took, err
}

// TestHealthcheck checks -healthcheck through Run against real HTTP servers:
// a 2xx is success, anything else (an error status, a redirect, no server,
// no answer in time) is a one-line error that is not a usage error.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ready"}`)
	})
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/not-ready", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "{\"status\":\"not_ready\",\n\"reason\":\"nats: no servers available\"}\n")
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	hang := make(chan struct{})
	mux.HandleFunc("/hang", func(http.ResponseWriter, *http.Request) { <-hang })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // before srv.Close, which waits for handlers

	// An address where nothing listens: a port just released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/health/ready"
	_ = ln.Close()

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string // what the one-line error names; none: success
	}{
		{name: "200", args: []string{"-healthcheck", srv.URL + "/ok"}},
		{name: "204", args: []string{"-healthcheck", srv.URL + "/no-content"}},
		{
			name: "the other settings are not read",
			args: []string{"-healthcheck", srv.URL + "/ok"},
			// Contradictory for the service (a batch smaller than an
			// event), and a variable with a bad value: the health check
			// ignores them, as the container's flags are not its own.
			env: map[string]string{"DISPATCHER_MAX_BODY": "2MiB", "DISPATCHER_HEARTBEAT": "soon"},
		},
		{name: "503", args: []string{"-healthcheck", srv.URL + "/not-ready"},
			wantErr: []string{srv.URL + "/not-ready", "503 Service Unavailable", `"reason":"nats: no servers available"`}},
		{name: "404", args: []string{"-healthcheck", srv.URL + "/health/nope"}, wantErr: []string{"404"}},
		{name: "redirect not followed", args: []string{"-healthcheck", srv.URL + "/moved"}, wantErr: []string{"302"}},
		{name: "connection refused", args: []string{"-healthcheck", refused}, wantErr: []string{refused, "refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			took, err := runHealthcheck(t, tc.args, tc.env)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Run(%q): %v, want nil", tc.args, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run(%q) = nil, want an error", tc.args)
			}
			if errors.Is(err, app.ErrUsage) {
				t.Errorf("error %v wraps ErrUsage: the setting was right, the service was not", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line", msg)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if took > 3*time.Second {
				t.Errorf("took %v for a server that answered at once", took)
			}
		})
	}

	t.Run("no answer in time", func(t *testing.T) {
		t.Parallel()
		took, err := runHealthcheck(t, []string{"-healthcheck", srv.URL + "/hang"}, nil)
		if err == nil || errors.Is(err, app.ErrUsage) || !strings.Contains(err.Error(), "/hang") {
			t.Fatalf("Run = %v, want a timeout naming the URL", err)
		}
		if took < 2*time.Second || took > 6*time.Second {
			t.Errorf("gave up after %v, want about 3s", took)
		}
	})
}

func TestHealthcheckRefusesBadURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the setting the error names
	}{
		{"no scheme", []string{"-healthcheck", "127.0.0.1:8080/health/ready"}, nil, "-healthcheck"},
		{"not http", []string{"-healthcheck", "ftp://127.0.0.1/health"}, nil, "-healthcheck"},
		{"no host", []string{"-healthcheck", "http:///health/ready"}, nil, "-healthcheck"},
		{"empty", []string{"-healthcheck", ""}, nil, "-healthcheck"},
		{"missing value", []string{"-healthcheck"}, nil, "-healthcheck"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runHealthcheck(t, tc.args, tc.env)
			if !errors.Is(err, app.ErrUsage) {
				t.Fatalf("Run(%q, %v) = %v, want a usage error", tc.args, tc.env, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s", msg, tc.want)
			}
		})
	}
}

// TestHealthcheckOfTheService checks the service's own probes with
// -healthcheck: live and ready answer 2xx, an unknown path does not.
func TestHealthcheckOfTheService(t *testing.T) {
	t.Parallel()
	addr, _, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json"}, noEnv)
	for path, ok := range map[string]bool{"/health/ready": true, "/health/live": true, "/health": true, "/health/nope": false} {
		_, err := runHealthcheck(t, []string{"-healthcheck", "http://" + addr + path}, nil)
		if ok != (err == nil) {
			t.Errorf("-healthcheck %s: %v", path, err)
		}
	}
}

// TestHealthcheckExitCode runs the binary as a container's HEALTHCHECK does:
// exit 0 and silence when the service is ready, exit 1 and one line on
// stderr when it is not.
func TestHealthcheckExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := build(t)
	addr, _, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json"}, noEnv)

	out, err := exec.Command(bin, "-healthcheck", "http://"+addr+"/health/ready").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("healthy: %v, output %q; want exit 0 and no output", err, out)
	}

	cmd := exec.Command(bin, "-healthcheck", "http://"+addr+"/health/none")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("unhealthy: %v, want exit status 1", err)
	}
	if lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "404") {
		t.Errorf("unhealthy: stderr %q, want one line with the status", stderr.String())
	}
}

// TestHealthcheckHasNoVariable: DISPATCHER_HEALTHCHECK in the environment
// does not turn the service into a health check (a container's environment
// is also its service's): Run serves until its context ends.
func TestHealthcheckHasNoVariable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"DISPATCHER_HEALTHCHECK": "http://127.0.0.1:1/health/ready", "DISPATCHER_PORT": "127.0.0.1:0"}
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, nil, func(k string) string { return env[k] }, io.Discard, &logs) }()
	eventually(t, "the service listening", func() bool { return strings.Contains(logs.String(), "msg=listening") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

package app_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	json "github.com/goccy/go-json"
	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

func TestMain(m *testing.M) {
	maybeExecWithNofile() // in a child that must run the service under a lower limit
	testutil.VerifyTestMain(m)
}

// syncBuffer is a log destination safe for concurrent writes and reads.
type syncBuffer = testutil.SyncBuffer

func noEnv(string) string { return "" }

// runApp starts Run with args and returns the address it listens on, a
// function that stops it and returns Run's error, and its log. The log must
// be JSON (-log-format json).
func runApp(t *testing.T, args []string, getenv func(string) string) (addr string, stop func() error, logs *syncBuffer) {
	t.Helper()
	return startApp(t, args, getenv, jsonListeningAddr)
}

// jsonListeningAddr returns the address of the JSON log's listening line,
// or "".
func jsonListeningAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg, Addr string
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.Addr
		}
	}
	return ""
}

// textListeningAddr returns the address of the text log's listening line,
// or "".
func textListeningAddr(logs string) string {
	if m := listening.FindStringSubmatch(logs); m != nil {
		return m[1]
	}
	return ""
}

// startApp is runApp for a log in any format: addrOf finds the listening
// address in the log so far.
func startApp(t *testing.T, args []string, getenv func(string) string, addrOf func(logs string) string) (addr string, stop func() error, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, args, getenv, io.Discard, logs) }()
	deadline := time.Now().Add(15 * time.Second)
	for addr == "" {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned early: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no listening line within 15s:\n%s", logs)
		}
		addr = addrOf(logs.String())
		time.Sleep(5 * time.Millisecond)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return within 15s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop, logs
}

func TestRunServesAndShutsDownCleanly(t *testing.T) {
	addr, stop, logs := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-shutdown-timeout", "5s"}, noEnv)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"message":"PONG"`) {
		t.Fatalf("/health: %d %s", resp.StatusCode, body)
	}
	resp, err = client.Post("http://"+addr+"/api/events", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	tr.CloseIdleConnections()

	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("shutdown took %v, more than -shutdown-timeout", d)
	}
	for _, want := range []string{`"msg":"listening"`, `"max_body":65536`, `"publish_tokens":0`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestRunRefusesBadSettings(t *testing.T) {
	t.Parallel()
	const natsURL = "nats://127.0.0.1:1"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the setting the error must name, as it was given
	}{
		{"bad duration flag", []string{"-heartbeat", "soon"}, nil, "-heartbeat"},
		{"bad duration env", nil, map[string]string{"DISPATCHER_HEARTBEAT": "soon"}, "DISPATCHER_HEARTBEAT: "},
		{"negative heartbeat", []string{"-heartbeat", "-1s"}, nil, "-heartbeat: "},
		{"negative heartbeat env", nil, map[string]string{"DISPATCHER_HEARTBEAT": "-1s"}, "DISPATCHER_HEARTBEAT: "},
		{"bad port", []string{"-port", "http"}, nil, "-port"},
		{"port out of range", []string{"-port", "70000"}, nil, "-port"},
		{"bad port env", nil, map[string]string{"DISPATCHER_PORT": "http"}, "DISPATCHER_PORT: "},
		{"bad size", []string{"-max-body", "lots"}, nil, "-max-body"},
		{"bad size env", nil, map[string]string{"DISPATCHER_MAX_BODY": "1XB"}, "DISPATCHER_MAX_BODY: "},
		{"bad lag policy", []string{"-lag-policy", "maybe"}, nil, "-lag-policy: "},
		{"bad lag policy env", nil, map[string]string{"DISPATCHER_LAG_POLICY": "maybe"}, "DISPATCHER_LAG_POLICY: "},
		{"bad log level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"bad log format", []string{"-log-format", "xml"}, nil, "-log-format"},
		{"bad log format env", nil, map[string]string{"DISPATCHER_LOG_FORMAT": "xml"}, "DISPATCHER_LOG_FORMAT: "},
		{"bad origin", []string{"-cors-origins", "example.com"}, nil, "-cors-origins: "},
		{"bad origin env", nil, map[string]string{"DISPATCHER_CORS_ORIGINS": "example.com"}, "DISPATCHER_CORS_ORIGINS: "},
		{"bad proxy", []string{"-trusted-proxies", "10.0.0.0/33"}, nil, "-trusted-proxies"},
		{"batch smaller than an event", []string{"-max-body", "64KiB", "-max-batch", "1KiB"}, nil, "-max-batch: "},
		{"batch smaller than an event, env", nil, map[string]string{"DISPATCHER_MAX_BATCH": "1KiB"}, "DISPATCHER_MAX_BATCH: "},
		{"small buffer env", nil, map[string]string{"DISPATCHER_BUFFER": "0"}, "DISPATCHER_BUFFER: "},
		{"NATS settings without a URL", []string{"-nats-stream", "X"}, nil, "-nats-stream: needs a NATS URL"},
		{"NATS settings without a URL, env", nil, map[string]string{"DISPATCHER_NATS_STORAGE": "file"}, "DISPATCHER_NATS_STORAGE: needs a NATS URL"},
		{"bad NATS storage", []string{"-nats-url", natsURL, "-nats-storage", "disk"}, nil, "-nats-storage: "},
		{"bad NATS storage env", []string{"-nats-url", natsURL}, map[string]string{"DISPATCHER_NATS_STORAGE": "disk"}, "DISPATCHER_NATS_STORAGE: "},
		{"bad NATS URL env", nil, map[string]string{"DISPATCHER_NATS_URL": "http://127.0.0.1:4222"}, "DISPATCHER_NATS_URL: "},
		{"bad NATS replicas", []string{"-nats-url", natsURL, "-nats-replicas", "9"}, nil, "-nats-replicas: "},
		{"missing NATS credentials env", nil, map[string]string{"DISPATCHER_NATS_URL": natsURL, "DISPATCHER_NATS_CREDS": "/nonexistent/user.creds"},
			"DISPATCHER_NATS_CREDS: "},
		{"remote pprof", []string{"-pprof-addr", "0.0.0.0:6060"}, nil, "-pprof-addr: "},
		{"remote pprof env", nil, map[string]string{"DISPATCHER_PPROF_ADDR": "0.0.0.0:6060"}, "DISPATCHER_PPROF_ADDR: "},
		{"bad streamer", []string{"-streamer", "fast"}, nil, "-streamer: "},
		{"bad streamer env", nil, map[string]string{"DISPATCHER_STREAMER": "fast"}, "DISPATCHER_STREAMER: "},
		{"bad max-listeners", []string{"-max-listeners", "many"}, nil, "-max-listeners: "},
		{"empty token in a list", []string{"-publish-token", "a,,b"}, nil, "-publish-token: "},
		{"empty token in a list env", nil, map[string]string{"DISPATCHER_LISTEN_TOKEN": "a,,b"}, "DISPATCHER_LISTEN_TOKEN: "},
		{"short stream age", []string{"-max-stream-age", "10ms"}, nil, "-max-stream-age: "},
		{"short shutdown timeout", []string{"-shutdown-timeout", "1ms"}, nil, "-shutdown-timeout: "},
		{"short shutdown timeout env", nil, map[string]string{"DISPATCHER_SHUTDOWN_TIMEOUT": "1ms"}, "DISPATCHER_SHUTDOWN_TIMEOUT: "},
		{"unknown flag", []string{"-nope"}, nil, "-nope"},
		{"stray argument", []string{"extra"}, nil, "extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tc.env[k] }
			// Bounded: a setting accepted by mistake would serve until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := app.Run(ctx, tc.args, getenv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("Run accepted the setting")
			}
			if !errors.Is(err, app.ErrUsage) {
				t.Errorf("error %v does not wrap ErrUsage", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %q", msg, tc.want)
			}
			// A value from the environment is named by its variable, one
			// from the command line by its flag, first thing in the
			// message: "usage: DISPATCHER_LAG_POLICY: ...".
			if strings.Contains(tc.want, ": ") && !strings.HasPrefix(msg, "usage: "+tc.want) {
				t.Errorf("error %q: want it to begin with %q", msg, "usage: "+tc.want)
			}
		})
	}
}

// TestFailedStartReleasesEverything: when the port is taken, Run returns an
// error and leaves nothing running (no goroutine, no descriptor).
func TestFailedStartReleasesEverything(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fds := openDescriptors(t)
	err = app.Run(context.Background(), []string{"-port", ln.Addr().String()}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Run on a taken port: %v", err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
	if after := openDescriptors(t); after != fds {
		t.Errorf("%d descriptors open after the failed start, %d before", after, fds)
	}
}

// openDescriptors counts the process's open descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

func TestHelpListsEveryFlag(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := app.Run(context.Background(), []string{"-help"}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("-help: %v", err)
	}
	for _, want := range []string{"-port", "default :8080", "-max-body", "64KiB", "-heartbeat", "15s", "-buffer", "4096",
		"-max-listeners", "-cors-origins", "-ip-field", "user_ip", "-shutdown-timeout", "-log-level", "-log-format",
		"-publish-token", "-trusted-proxies", "-write-timeout", "-lag-policy", "-linger", "-retry", "DISPATCHER_MAX_BODY",
		"-healthcheck"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-help output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := app.Run(context.Background(), []string{"-version"}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The version, the commit and the Go version.
	got := strings.TrimSpace(out.String())
	want := regexp.MustCompile(`^event_dispatcher ` + regexp.QuoteMeta(app.Version) + ` \(commit ([0-9a-f]+|unknown), go[0-9.]+\S*\)$`)
	if !want.MatchString(got) || !strings.Contains(got, runtime.Version()) {
		t.Errorf("-version printed %q, want %s", got, want)
	}
}

// TestSettingsReachTheServer checks flags, their environment fallbacks and
// the seed's -port forms through the running service.
func TestSettingsReachTheServer(t *testing.T) {
	env := map[string]string{
		"DISPATCHER_IP_FIELD":      "from_env", // overridden by the flag below
		"DISPATCHER_MAX_BODY":      "1KiB",
		"DISPATCHER_PUBLISH_TOKEN": "tok",
		"DISPATCHER_LOG_FORMAT":    "json",
	}
	addr, stop, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-ip-field", "client"}, func(k string) string { return env[k] })
	defer func() { _ = stop() }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	post := func(body string, token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/events", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A listener, to see which field the flag (not the environment) chose.
	stream, err := client.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewReader(stream.Body)
	if line, err := events.ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("greeting: %q %v", line, err)
	}
	if got := post(`{"a":1}`, ""); got != http.StatusUnauthorized {
		t.Errorf("without the token from the environment: %d, want 401", got)
	}
	if got := post(`{"p":"`+strings.Repeat("x", 1100)+`"}`, "tok"); got != http.StatusRequestEntityTooLarge {
		t.Errorf("body over DISPATCHER_MAX_BODY: %d, want 413", got)
	}
	if got := post(`{"a":1}`, "tok"); got != http.StatusOK {
		t.Errorf("with the token: %d, want 200", got)
	}
	for { // the rest of the greeting block, then the event's id line
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "id: ") {
			break
		}
	}
	if line, err := events.ReadString('\n'); err != nil || line != `data: {"a":1,"client":"127.0.0.1"}`+"\n" {
		t.Errorf("event: %q %v, want the -ip-field flag to win over DISPATCHER_IP_FIELD", line, err)
	}
}

func TestPortForms(t *testing.T) {
	t.Parallel()
	for _, form := range []string{"127.0.0.1:0", ":0", "0"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			addr, stop, _ := runApp(t, []string{"-port", form, "-log-format", "json"}, noEnv)
			if !strings.Contains(addr, ":") {
				t.Errorf("listening on %q", addr)
			}
			if err := stop(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLogDurationsAreReadable: with -log-format json, durations are written
// as Go writes them ("1.5s"), as the text format does, not in nanoseconds.
func TestLogDurationsAreReadable(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			args := []string{"-port", "127.0.0.1:0", "-log-format", format, "-heartbeat", "1500ms", "-shutdown-timeout", "5s"}
			var addr string
			var stop func() error
			var logs *syncBuffer
			if format == "json" {
				addr, stop, logs = runApp(t, args, noEnv)
			} else {
				// runApp finds the address in the JSON log; the text log is
				// read here.
				addr, stop, logs = startApp(t, args, noEnv, textListeningAddr)
			}
			if addr == "" {
				t.Fatal("no address")
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			text := logs.String()
			if format == "text" {
				for _, want := range []string{"config.heartbeat=1.5s", "config.shutdown_timeout=5s", "msg=stopped took="} {
					if !strings.Contains(text, want) {
						t.Errorf("text log lacks %q:\n%s", want, text)
					}
				}
				return
			}
			var listening, stopped bool
			sc := bufio.NewScanner(strings.NewReader(text))
			for sc.Scan() {
				var line struct {
					Config struct {
						Heartbeat       any `json:"heartbeat"`
						ShutdownTimeout any `json:"shutdown_timeout"`
						Linger          any `json:"linger"`
					} `json:"config"`
					Took any    `json:"took"`
					Msg  string `json:"msg"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("log line %q: %v", sc.Text(), err)
				}
				switch line.Msg {
				case "listening":
					listening = true
					c := line.Config
					if c.Heartbeat != "1.5s" || c.ShutdownTimeout != "5s" || c.Linger != "50ms" {
						t.Errorf("config durations: heartbeat %#v, shutdown_timeout %#v, linger %#v; want \"1.5s\", \"5s\", \"50ms\"",
							c.Heartbeat, c.ShutdownTimeout, c.Linger)
					}
				case "stopped":
					stopped = true
					s, ok := line.Took.(string)
					if _, err := time.ParseDuration(s); !ok || err != nil {
						t.Errorf("took %#v: want a duration such as \"812ms\"", line.Took)
					}
				}
			}
			if !listening || !stopped {
				t.Errorf("no listening or stopped line:\n%s", text)
			}
		})
	}
}

// TestCheckSettingsAgreesWithRun: CheckSettings accepts what Run accepts and
// refuses, with the same error, what Run refuses.
func TestCheckSettingsAgreesWithRun(t *testing.T) {
	t.Parallel()
	env := func(k string) string { return map[string]string{"DISPATCHER_LAG_POLICY": "maybe"}[k] }
	err := app.CheckSettings([]string{"-heartbeat", "30s"}, env)
	runErr := app.Run(context.Background(), []string{"-heartbeat", "30s"}, env, io.Discard, io.Discard)
	if err == nil || !errors.Is(err, app.ErrUsage) || runErr == nil || err.Error() != runErr.Error() {
		t.Errorf("CheckSettings: %v; Run: %v; want the same usage error", err, runErr)
	}
	for _, args := range [][]string{
		{"-heartbeat", "30s", "-nats-url", "nats://127.0.0.1:4222", "-nats-replicas", "3"},
		{"-healthcheck", "http://127.0.0.1:8080/health/ready"},
		{"-help"},
	} {
		if err := app.CheckSettings(args, noEnv); err != nil {
			t.Errorf("CheckSettings(%q): %v", args, err)
		}
	}
}

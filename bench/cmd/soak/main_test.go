package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/baseline"
)

// The test binary doubles as the server under soak: with SOAK_TEST_HELPER
// set it runs helperMain instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SOAK_TEST_HELPER"); mode != "" {
		helperMain(mode)
		return
	}
	goleak.VerifyTestMain(m,
		// fasthttp's idle-connection cleaner (the steady load's producers)
		// sleeps until MaxIdleConnDuration even after CloseIdleConnections.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	)
}

// helperMain serves the service's endpoints with the baseline, and its
// /health with num_goroutines (a string, as the service writes it) and
// listeners. "leaky" never returns from a stream once its listener has
// gone, so that goroutines and descriptors grow with the churn.
func helperMain(mode string) {
	var port string
	for i, a := range os.Args {
		if a == "-port" && i+1 < len(os.Args) {
			port = os.Args[i+1]
		}
	}
	srv := baseline.New(baseline.Options{Buffer: 4096})
	events := srv.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/events", events)
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		events.ServeHTTP(w, r)
		if mode == "leaky" {
			select {} // the leak under test
		}
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"num_goroutines": fmt.Sprint(runtime.NumGoroutine()), "listeners": srv.Listeners()})
	})
	ln, err := net.Listen("tcp", port)
	if err != nil {
		os.Exit(3)
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM)
	go func() {
		<-sigc
		os.Exit(0)
	}()
	_ = http.Serve(ln, mux) //nolint:gosec // test helper on loopback
}

func s(at time.Duration, rssMiB float64, g, fds int) sample {
	return sample{at: at, rssKiB: int64(rssMiB * 1024), goroutines: g, fds: fds}
}

func TestJudge(t *testing.T) {
	lim := limits{rel: 0.10, rssMiB: 4, goroutines: 20, fds: 20}
	sec := time.Second
	tests := []struct {
		name    string
		samples []sample
		wantOK  []bool // RSS, goroutines, descriptors
		err     error
	}{
		{"flat, noisy", []sample{s(1*sec, 30, 200, 100), s(2*sec, 31, 210, 105), s(3*sec, 30, 205, 98),
			s(4*sec, 32, 198, 101), s(5*sec, 31, 215, 104), s(6*sec, 32, 202, 99)}, []bool{true, true, true}, nil},
		{"warm-up left out", []sample{s(0, 5, 20, 10), s(1*sec, 30, 200, 100), s(2*sec, 30, 200, 100), s(3*sec, 30, 200, 100)},
			[]bool{true, true, true}, nil},
		{"memory grows", []sample{s(1*sec, 30, 200, 100), s(2*sec, 38, 200, 100), s(3*sec, 45, 200, 100)},
			[]bool{false, true, true}, nil},
		{"goroutines and descriptors leak", []sample{s(1*sec, 30, 200, 100), s(2*sec, 30, 260, 160), s(3*sec, 30, 320, 220)},
			[]bool{true, false, false}, nil},
		{"too short", []sample{s(1*sec, 30, 200, 100), s(2*sec, 30, 200, 100)}, nil, errTooShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checks, err := judge(tc.samples, time.Second, lim)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			for i, c := range checks {
				if c.ok != tc.wantOK[i] {
					t.Errorf("%s: ok %v, want %v", c, c.ok, tc.wantOK[i])
				}
			}
		})
	}
}

func TestFlexInt(t *testing.T) {
	for in, want := range map[string]int{`"23"`: 23, `42`: 42} {
		var f flexInt
		if err := json.Unmarshal([]byte(in), &f); err != nil || int(f) != want {
			t.Errorf("%s: %d %v", in, f, err)
		}
	}
	var f flexInt
	if err := json.Unmarshal([]byte(`"x"`), &f); err == nil {
		t.Error(`"x" accepted`)
	}
}

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{{"extra"}, {"-duration", "0s"}, {"-hold-min", "2s", "-hold-max", "1s"}, {"-bogus"}} {
		if o, code := parseFlags(args, &stderr); o != nil || code != 2 {
			t.Errorf("%q accepted", args)
		}
	}
	for _, tc := range []struct{ duration, interval, warmup time.Duration }{
		{30 * time.Second, time.Second, 5 * time.Second},
		{3 * time.Minute, 5 * time.Second, 30 * time.Second},
		{90 * time.Second, 3 * time.Second, 15 * time.Second},
	} {
		o, _ := parseFlags([]string{"-duration", tc.duration.String()}, &stderr)
		if o.interval != tc.interval || o.warmup != tc.warmup {
			t.Errorf("%s: interval %s warm-up %s, want %s %s", tc.duration, o.interval, o.warmup, tc.interval, tc.warmup)
		}
	}
}

// soakHelper soaks the test binary as a server for a few seconds.
func soakHelper(t *testing.T, mode string) (int, string) {
	t.Helper()
	t.Setenv("SOAK_TEST_HELPER", mode)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-bin", os.Args[0], "-duration", "6s", "-interval", "500ms", "-warmup", "1s",
		"-listeners", "5", "-churn", "20", "-rate", "50", "-hold-min", "100ms", "-hold-max", "300ms",
		"-slack-goroutines", "100", "-slack-fds", "100", "-release", "5s", "-settle", "5s"}, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

func TestSoakPassesAWellBehavedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("soaks a server for 6 s")
	}
	code, out := soakHelper(t, "good")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"RSS MiB  goroutines  descriptors", "(warm-up)", "steady:      5 listeners", "lost 0",
		"read then close", "events read through sseclient, 0 errors: ok", "released:    0 listeners", "settled:",
		"exited 0 after SIGTERM", "soak: flat"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSoakCatchesALeak(t *testing.T) {
	if testing.Short() {
		t.Skip("soaks a server for 6 s")
	}
	code, out := soakHelper(t, "leaky")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"goroutines   first third", "GROWS", "soak: NOT FLAT"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

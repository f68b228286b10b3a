package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/opsdocs"
)

// scrape reads /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, client *http.Client, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// value returns the value of the metric name with the given label (name,
// value) pairs, and whether it exists.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAfterKnownTraffic scrapes /metrics after known traffic and
// checks the exact counts.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	addr, _, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-publish-token", "tok",
		"-cors-origins", "https://ok.example", "-max-body", "1KiB", "-heartbeat", "1h"}, noEnv)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + addr

	// Two listeners; one goes away.
	open := func() (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequest(http.MethodGet, url+"/events", nil)
		req.Close = true
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if line, _ := br.ReadString('\n'); line != ": connected\n" {
			t.Fatalf("greeting: %q", line)
		}
		return resp, br
	}
	stay, stayBody := open()
	defer stay.Body.Close()
	leave, _ := open()

	post := func(body string, headers ...string) int {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/events", strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	auth := []string{"Authorization", "Bearer tok"}
	for i := range 3 {
		if s := post(fmt.Sprintf(`{"n":%d}`, i), auth...); s != http.StatusOK {
			t.Fatalf("POST: %d", s)
		}
	}
	for _, tc := range []struct {
		body    string
		headers []string
		status  int
	}{
		{`{"n":`, auth, http.StatusBadRequest},
		{`{"p":"` + strings.Repeat("x", 2000) + `"}`, auth, http.StatusRequestEntityTooLarge},
		{`{"n":1}`, nil, http.StatusUnauthorized},
		{`{"n":1}`, append([]string{"Origin", "https://evil.example"}, auth...), http.StatusForbidden},
	} {
		if s := post(tc.body, tc.headers...); s != tc.status {
			t.Fatalf("POST %.20s: %d, want %d", tc.body, s, tc.status)
		}
	}
	// The staying listener reads its 3 events; the other leaves.
	for n := 0; n < 3; {
		line, err := stayBody.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			n++
		}
	}
	leave.Body.Close()

	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"dispatcher_events_accepted_total", nil, 3},
		{"dispatcher_events_rejected_total", []string{"reason", "invalid"}, 1},
		{"dispatcher_events_rejected_total", []string{"reason", "too_large"}, 1},
		{"dispatcher_events_rejected_total", []string{"reason", "unauthorized"}, 1},
		{"dispatcher_events_rejected_total", []string{"reason", "forbidden"}, 1},
		{"dispatcher_events_rejected_total", []string{"reason", "shutting_down"}, 0},
		{"dispatcher_listeners", nil, 1},
		{"dispatcher_listeners_accepted_total", nil, 2},
		{"dispatcher_listeners_ended_total", []string{"reason", "gone"}, 1},
		{"dispatcher_listeners_ended_total", []string{"reason", "slow"}, 0},
		{"dispatcher_frames_delivered_total", nil, 6},
		{"dispatcher_frames_missed_total", nil, 0},
		// Every POST that reached the handler (the 403 did not).
		{"dispatcher_post_duration_seconds", nil, 6},
		{"dispatcher_ready", nil, 1},
		{"dispatcher_topics", nil, 1},
	}
	var families map[string]*dto.MetricFamily
	deadline := time.Now().Add(15 * time.Second)
	for {
		families = scrape(t, client, addr)
		var wrong []string
		for _, w := range want {
			if got, ok := value(families, w.name, w.labels...); !ok || got != w.value {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "dispatcher_build_info",
		"dispatcher_bytes_written_total", "dispatcher_fanout_latency_seconds"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if _, ok := families["dispatcher_nats_connected"]; ok {
		t.Error("dispatcher_nats_connected exported without NATS")
	}
}

// TestDashboardAndAlertsMatchTheMetrics: every dispatcher_* metric the
// Grafana dashboard and the alert rules use exists in a real scrape (with
// NATS configured, so that its metrics exist too).
func TestDashboardAndAlertsMatchTheMetrics(t *testing.T) {
	t.Parallel()
	nats := natstest.RunServer(t)
	addr, _, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-nats-url", nats.URL()}, noEnv)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	families := scrape(t, &http.Client{Transport: tr}, addr)
	referenced, err := opsdocs.Referenced(filepath.Join("..", ".."), "dispatcher_")
	if err != nil {
		t.Fatal(err)
	}
	if len(referenced) < 10 {
		t.Fatalf("only %d metrics referenced: %v", len(referenced), referenced)
	}
	for _, name := range referenced {
		if _, ok := families[name]; !ok {
			t.Errorf("the dashboard or the alerts use %s, which /metrics does not have", name)
		}
	}
}

// TestReadiness: /health/ready answers 503 with the reason while NATS is
// unreachable, 200 once it is, and 503 once a shutdown has begun (on a
// connection that was already open); /health/live answers 200 throughout.
func TestReadiness(t *testing.T) {
	t.Parallel()
	nats := natstest.RunServer(t)
	natsURL := nats.URL()
	nats.Shutdown()
	addr, stop, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-nats-url", natsURL}, noEnv)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	probe := func(path string) (int, string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body struct{ Status, Reason string }
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, body.Status + " " + body.Reason
	}
	if code, body := probe("/health/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "nats") {
		t.Fatalf("ready with NATS down: %d %q, want 503 naming NATS", code, body)
	}
	if code, _ := probe("/health/live"); code != http.StatusOK {
		t.Fatalf("live with NATS down: %d", code)
	}
	nats.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := probe("/health/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 15 s after NATS came back: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, body := probe("/health/ready")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %q during the shutdown", code, body)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestPprofAddr: profiles are served on a loopback -pprof-addr, and a
// non-loopback one is refused unless -pprof-allow-remote is given.
func TestPprofAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:6060", "example.com:6060"} {
		err := app.Run(context.Background(), []string{"-pprof-addr", addr}, noEnv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "pprof-addr") {
			t.Errorf("-pprof-addr %s: %v, want a refusal naming the setting", addr, err)
		}
	}
	_, _, logs := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-pprof-addr", "127.0.0.1:0"}, noEnv)
	var pprofAddr string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving profiles" {
			pprofAddr = line.Addr
		}
	}
	if pprofAddr == "" {
		t.Fatalf("no profiles line:\n%s", logs)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("pprof: %d %.80s", resp.StatusCode, b)
	}
	// Allowed remote: accepted (0.0.0.0 binds every address, here the test's
	// loopback one).
	_, stop, _ := runApp(t, []string{"-port", "127.0.0.1:0", "-log-format", "json", "-pprof-addr", "0.0.0.0:0", "-pprof-allow-remote"}, noEnv)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

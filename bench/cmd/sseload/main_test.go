package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/baseline"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "-listeners") {
		t.Fatalf("-help: %d %s", code, errOut.String())
	}
	if code := run([]string{"-bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: %d", code)
	}
	if code := run([]string{"extra"}, &out, &errOut); code != 2 {
		t.Fatalf("extra argument: %d", code)
	}
	if code := run([]string{"-protocol", "nats"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown protocol: %d", code)
	}
	if code := run([]string{"-protocol", "centrifugo", "-listeners", "1", "-quiet"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "-token") {
		t.Fatalf("centrifugo without a token: %d %s", code, errOut.String())
	}
	if code := run([]string{"-url", "http://127.0.0.1:1", "-listeners", "1", "-connect-timeout", "200ms", "-quiet"}, &out, &errOut); code != 1 {
		t.Fatalf("unreachable server: %d", code)
	}
}

func TestRunPrintsTableAndJSON(t *testing.T) {
	srv := baseline.New(baseline.Options{Buffer: 1024})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "r.json")
	var out, errOut bytes.Buffer
	code := run([]string{"-url", ts.URL, "-listeners", "3", "-producers", "1", "-events", "50", "-warmup", "0",
		"-duration", "10s", "-sample", "1", "-label", "cli", "-quiet", "-json", "-json-out", file}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	i := strings.Index(text, "\n{")
	if i < 0 || !strings.Contains(text[:i], "delivery ratio  1.000000") {
		t.Fatalf("output:\n%s", text)
	}
	var r load.Report
	if err := json.Unmarshal([]byte(text[i+1:]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Label != "cli" || r.Load.Delivered != 150 {
		t.Fatalf("%+v", r.Load)
	}
	fromFile, err := load.ReadReport(file)
	if err != nil || fromFile.Load.Delivered != 150 {
		t.Fatalf("json-out: %v", err)
	}
}

// TestFiltersAgainstAServerThatDoesNotFilter: the baseline ignores the
// listeners' where parameters, so they receive what their filters reject:
// the run is written, and sseload fails saying why. (How many of the other
// buckets' events a listener gets before the run ends, once it has every
// event of its own, varies.)
func TestFiltersAgainstAServerThatDoesNotFilter(t *testing.T) {
	srv := baseline.New(baseline.Options{Buffer: 1024})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "r.json")
	var out, errOut bytes.Buffer
	code := run([]string{"-url", ts.URL, "-listeners", "4", "-producers", "1", "-events", "40", "-warmup", "0",
		"-duration", "10s", "-filters", "4", "-buckets", "4", "-quiet", "-json-out", file}, &out, &errOut)
	r, err := load.ReadReport(file)
	if err != nil || r.Params.Filters != 4 || r.Params.Buckets != 4 || r.Load.Filter == nil {
		t.Fatalf("json-out: %+v (%v)", r, err)
	}
	f := r.Load.Filter
	// Each listener gets the 10 events of its bucket, and some of the 30
	// others.
	if f.Rejected == 0 || f.Rejected > 120 || f.Checked-f.Rejected != 40 || r.Load.Delivered != 40 || r.Load.Lost != 0 {
		t.Fatalf("filter check %+v, delivered %d, lost %d", f, r.Load.Delivered, r.Load.Lost)
	}
	if want := fmt.Sprintf("%d events reached listeners whose filter rejects them", f.Rejected); code != 1 || !strings.Contains(errOut.String(), want) {
		t.Fatalf("exit %d, want 1 and %q: %s", code, want, errOut.String())
	}
	for _, want := range []string{"4 distinct, round-robin over the listeners, each passing 1 bucket in 4 (listener 0: ?where=bucket:0)",
		fmt.Sprintf("%d frames (whole run) checked against their listener's filter: %d it rejects", f.Checked, f.Rejected)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if code := run([]string{"-filters", "-1", "-quiet"}, &out, &errOut); code != 1 {
		t.Errorf("negative -filters: exit %d", code)
	}
}

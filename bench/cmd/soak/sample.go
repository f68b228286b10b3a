package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

// sample is one reading of the server.
type sample struct {
	at          time.Duration // since the load started
	rssKiB      int64         // VmRSS, /proc/PID/status
	goroutines  int           // /health num_goroutines
	fds         int           // entries of /proc/PID/fd
	listeners   int           // /health listeners
	connections int64         // churn connections made so far
}

// health is what the soak reads from GET /health. The service writes
// num_goroutines as a string (the original's format); a number is taken
// too.
type health struct {
	Goroutines flexInt `json:"num_goroutines"`
	Listeners  int     `json:"listeners"`
}

// flexInt is a JSON number, or a string holding one.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		b = []byte(s)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("not a whole number: %s", b)
	}
	*f = flexInt(n)
	return nil
}

var errHealth = errors.New("GET /health")

func readHealth(ctx context.Context, client *http.Client, addr string) (health, error) {
	var h health
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
	if err != nil {
		return h, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return h, err
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("%w: %s", errHealth, resp.Status)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: %w", errHealth, err)
	}
	return h, nil
}

// take reads the server's memory, descriptors and health.
func take(ctx context.Context, client *http.Client, addr string, pid int) (sample, error) {
	var s sample
	p, err := load.ReadProc(pid)
	if err != nil {
		return s, err
	}
	s.rssKiB = p.RSSKiB
	if s.fds, err = load.CountFDs(pid); err != nil {
		return s, err
	}
	h, err := readHealth(ctx, client, addr)
	if err != nil {
		return s, err
	}
	s.goroutines, s.listeners = int(h.Goroutines), h.Listeners
	return s, nil
}

// limits are how much a figure may grow and still count as flat: the last
// third's median at most first × (1 + rel) + its slack.
type limits struct {
	rel        float64
	rssMiB     float64
	goroutines int
	fds        int
}

func (l limits) String() string {
	return fmt.Sprintf("last third's median ≤ first third's × %.2f + %.0f MiB RSS, %d goroutines, %d descriptors",
		1+l.rel, l.rssMiB, l.goroutines, l.fds)
}

// check is the verdict on one figure.
type check struct {
	name        string
	first, last float64 // medians
	limit       float64
	unit        string
	ok          bool
}

func (c check) String() string {
	word := "flat"
	if !c.ok {
		word = "GROWS"
	}
	growth := 0.0
	if c.first > 0 {
		growth = (c.last/c.first - 1) * 100
	}
	return fmt.Sprintf("%-12s first third %s, last third %s (%+.1f %%, limit %s): %s",
		c.name, fmtUnit(c.first, c.unit), fmtUnit(c.last, c.unit), growth, fmtUnit(c.limit, c.unit), word)
}

func fmtUnit(v float64, unit string) string {
	if unit == "MiB" {
		return fmt.Sprintf("%.1f MiB", v)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

var errTooShort = errors.New("too few samples after the warm-up to judge (at least 3): lengthen -duration or shorten -interval")

// judge compares the median of the last third of the samples taken after
// the warm-up with the median of the first third.
func judge(samples []sample, warmup time.Duration, lim limits) ([]check, error) {
	var after []sample
	for _, s := range samples {
		if s.at >= warmup {
			after = append(after, s)
		}
	}
	k := len(after) / 3
	if k < 1 {
		return nil, errTooShort
	}
	first, last := after[:k], after[len(after)-k:]
	med := func(ss []sample, f func(sample) float64) float64 {
		xs := make([]float64, 0, len(ss))
		for _, s := range ss {
			xs = append(xs, f(s))
		}
		return report.Median(xs)
	}
	figure := func(name, unit string, slack float64, f func(sample) float64) check {
		c := check{name: name, unit: unit, first: med(first, f), last: med(last, f)}
		c.limit = c.first*(1+lim.rel) + slack
		c.ok = c.last <= c.limit
		return c
	}
	return []check{
		figure("RSS", "MiB", lim.rssMiB, func(s sample) float64 { return float64(s.rssKiB) / 1024 }),
		figure("goroutines", "", float64(lim.goroutines), func(s sample) float64 { return float64(s.goroutines) }),
		figure("descriptors", "", float64(lim.fds), func(s sample) float64 { return float64(s.fds) }),
	}, nil
}

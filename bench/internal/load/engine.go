// Package load is the engine of the sseload tool: it opens many SSE
// listeners and a few producers against a Pillarbox Event Dispatcher (or any
// server speaking the same wire format, or Centrifugo's unidirectional SSE
// transport) and measures throughput, delivery and latency. The command in
// bench/cmd/sseload is a thin shell around Run, RunIdle and RunSelfTest.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// engine holds the state of one run.
type engine struct {
	cfg         Config
	target      *target
	postTargets []*target // where producers post, when not target (Config.PostURLs)
	dialer      *dialer
	httpClient  *http.Client
	runID       []byte

	listeners []*listener
	producers []*producer
	e2e       *shardedHist
	wg        sync.WaitGroup

	readyCount atomic.Int64
	budget     atomic.Int64 // events left to send in this phase (when limited)
	limited    bool
	phase      atomic.Pointer[string]
	server     *procSampler
	warnings   []string
}

func newEngine(ctx context.Context, cfg Config) (*engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := parseTarget(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	t.wire = newWire(&cfg)
	e := &engine{cfg: cfg, target: t, runID: []byte(newRunID())}
	for _, u := range cfg.PostURLs {
		pt, err := parseTarget(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("-post-url: %w", err)
		}
		pt.wire = t.wire
		e.postTargets = append(e.postTargets, pt)
	}
	e.e2e = newShardedHist(4 * runtime.GOMAXPROCS(0))
	e.dialer, err = newDialer(t, cfg.Listeners, cfg.SourceIPs, min(cfg.ConnectTimeout, 10*time.Second), cfg.Insecure)
	if err != nil {
		return nil, err
	}
	if cfg.Client == ClientNetHTTP {
		e.httpClient = &http.Client{Transport: &http.Transport{
			DialContext:         e.dialer.dialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: -1,
			ReadBufferSize:      readBufSize,
			TLSClientConfig:     e.dialer.tlsConf,
		}}
	}
	need := uint64(cfg.Listeners+cfg.Producers) + 256
	if _, err := RaiseFileLimit(need); err != nil {
		return nil, err
	}
	e.setPhase("init")
	return e, nil
}

func (e *engine) setPhase(p string) { e.phase.Store(&p) }

// postTarget is where producer id posts.
func (e *engine) postTarget(id int) *target {
	if len(e.postTargets) == 0 {
		return e.target
	}
	return e.postTargets[id%len(e.postTargets)]
}

func (e *engine) warn(format string, a ...any) {
	e.warnings = append(e.warnings, fmt.Sprintf(format, a...))
}

// isSlow spreads round(L*fraction) slow listeners evenly over the indexes.
func isSlow(i, total int, fraction float64) bool {
	slow := int(float64(total)*fraction + 0.5)
	if slow <= 0 {
		return false
	}
	return i*slow/total != (i+1)*slow/total
}

// connect opens all listeners and waits until each has been greeted.
func (e *engine) connect(ctx context.Context) (time.Duration, error) {
	e.setPhase("connect")
	start := time.Now()
	deadline := start.Add(e.cfg.ConnectTimeout)
	sem := make(chan struct{}, e.cfg.DialConcurrency)
	e.listeners = make([]*listener, e.cfg.Listeners)
	for i := range e.listeners {
		l := newListener(e, i, isSlow(i, e.cfg.Listeners, e.cfg.SlowFraction))
		e.listeners[i] = l
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			l.run(ctx, sem, deadline)
		}()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := int(e.readyCount.Load())
		if ready == len(e.listeners) {
			return time.Since(start), nil
		}
		failed := 0
		var firstErr error
		for _, l := range e.listeners {
			if err := l.getErr(); err != nil && !l.ready.Load() {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
		if failed > 0 {
			return 0, fmt.Errorf("%d of %d listeners failed to connect (%d ready): first error: %w", failed, len(e.listeners), ready, firstErr)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d listeners connected and greeted within %s", ready, len(e.listeners), e.cfg.ConnectTimeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// closeListeners closes every connection and waits for the readers to end.
func (e *engine) closeListeners() {
	for _, l := range e.listeners {
		l.close()
	}
	e.wg.Wait()
}

// deliveredNow returns the current delivered count of each listener.
func (e *engine) deliveredNow(dst []int64) []int64 {
	dst = dst[:0]
	for _, l := range e.listeners {
		dst = append(dst, l.delivered.Load())
	}
	return dst
}

// runProducers runs every producer until d has elapsed and returns the time
// actually spent.
func (e *engine) runProducers(ctx context.Context, d time.Duration) time.Duration {
	start := time.Now().Add(time.Millisecond)
	deadline := start.Add(d)
	perProducer := e.cfg.Rate / float64(len(e.producers))
	var wg sync.WaitGroup
	for i, p := range e.producers {
		wg.Add(1)
		// Stagger the producers' schedules so the total stream is even.
		pstart := start
		if perProducer > 0 {
			pstart = start.Add(time.Duration(float64(time.Second) / perProducer * float64(i) / float64(len(e.producers))))
		}
		go func() {
			defer wg.Done()
			p.run(ctx, pstart, deadline, perProducer)
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func (e *engine) sent() int64 {
	var n int64
	for _, p := range e.producers {
		n += p.sent.Load()
	}
	return n
}

// waitDelivered waits until every healthy, still connected listener has
// received expected events more than base, or no delivery happened for
// cfg.DrainQuiet, or max has passed. It returns the time of the last
// observed progress and whether delivery was complete.
func (e *engine) waitDelivered(ctx context.Context, base []int64, expected int64, limit time.Duration) (time.Time, bool) {
	start := time.Now()
	lastProgress := start
	var lastTotal int64 = -1
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		complete := true
		var total int64
		for i, l := range e.listeners {
			if l.slow {
				continue
			}
			got := l.delivered.Load() - base[i]
			total += got
			if got < expected && !l.gone.Load() {
				complete = false
			}
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal = total
			lastProgress = now
		}
		if complete {
			return now, true
		}
		if now.Sub(start) >= limit || now.Sub(lastProgress) >= e.cfg.DrainQuiet {
			return lastProgress, false
		}
		select {
		case <-ctx.Done():
			return lastProgress, false
		case <-tick.C:
		}
	}
}

func (e *engine) newReport(mode string) *Report {
	return &Report{
		Schema:    Schema,
		Mode:      mode,
		Label:     e.cfg.Label,
		StartedAt: time.Now().UTC(),
		Params:    e.cfg.params(),
		Env:       CollectEnv(),
		Health:    e.health(),
	}
}

// health fetches GET <url>/health; it returns nil unless the answer is a
// small JSON document.
func (e *engine) health() json.RawMessage {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:     e.dialer.dialContext,
		TLSClientConfig: e.dialer.tlsConf,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(e.target.base + "/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil || resp.StatusCode != http.StatusOK || !json.Valid(b) {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return nil
	}
	return buf.Bytes()
}

type scanTotals struct {
	gaps, gapMissed, named, comments, retries, control int64
}

// scannerTotals sums the non-data block counters the listeners publish.
func (e *engine) scannerTotals() scanTotals {
	var t scanTotals
	for _, l := range e.listeners {
		if l.slow {
			continue
		}
		t.gaps += l.pub.gaps.Load()
		t.gapMissed += l.pub.gapMissed.Load()
		t.named += l.pub.named.Load()
		t.comments += l.pub.comments.Load()
		t.retries += l.pub.retries.Load()
		t.control += l.pub.control.Load()
	}
	return t
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }

// Package load is the engine of the sseload tool: it opens many SSE
// listeners and a few producers against a Pillarbox Event Dispatcher (or any
// server speaking the same wire format) and measures throughput, delivery
// and latency. The command in bench/cmd/sseload is a thin shell around Run.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Listener client implementations.
const (
	ClientRaw     = "raw"     // raw TCP + own chunked decoder, pooled buffers
	ClientNetHTTP = "nethttp" // net/http client (for comparison)
)

// Config are the parameters of a run.
type Config struct {
	URL             string
	Listeners       int
	Producers       int
	Rate            float64 // total events/s over all producers; 0 = as fast as possible
	Events          int64   // stop the measured phase after this many events in total (0 = no limit)
	Duration        time.Duration
	Warmup          time.Duration
	Drain           time.Duration // longest wait for stragglers after producers stop
	DrainQuiet      time.Duration // stop draining early after this long without any delivery
	ConnectTimeout  time.Duration // time allowed for all listeners to connect and be greeted
	PostTimeout     time.Duration
	Size            int     // approximate event body size in bytes
	Sample          int     // parse 1 in Sample data frames (latency, order)
	SlowFraction    float64 // fraction of listeners that stop reading once connected
	ServerPID       int     // sample this process's RSS and CPU when > 0
	Label           string
	Client          string
	SourceIPs       int // local 127.0.0.x addresses to spread listeners over (0 = auto)
	DialConcurrency int // listeners connecting at once
	WaitGreeting    bool
	Insecure        bool      // skip TLS verification
	Progress        io.Writer // live progress line once per second (nil: none)

	// ReadyOnSend counts a listener as connected once its request is
	// written, before any response byte: for servers that send nothing, not
	// even the response head, until the first event (the original service).
	// The server may register the listener a moment later, so a warm-up
	// should precede the measured phase. Raw client only.
	ReadyOnSend bool

	// Self-test parameters (mode self-test only).
	FramesPerChunk int
}

// DefaultConfig returns the defaults the command line uses.
func DefaultConfig() Config {
	return Config{
		URL:             "http://127.0.0.1:8080",
		Listeners:       100,
		Producers:       4,
		Duration:        10 * time.Second,
		Warmup:          2 * time.Second,
		Drain:           5 * time.Second,
		DrainQuiet:      time.Second,
		ConnectTimeout:  60 * time.Second,
		PostTimeout:     10 * time.Second,
		Size:            128,
		Sample:          16,
		Client:          ClientRaw,
		DialConcurrency: 256,
		WaitGreeting:    true,
		FramesPerChunk:  1,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Listeners < 0, c.Producers < 0:
		return errors.New("listeners and producers must not be negative")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Events < 0:
		return errors.New("events must not be negative")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Sample < 0:
		return errors.New("sample must not be negative")
	case c.SlowFraction < 0 || c.SlowFraction > 1:
		return errors.New("slow must be within [0,1]")
	case c.Client != ClientRaw && c.Client != ClientNetHTTP:
		return fmt.Errorf("client must be %q or %q", ClientRaw, ClientNetHTTP)
	case c.ReadyOnSend && c.Client != ClientRaw:
		// net/http's client returns the response only once its head has
		// arrived, which such servers send with the first event.
		return fmt.Errorf("ready-on-send needs the %q client", ClientRaw)
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 256
	}
	if c.PostTimeout <= 0 {
		c.PostTimeout = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 60 * time.Second
	}
	if c.DrainQuiet <= 0 {
		c.DrainQuiet = time.Second
	}
	return nil
}

func (c *Config) params() Params {
	return Params{
		URL:             c.URL,
		Listeners:       c.Listeners,
		Producers:       c.Producers,
		Rate:            c.Rate,
		Events:          c.Events,
		DurationSec:     c.Duration.Seconds(),
		WarmupSec:       c.Warmup.Seconds(),
		DrainSec:        c.Drain.Seconds(),
		ConnectTimeout:  c.ConnectTimeout.Seconds(),
		Size:            c.Size,
		BodyBytes:       len(NewBody("00000000", 0, c.Size).Bytes()),
		Sample:          c.Sample,
		SlowFraction:    c.SlowFraction,
		Client:          c.Client,
		SourceIPs:       c.SourceIPs,
		ServerPID:       c.ServerPID,
		DialConcurrency: c.DialConcurrency,
		ReadyOnSend:     c.ReadyOnSend,
	}
}

// engine holds the state of one run.
type engine struct {
	cfg        Config
	target     *target
	dialer     *dialer
	httpClient *http.Client
	runID      []byte

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
	e := &engine{cfg: cfg, target: t, runID: []byte(newRunID())}
	e.e2e = newShardedHist(4 * runtime.GOMAXPROCS(0))
	e.dialer, err = newDialer(t, cfg.Listeners, cfg.SourceIPs, minDur(cfg.ConnectTimeout, 10*time.Second), cfg.Insecure)
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

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func (e *engine) setPhase(p string) { e.phase.Store(&p) }

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

// Run performs a load run and returns its report. See RunIdle and
// RunSelfTest for the other modes.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	e, err := newEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return e.runLoad(ctx)
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

func (e *engine) runLoad(ctx context.Context) (rep *Report, err error) {
	cfg := e.cfg
	rep = e.newReport(ModeLoad)
	if cfg.ServerPID > 0 {
		e.server = startProcSampler(cfg.ServerPID, 100*time.Millisecond)
		defer e.server.close()
	}
	var serverBase ProcSample
	if e.server != nil {
		serverBase = e.server.now()
	}

	defer e.closeListeners()
	if _, err := e.connect(ctx); err != nil {
		return nil, err
	}
	e.producers = make([]*producer, cfg.Producers)
	for i := range e.producers {
		e.producers[i] = newProducer(e, i)
	}
	defer func() {
		for _, p := range e.producers {
			p.close()
		}
	}()
	prog := startProgress(e, cfg.Progress)
	defer prog.stop()

	base := make([]int64, len(e.listeners))
	if cfg.ReadyOnSend && cfg.Warmup <= 0 && len(e.listeners) > 0 && len(e.producers) > 0 {
		e.warn("listeners counted as connected once their request was sent, without a warm-up: events posted before the server registered them count as lost")
	}
	if cfg.Warmup > 0 && len(e.producers) > 0 {
		e.setPhase("warmup")
		e.runProducers(ctx, cfg.Warmup)
		e.setPhase("settle")
		if _, ok := e.waitDelivered(ctx, base, e.sent(), cfg.Drain); !ok && len(e.listeners) > 0 {
			e.warn("warm-up events were not all delivered before the measured phase")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	for _, p := range e.producers {
		p.resetStats()
	}
	base = e.deliveredNow(base)
	gapBase := e.scannerTotals()
	e.e2e.reset()
	if e.server != nil {
		e.server.resetPeak()
	}
	var serverStart ProcSample
	if e.server != nil {
		serverStart = e.server.now()
	}
	toolMeasureStart, _ := ReadProc(0)
	hostBusy0, _, hostErr := readHostBusy()
	load1 := loadAvg()

	e.setPhase("run")
	measureStart := time.Now()
	var produced time.Duration
	if len(e.producers) > 0 {
		if cfg.Events > 0 {
			e.limited = true
			e.budget.Store(cfg.Events)
		}
		produced = e.runProducers(ctx, cfg.Duration)
	} else {
		sleepCtx(ctx, cfg.Duration)
		produced = time.Since(measureStart)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	sent := e.sent()
	e.setPhase("drain")
	lastDelivery, complete := e.waitDelivered(ctx, base, sent, cfg.Drain)
	if len(e.listeners) == 0 {
		complete = true
	}
	deliveryWindow := lastDelivery.Sub(measureStart)
	if deliveryWindow < produced {
		deliveryWindow = produced
	}
	final := e.deliveredNow(nil)
	toolEnd, _ := ReadProc(0)
	hostBusy1, _, _ := readHostBusy()
	var serverEnd ProcSample
	if e.server != nil {
		serverEnd = e.server.now()
	}
	prog.stop()
	rep.HealthAfter = e.health()
	e.setPhase("close")

	// Slow listeners: check the TCP state before closing.
	slowGone := 0
	for _, l := range e.listeners {
		if l.slow && l.peerGone() {
			slowGone++
		}
	}
	e.closeListeners()

	res := &RunResult{
		ProduceSec:  round3(produced.Seconds()),
		DeliverySec: round3(deliveryWindow.Seconds()),
		Sent:        sent,
		Complete:    complete,
	}
	rep.Load = res
	postHist := newHist()
	var postMax int64
	statuses := map[string]int64{}
	for _, p := range e.producers {
		postHist.Merge(p.lat)
		if p.latMax > postMax {
			postMax = p.latMax
		}
		res.PostErrors += p.failed.Load()
		res.PacerSkips += p.skipped
		for code, n := range p.statuses {
			k := strconv.Itoa(code)
			if code == 0 {
				k = "transport-error"
			}
			statuses[k] += n
		}
	}
	if len(statuses) > 0 {
		res.PostStatus = statuses
	}
	res.PostLatency = summarize(postHist, postMax)
	if produced > 0 {
		res.PostsPerSec = round1(float64(sent) / produced.Seconds())
	}

	var counts []int64
	slow := &SlowResult{}
	totals := e.scannerTotals()
	for i, l := range e.listeners {
		got := final[i] - base[i]
		if l.slow {
			slow.Listeners++
			slow.Delivered += got
			continue
		}
		res.HealthyListeners++
		counts = append(counts, got)
		res.Delivered += got
		if got < sent {
			res.Lost += sent - got
		} else {
			res.Extra += got - sent
		}
		if l.gone.Load() {
			res.Disconnected++
			if err := l.getErr(); err != nil && !errors.Is(err, io.EOF) {
				e.warn("listener %d: %v", i, err)
			}
		}
		res.Order.Checked += l.checked
		res.Order.OutOfOrder += l.disorder
		res.Order.Duplicates += l.dups
		res.Order.SeqGaps += l.seqGaps
		res.Order.Foreign += l.foreign
		res.Order.Unparsed += l.badParse
	}
	res.GapEvents = totals.gaps - gapBase.gaps
	res.GapMissed = totals.gapMissed - gapBase.gapMissed
	res.OtherEvents = totals.named - gapBase.named
	res.Comments = totals.comments - gapBase.comments
	res.Retries = totals.retries - gapBase.retries
	if slow.Listeners > 0 {
		slow.Disconnected = slowGone
		res.Slow = slow
	}
	res.Expected = sent * int64(res.HealthyListeners)
	if res.Expected > 0 {
		res.DeliveryRatio = round6(float64(res.Delivered) / float64(res.Expected))
	}
	if deliveryWindow > 0 {
		res.DeliveriesPerSec = round1(float64(res.Delivered) / deliveryWindow.Seconds())
	}
	res.PerListenerMin, res.PerListenerMed, res.PerListenerMax = countStats(counts)
	h, hmax := e.e2e.merged()
	res.E2E = summarize(h, hmax)
	if res.Order.Foreign > 0 {
		e.warn("%d sampled frames came from other traffic: counts include events not sent by this run", res.Order.Foreign)
	}
	if !complete && res.Lost > 0 && res.GapEvents == 0 {
		e.warn("%d events were never delivered and no gap event announced the loss", res.Lost)
	}
	if cfg.Rate > 0 && cfg.Events == 0 && res.PostsPerSec < 0.95*cfg.Rate {
		e.warn("requested %s events/s, achieved %s/s: the server (or the producers) could not keep up",
			FormatCount(cfg.Rate), FormatCount(res.PostsPerSec))
	}

	measured := toolEnd.CPUSeconds - toolMeasureStart.CPUSeconds
	rep.Tool = ToolStats{CPUSeconds: round3(measured), CPUCores: round3(measured / deliveryWindow.Seconds())}
	if self, err := ReadProc(0); err == nil {
		rep.Tool.PeakRSSKiB = self.HWMKiB
	}
	var reads, allDelivered int64
	for i, l := range e.listeners {
		if !l.slow {
			reads += l.reads
			allDelivered += final[i]
		}
	}
	if allDelivered > 0 {
		rep.Tool.ReadsPerDelivery = round3(float64(reads) / float64(allDelivered))
	}
	if e.server != nil {
		cpu := serverEnd.CPUSeconds - serverStart.CPUSeconds
		rep.Server = &ServerStats{
			PID:            cfg.ServerPID,
			RSSBaselineKiB: serverBase.RSSKiB,
			PeakRSSKiB:     e.server.peak(),
			HWMKiB:         serverEnd.HWMKiB,
			CPUSeconds:     round3(cpu),
			CPUCores:       round3(cpu / deliveryWindow.Seconds()),
			CPUSecondsAll:  round3(serverEnd.CPUSeconds - serverBase.CPUSeconds),
		}
		rep.Server.RSSDeltaKiB = rep.Server.PeakRSSKiB - serverBase.RSSKiB
		if err := e.server.firstErr(); err != nil {
			e.warn("server sampling: %v", err)
		}
	}
	if hostErr == nil {
		window := deliveryWindow.Seconds()
		h := &HostStats{LoadAvg1: load1, BusyCores: round3((hostBusy1 - hostBusy0) / window)}
		other := h.BusyCores - rep.Tool.CPUCores
		if rep.Server != nil {
			other -= rep.Server.CPUCores
		}
		h.OtherCores = round3(math.Max(other, 0))
		rep.Host = h
		if rep.Server != nil && h.OtherCores > 0.25 {
			e.warn("other processes used %.2f cores during the measured phase: the numbers are disturbed", h.OtherCores)
		}
	}
	rep.Warnings = e.warnings
	return rep, nil
}

type scanTotals struct {
	gaps, gapMissed, named, comments, retries int64
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
	}
	return t
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }

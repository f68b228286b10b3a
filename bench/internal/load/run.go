package load

import (
	"context"
	"time"
)

// A load run goes through five phases, one method each:
//
//	connect   open every listener, wait until each is greeted, make the producers
//	warmUp    produce for Config.Warmup (not counted), wait until it is delivered
//	measure   reset the statistics, produce for Config.Duration
//	drain     wait for stragglers, take the final readings, close the listeners
//	report    turn the readings into the RunResult and resource statistics (result.go)

// measurement holds the readings a load run takes between its phases.
type measurement struct {
	// listener counts when the measured phase started, and at its end
	base, final []int64
	gapBase     scanTotals

	// server process: when the run started, when measuring started and ended
	serverBase, serverStart, serverEnd ProcSample
	toolStart, toolEnd                 ProcSample // sseload itself
	hostBusy0, hostBusy1               float64    // whole machine, CPU-seconds
	hostErr                            error
	loadAvg1                           float64

	start        time.Time     // the measured phase's start
	produced     time.Duration // time spent producing
	sent         int64
	lastDelivery time.Time
	complete     bool          // every healthy listener got every event
	window       time.Duration // delivery window: start to the last delivery, at least produced
	slowGone     int           // slow listeners the server disconnected
	scrape       *ScrapeStats  // with Config.ScrapeInterval
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

func (e *engine) runLoad(ctx context.Context) (*Report, error) {
	rep := e.newReport(ModeLoad)
	m := &measurement{}
	if e.cfg.ServerPID > 0 {
		e.server = startProcSampler(e.cfg.ServerPID, 100*time.Millisecond, e.cfg.ExtraPIDs...)
		defer e.server.close()
		m.serverBase = e.server.now()
	}
	defer e.closeListeners()
	defer e.closeProducers()
	if err := e.connectAll(ctx, m); err != nil {
		return nil, err
	}
	prog := startProgress(e, e.cfg.Progress)
	defer prog.stop()
	if err := e.warmUp(ctx, m); err != nil {
		return nil, err
	}
	if err := e.measure(ctx, m); err != nil {
		return nil, err
	}
	e.drain(ctx, m)
	prog.stop()
	rep.HealthAfter = e.health()
	e.setPhase("close")
	e.closeListeners()
	e.report(rep, m)
	return rep, nil
}

// connectAll opens the listeners and prepares the producers.
func (e *engine) connectAll(ctx context.Context, m *measurement) error {
	if _, err := e.connect(ctx); err != nil {
		return err
	}
	e.producers = make([]*producer, e.cfg.Producers)
	for i := range e.producers {
		e.producers[i] = newProducer(e, i)
	}
	// What a listener received while connecting (a greeting data block, a
	// control frame) is not an event of this run.
	m.base = e.deliveredNow(nil)
	return nil
}

func (e *engine) closeProducers() {
	for _, p := range e.producers {
		p.close()
	}
}

// warmUp produces for Config.Warmup and waits until the warm-up events are
// delivered, so that the measured phase starts on a settled server.
func (e *engine) warmUp(ctx context.Context, m *measurement) error {
	cfg := e.cfg
	if cfg.ReadyOnSend && cfg.Warmup <= 0 && len(e.listeners) > 0 && len(e.producers) > 0 {
		e.warn("listeners counted as connected once their request was sent, without a warm-up: events posted before the server registered them count as lost")
	}
	if cfg.Warmup <= 0 || len(e.producers) == 0 {
		return nil
	}
	e.setPhase("warmup")
	e.runProducers(ctx, cfg.Warmup)
	e.setPhase("settle")
	if _, ok := e.waitDelivered(ctx, m.base, e.sent(), cfg.Drain); !ok && len(e.listeners) > 0 {
		e.warn("warm-up events were not all delivered before the measured phase")
	}
	return ctx.Err()
}

// measure resets every statistic, takes the starting readings and produces
// for Config.Duration (or Config.Events).
func (e *engine) measure(ctx context.Context, m *measurement) error {
	for _, p := range e.producers {
		p.resetStats()
	}
	m.base = e.deliveredNow(m.base)
	m.gapBase = e.scannerTotals()
	e.e2e.reset()
	if e.server != nil {
		e.server.resetPeak()
		m.serverStart = e.server.now()
	}
	m.toolStart, _ = ReadProc(0)
	m.hostBusy0, _, m.hostErr = readHostBusy()
	m.loadAvg1 = loadAvg()

	e.setPhase("run")
	if e.cfg.ScrapeInterval > 0 {
		sc := startScraper(e.cfg.URL, e.cfg.ScrapeInterval)
		defer func() { stats := sc.stop(); m.scrape = &stats }()
	}
	m.start = time.Now()
	if len(e.producers) > 0 {
		if e.cfg.Events > 0 {
			e.limited = true
			e.budget.Store(e.cfg.Events)
		}
		m.produced = e.runProducers(ctx, e.cfg.Duration)
	} else {
		sleepCtx(ctx, e.cfg.Duration)
		m.produced = time.Since(m.start)
	}
	m.sent = e.sent()
	return ctx.Err()
}

// drain waits until every healthy listener has every event (or the drain
// bounds pass) and takes the final readings. Slow listeners' TCP state is
// read here, before the connections are closed.
func (e *engine) drain(ctx context.Context, m *measurement) {
	e.setPhase("drain")
	m.lastDelivery, m.complete = e.waitDelivered(ctx, m.base, m.sent, e.cfg.Drain)
	if len(e.listeners) == 0 {
		m.complete = true
	}
	m.window = max(m.lastDelivery.Sub(m.start), m.produced)
	m.final = e.deliveredNow(nil)
	m.toolEnd, _ = ReadProc(0)
	m.hostBusy1, _, _ = readHostBusy()
	if e.server != nil {
		m.serverEnd = e.server.now()
	}
	for _, l := range e.listeners {
		if l.slow && l.peerGone() {
			m.slowGone++
		}
	}
}

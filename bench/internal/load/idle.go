package load

import (
	"context"
	"time"
)

// RunIdle opens cfg.Listeners listeners, waits until all are greeted, holds
// them for cfg.Duration and reports the server's memory per listener:
// (RSS with the listeners - RSS before) / listeners. Kernel socket buffers
// are not part of a process's RSS and are not included.
func RunIdle(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Producers = 0
	cfg.SlowFraction = 0
	e, err := newEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep := e.newReport(ModeIdle)
	if cfg.ServerPID > 0 {
		e.server = startProcSampler(cfg.ServerPID, 100*time.Millisecond, cfg.ExtraPIDs...)
		defer e.server.close()
	} else {
		e.warn("no -server-pid: server memory per listener cannot be measured")
	}
	var before ProcSample
	if e.server != nil {
		before = e.server.now()
	}
	toolStart, _ := ReadProc(0)

	defer e.closeListeners()
	connectDur, err := e.connect(ctx)
	if err != nil {
		return nil, err
	}
	prog := startProgress(e, cfg.Progress)
	e.setPhase("hold")
	holdStart := time.Now()
	sleepCtx(ctx, cfg.Duration)
	prog.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	hold := time.Since(holdStart)
	res := &IdleResult{
		Listeners:  len(e.listeners),
		ConnectSec: round3(connectDur.Seconds()),
		HoldSec:    round3(hold.Seconds()),
	}
	for _, l := range e.listeners {
		if l.gone.Load() || l.peerGone() {
			res.Disconnected++
		}
	}
	if e.server != nil {
		with := e.server.now()
		res.RSSBeforeKiB = before.RSSKiB
		res.RSSWithKiB = with.RSSKiB
		res.PeakRSSKiB = e.server.peak()
		if res.Listeners > 0 {
			res.KiBPerListener = round3(float64(with.RSSKiB-before.RSSKiB) / float64(res.Listeners))
		}
		rep.Server = &ServerStats{
			PID:            cfg.ServerPID,
			RSSBaselineKiB: before.RSSKiB,
			PeakRSSKiB:     res.PeakRSSKiB,
			RSSDeltaKiB:    res.PeakRSSKiB - before.RSSKiB,
			HWMKiB:         with.HWMKiB,
			CPUSeconds:     round3(with.CPUSeconds - before.CPUSeconds),
			CPUSecondsAll:  round3(with.CPUSeconds - before.CPUSeconds),
		}
		if d := time.Since(holdStart.Add(-connectDur)).Seconds(); d > 0 {
			rep.Server.CPUCores = round3(rep.Server.CPUSeconds / d)
		}
	}
	e.closeListeners()
	toolEnd, _ := ReadProc(0)
	rep.Tool = ToolStats{CPUSeconds: round3(toolEnd.CPUSeconds - toolStart.CPUSeconds), PeakRSSKiB: toolEnd.HWMKiB}
	if d := (connectDur + hold).Seconds(); d > 0 {
		rep.Tool.CPUCores = round3(rep.Tool.CPUSeconds / d)
	}
	rep.Idle = res
	rep.Warnings = e.warnings
	return rep, nil
}

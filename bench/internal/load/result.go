package load

import (
	"errors"
	"io"
	"math"
	"strconv"
)

// report fills rep from the readings of a load run: the producers' and the
// listeners' statistics, then the resource use of sseload, the server and
// the machine, then the warnings they call for.
func (e *engine) report(rep *Report, m *measurement) {
	res := &RunResult{
		ProduceSec:  round3(m.produced.Seconds()),
		DeliverySec: round3(m.window.Seconds()),
		Sent:        m.sent.total,
		Complete:    m.complete,
	}
	rep.Load = res
	rep.Scrape = m.scrape
	e.producerResults(res, m)
	e.listenerResults(res, m)
	e.warnDelivery(res)
	rep.Tool = e.toolStats(m)
	rep.Server = e.serverStats(m)
	rep.Host = e.hostStats(rep, m)
	rep.Warnings = e.warnings
}

// producerResults sums the producers' counts, statuses and POST latencies.
func (e *engine) producerResults(res *RunResult, m *measurement) {
	postHist := newHist()
	var postMax int64
	statuses := map[string]int64{}
	for _, p := range e.producers {
		postHist.Merge(p.lat)
		postMax = max(postMax, p.latMax)
		res.PostErrors += p.failed.Load()
		res.PacerSkips += p.skipped
		for code, n := range p.statuses {
			k := strconv.Itoa(code)
			switch code {
			case 0:
				k = "transport-error"
			case statusRefused:
				k = "error-in-body"
			}
			statuses[k] += n
		}
	}
	if len(statuses) > 0 {
		res.PostStatus = statuses
	}
	res.PostLatency = summarize(postHist, postMax)
	if m.produced > 0 {
		res.PostsPerSec = round1(float64(m.sent.total) / m.produced.Seconds())
	}
}

// listenerResults counts what the healthy listeners received (and, apart,
// the slow ones), the order checks and the non-event blocks.
func (e *engine) listenerResults(res *RunResult, m *measurement) {
	var counts []int64
	slow := &SlowResult{}
	totals := e.scannerTotals()
	for i, l := range e.listeners {
		got := m.final[i] - m.base[i]
		if l.slow {
			slow.Listeners++
			slow.Delivered += got
			continue
		}
		res.HealthyListeners++
		counts = append(counts, got)
		res.Delivered += got
		want := m.sent.of(l)
		res.Expected += want
		if got < want {
			res.Lost += want - got
		} else {
			res.Extra += got - want
		}
		if l.gone.Load() {
			res.Disconnected++
			if err := l.getErr(); err != nil && !errors.Is(err, io.EOF) {
				e.warn("listener %d: %v", i, err)
			}
		}
		res.Order.add(l)
	}
	res.GapEvents = totals.gaps - m.gapBase.gaps
	res.GapMissed = totals.gapMissed - m.gapBase.gapMissed
	res.OtherEvents = totals.named - m.gapBase.named
	res.Comments = totals.comments - m.gapBase.comments
	res.Retries = totals.retries - m.gapBase.retries
	res.ControlFrames = totals.control - m.gapBase.control
	if slow.Listeners > 0 {
		slow.Disconnected = m.slowGone
		res.Slow = slow
	}
	if res.Expected > 0 {
		res.DeliveryRatio = round6(float64(res.Delivered) / float64(res.Expected))
	}
	if m.window > 0 {
		res.DeliveriesPerSec = round1(float64(res.Delivered) / m.window.Seconds())
	}
	res.PerListenerMin, res.PerListenerMed, res.PerListenerMax = countStats(counts)
	res.Filter = e.filterResults()
	h, hmax := e.e2e.merged()
	res.E2E = summarize(h, hmax)
}

// add folds one listener's order checks in.
func (o *OrderCheck) add(l *listener) {
	o.Checked += l.checked
	o.OutOfOrder += l.disorder
	o.Duplicates += l.dups
	o.SeqGaps += l.seqGaps
	o.Foreign += l.foreign
	o.Unparsed += l.badParse
}

func (e *engine) warnDelivery(res *RunResult) {
	cfg := e.cfg
	if res.Order.Foreign > 0 {
		e.warn("%d sampled frames came from other traffic: counts include events not sent by this run", res.Order.Foreign)
	}
	if f := res.Filter; f != nil && f.Rejected > 0 {
		e.warn("%d events reached listeners whose filter rejects them (the first: %s)", f.Rejected, f.Example)
	}
	if f := res.Filter; f != nil && cfg.Filters > len(e.listeners) {
		e.warn("%d filters asked for, %d distinct ones given: there are fewer listeners", cfg.Filters, f.Filters)
	}
	if !res.Complete && res.Lost > 0 && res.GapEvents == 0 {
		e.warn("%d events were never delivered and no gap event announced the loss", res.Lost)
	}
	if cfg.Rate > 0 && cfg.Events == 0 && res.PostsPerSec < 0.95*cfg.Rate {
		e.warn("requested %s events/s, achieved %s/s: the server (or the producers) could not keep up",
			FormatCount(cfg.Rate), FormatCount(res.PostsPerSec))
	}
}

// toolStats is sseload's own CPU, memory and reads per delivery.
func (e *engine) toolStats(m *measurement) ToolStats {
	cpu := m.toolEnd.CPUSeconds - m.toolStart.CPUSeconds
	t := ToolStats{CPUSeconds: round3(cpu)}
	if m.window > 0 {
		t.CPUCores = round3(cpu / m.window.Seconds())
	}
	if self, err := ReadProc(0); err == nil {
		t.PeakRSSKiB = self.HWMKiB
	}
	var reads, delivered int64
	for i, l := range e.listeners {
		if !l.slow {
			reads += l.reads
			delivered += m.final[i]
		}
	}
	if delivered > 0 {
		t.ReadsPerDelivery = round3(float64(reads) / float64(delivered))
	}
	return t
}

// serverStats is the server process's memory and CPU (nil without
// Config.ServerPID).
func (e *engine) serverStats(m *measurement) *ServerStats {
	if e.server == nil {
		return nil
	}
	cpu := m.serverEnd.CPUSeconds - m.serverStart.CPUSeconds
	s := &ServerStats{
		PID:            e.cfg.ServerPID,
		RSSBaselineKiB: m.serverBase.RSSKiB,
		PeakRSSKiB:     e.server.peak(),
		HWMKiB:         m.serverEnd.HWMKiB,
		CPUSeconds:     round3(cpu),
		CPUSecondsAll:  round3(m.serverEnd.CPUSeconds - m.serverBase.CPUSeconds),
	}
	if m.window > 0 {
		s.CPUCores = round3(cpu / m.window.Seconds())
	}
	s.RSSDeltaKiB = s.PeakRSSKiB - m.serverBase.RSSKiB
	if err := e.server.firstErr(); err != nil {
		e.warn("server sampling: %v", err)
	}
	return s
}

// hostStats is how busy the machine was, and how much of it was neither
// sseload nor the server (nil when /proc/stat cannot be read).
func (e *engine) hostStats(rep *Report, m *measurement) *HostStats {
	if m.hostErr != nil || m.window <= 0 {
		return nil
	}
	h := &HostStats{LoadAvg1: m.loadAvg1, BusyCores: round3((m.hostBusy1 - m.hostBusy0) / m.window.Seconds())}
	other := h.BusyCores - rep.Tool.CPUCores
	if rep.Server != nil {
		other -= rep.Server.CPUCores
	}
	h.OtherCores = round3(math.Max(other, 0))
	if rep.Server != nil && h.OtherCores > 0.25 {
		e.warn("other processes used %.2f cores during the measured phase: the numbers are disturbed", h.OtherCores)
	}
	return h
}

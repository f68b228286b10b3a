package server

import (
	"runtime"
	"sync/atomic"
	"time"
)

// The write budget: how long a busy stream gathers events before it writes.
//
// Deliveries per second are (writes per second) × (frames per write), and a
// write call costs about the same whether it carries one frame or fifty
// (MEASURED.md: write(2) is most of a delivery's cost). When streams would
// write more often than the machine affords, each must write less often, with
// bigger batches, or the streams take all the CPU, producers starve, and each
// stream finds one event per wake-up and writes it alone. When the machine has
// CPU to spare, gathering only adds latency.
//
// So every 100 ms the gathering time of busy streams is adjusted from what
// the window showed:
//
//   - How busy the machine was (the share of its CPU time not idle, from
//     /proc/stat; where that is not available, this process's CPU time over
//     the CPUs it may use). Over busyHigh, while the streams write often
//     enough to matter, gathering grows; under busyLow it shrinks, to nothing
//     when the streams keep up. So the machine keeps some CPU to spare, and
//     what it has to spare goes to lower latency rather than to fewer writes.
//   - How many frames streams found ready when they looked, before gathering:
//     streams that find several each time are behind the events (the CPU is
//     short, whatever the load says), and gathering grows.
//
// With Config.WriteBudget set to a number, the controller follows that fixed
// budget of write calls per second instead of the machine's load (the
// gathering time is scaled by the ratio of the flush rate to the budget).
//
// The gathering time is bounded by the maximum (Config.Linger) and by what
// the ring can hold: a stream gathering while the ring turns over would be
// lapped. A stream that is not busy (it found one event after a pause) writes
// at once, whatever the budget: an idle service has no added latency.
//
// Everything is lock-free: the sampling is done by whichever stream finds
// the window over, after one compare-and-swap.

const budgetWindow = 100 * time.Millisecond

// AutoWriteBudget is the Config.WriteBudget that makes busy streams gather
// as the machine's spare CPU allows (the default).
const AutoWriteBudget = -1

// writeBudget is the shared state; the zero value is not usable: see
// newWriteBudget. Its methods are safe for concurrent use.
type writeBudget struct {
	ringLast func() uint64 // the ring's last sequence number
	load     func() float64
	policy   gatherPolicy

	flushes     atomic.Uint64 // flushes since start
	ready       atomic.Uint64 // frames streams found ready before gathering, over those flushes
	frames      atomic.Uint64 // frames those flushes carried
	windowStart atomic.Int64  // Unix ns of the current window; 0 before the first
	lastFlushes atomic.Uint64 // flushes at the window's start
	lastReady   atomic.Uint64 // ready at the window's start
	lastFrames  atomic.Uint64 // frames at the window's start
	lastSeq     atomic.Uint64 // ring sequence at the window's start
	gather      atomic.Int64  // current gathering time, ns
}

// newWriteBudget returns a budget for streams reading a ring of ringSize
// frames whose last sequence number last returns, gathering at most
// maxGather: target write calls per second, or, for AutoWriteBudget, what
// load allows (load returns the machine's busy share since its previous
// call, negative if unknown).
func newWriteBudget(target int, maxGather time.Duration, ringSize int, last func() uint64, load func() float64) *writeBudget {
	b := &writeBudget{
		ringLast: last,
		load:     load,
		policy: gatherPolicy{
			maxGather: maxGather,
			ringSize:  uint64(ringSize),
			matters:   float64(mattersPerCPU * runtime.GOMAXPROCS(0)),
		},
	}
	if target > 0 {
		b.policy.target = float64(target)
	}
	return b
}

// flushed counts one write of a stream carrying frames event frames, of
// which ready were ready when the stream looked, before it gathered more.
func (b *writeBudget) flushed(ready, frames int) {
	b.flushes.Add(1)
	if frames > 0 {
		b.ready.Add(uint64(ready))
		b.frames.Add(uint64(frames))
	}
}

// gatherTime returns how long a busy stream gathers events before its next
// write, recomputing it when the sampling window is over.
func (b *writeBudget) gatherTime(now time.Time) time.Duration {
	ns := now.UnixNano()
	start := b.windowStart.Load()
	if elapsed := ns - start; elapsed >= int64(budgetWindow) && b.windowStart.CompareAndSwap(start, ns) {
		b.sample(start, elapsed)
	}
	return time.Duration(b.gather.Load())
}

// sample recomputes the gathering time from the window that just ended (the
// caller won it with the compare-and-swap).
func (b *writeBudget) sample(start, elapsed int64) {
	flushes, ready, frames := b.flushes.Load(), b.ready.Load(), b.frames.Load()
	seq := b.ringLast()
	prevFlushes, prevSeq := b.lastFlushes.Swap(flushes), b.lastSeq.Swap(seq)
	prevReady, prevFrames := b.lastReady.Swap(ready), b.lastFrames.Swap(frames)
	busy := -1.0
	if b.policy.target == 0 && b.load != nil {
		busy = b.load()
	}
	if start == 0 {
		return // the first window only sets the marks
	}
	secs := float64(elapsed) / float64(time.Second)
	w := window{
		rate:   float64(flushes-prevFlushes) / secs,
		events: float64(seq-prevSeq) / secs,
		busy:   busy,
	}
	if n := flushes - prevFlushes; n > 0 {
		w.ready = float64(ready-prevReady) / float64(n)
		w.perFlush = float64(frames-prevFrames) / float64(n)
	}
	b.gather.Store(int64(nextGather(time.Duration(b.gather.Load()), w, b.policy)))
}

// minGather is the gathering time a controller that must grow starts from.
const minGather = 500 * time.Microsecond

// Frames per write above behind mean streams are behind the events; below
// keepingUp, they keep up.
const (
	behind    = 2.0
	keepingUp = 1.25
)

// The machine's busy share above which gathering grows, and below which it
// shrinks; and the flush rate per CPU under which the streams' writes are
// too few to matter to the load (about 5 % of the CPU: gathering them would
// add latency and give little back).
const (
	busyHigh       = 0.85
	busyLow        = 0.65
	mattersPerCPU  = 5000
	defaultMatters = 2 * mattersPerCPU
)

// window is what the streams did in one sampling window.
type window struct {
	rate     float64 // flushes per second
	events   float64 // events published per second
	ready    float64 // frames ready when streams looked, before gathering, per flush
	perFlush float64 // frames per flush, gathered ones included (0: no flush)
	busy     float64 // the machine's busy share (0 to 1); negative: unknown
}

// gatherPolicy is what the controller is given besides the window.
type gatherPolicy struct {
	target    float64 // fixed write calls per second; 0: follow the load
	maxGather time.Duration
	ringSize  uint64
	matters   float64 // the flush rate from which the streams' writes matter to the load
}

// nextGather is the controller: the gathering time for the next window, from
// the current one, what the streams did, and the policy.
func nextGather(cur time.Duration, w window, p gatherPolicy) time.Duration {
	next := cur
	switch {
	case w.ready > behind && w.rate > 0:
		// Streams are behind the events: the CPU is short. Gather longer.
		next = 3 * max(cur, minGather) / 2
	case p.target > 0:
		next = budgetGather(cur, w, p.target)
	case w.busy > busyHigh && w.rate >= p.matters:
		next = 3 * max(cur, minGather) / 2
	case w.busy >= 0 && w.busy < busyLow:
		// CPU to spare: gather less. Quickly when streams keep up (gathering
		// then only delays), gently when they batch.
		if w.perFlush < keepingUp {
			next = cur / 2
		} else {
			next = cur * 4 / 5
		}
		if next < minGather {
			next = 0
		}
	}
	// Never gather longer than half the time the ring takes to turn over.
	most := p.maxGather
	if w.events > 0 {
		most = min(most, time.Duration(float64(p.ringSize)/w.events*float64(time.Second)/2))
	}
	return min(next, most)
}

// budgetGather is nextGather with a fixed budget of target write calls per
// second.
func budgetGather(cur time.Duration, w window, target float64) time.Duration {
	switch {
	case w.rate > target:
		// Over budget: gather longer, in proportion, unless gathering
		// already and batching nothing (events too sparse to share a
		// write): then hold.
		if cur == 0 || w.perFlush >= keepingUp {
			return time.Duration(float64(max(cur, minGather)) * w.rate / target)
		}
	case w.perFlush < keepingUp:
		// Streams keep up, within the budget: gathering only delays.
		if next := cur / 2; next >= minGather {
			return next
		}
		return 0
	case w.rate < target:
		// Batching within the budget: gather less, in proportion (at most
		// halving), so that the flush rate rises to the budget.
		next := time.Duration(float64(cur) * max(w.rate/target, 0.5))
		if next < minGather {
			return 0
		}
		return next
	}
	return cur
}

package server

import (
	"sync/atomic"
	"time"
)

// The write budget: how long a busy stream gathers events before it writes.
//
// Deliveries per second are (writes per second) × (frames per write), and a
// write call costs about the same whether it carries one frame or fifty
// (MEASURED.md: write(2) is most of a delivery's cost). A machine affords so
// many write calls per second; shared by 1,000 listeners each may write often,
// shared by 10,000 each must write ten times less, with batches ten times
// bigger, or the streams take all the CPU, producers starve, and each stream
// finds one event per wake-up and writes it alone.
//
// So the streams share a budget of write calls per second. Every flush counts;
// every 100 ms the rate they flushed at is compared with the budget, and the
// gathering time of busy streams is scaled by their ratio (a proportional
// controller: with busy streams, the flush rate goes as the inverse of the
// gathering time).
//
// The write calls a machine affords depend on what else it does, so the
// controller has a second input: how many frames streams found ready when
// they looked, before gathering, on average in the window. Streams that find
// several frames each time are behind the events: the CPU is short
// (producers starve with them), and gathering longer makes the writes fewer
// and bigger: gathering grows, even under the budget. Streams that find one
// frame each time keep up: gathering only adds latency, and decays to
// nothing. So at moderate rates,
// with CPU to spare, streams write at once, and under saturation they write
// as much as the machine allows in as few calls as it takes.
//
// The gathering time is bounded by the maximum (Config.Linger) and by what
// the ring can hold: a stream gathering while the ring turns over would be
// lapped. A stream that is not busy (it found one event after a pause) writes
// at once, whatever the budget: an idle service has no added latency.
//
// Everything is lock-free: the sampling is done by whichever stream finds
// the window over, after one compare-and-swap.

const budgetWindow = 100 * time.Millisecond

// writeBudget is the shared state; the zero value is not usable: see
// newWriteBudget. Its methods are safe for concurrent use.
type writeBudget struct {
	ringSize  uint64
	ringLast  func() uint64 // the ring's last sequence number
	target    float64       // write calls per second for all streams
	maxGather time.Duration

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

// newWriteBudget returns a budget of target write calls per second, gathering
// at most maxGather, for streams reading a ring of ringSize frames whose last
// sequence number last returns.
func newWriteBudget(target int, maxGather time.Duration, ringSize int, last func() uint64) *writeBudget {
	return &writeBudget{
		ringSize:  uint64(ringSize),
		ringLast:  last,
		target:    float64(target),
		maxGather: maxGather,
	}
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
	if start == 0 {
		return // the first window only sets the marks
	}
	secs := float64(elapsed) / float64(time.Second)
	w := window{
		rate:   float64(flushes-prevFlushes) / secs,
		events: float64(seq-prevSeq) / secs,
	}
	if n := flushes - prevFlushes; n > 0 {
		w.ready = float64(ready-prevReady) / float64(n)
		w.perFlush = float64(frames-prevFrames) / float64(n)
	}
	b.gather.Store(int64(nextGather(time.Duration(b.gather.Load()), w, b.target, b.maxGather, b.ringSize)))
}

// minGather is the gathering time a controller that must grow starts from.
const minGather = 500 * time.Microsecond

// Frames per write above behind mean streams are behind the events; below
// keepingUp, they keep up.
const (
	behind    = 2.0
	keepingUp = 1.25
)

// window is what the streams did in one sampling window.
type window struct {
	rate     float64 // flushes per second
	events   float64 // events published per second
	ready    float64 // frames ready when streams looked, before gathering, per flush
	perFlush float64 // frames per flush, gathered ones included (0: no flush)
}

// nextGather is the controller: the gathering time for the next window, from
// the current one, what the streams did, the budget, the maximum, and the
// ring's size.
func nextGather(cur time.Duration, w window, target float64, maxGather time.Duration, ringSize uint64) time.Duration {
	next := cur
	switch {
	case w.rate > target:
		// Over budget: gather longer, in proportion, unless gathering
		// already and batching nothing (events too sparse to share a
		// write): then hold.
		if cur == 0 || w.perFlush >= keepingUp {
			next = time.Duration(float64(max(cur, minGather)) * w.rate / target)
		}
	case w.ready > behind:
		// Under budget, but streams are behind the events: the CPU is
		// short. Gather longer.
		next = 3 * max(cur, minGather) / 2
	case w.perFlush < keepingUp && w.rate < target:
		// Streams keep up, within the budget: gathering only delays.
		next = cur / 2
		if next < minGather {
			next = 0
		}
	}
	// Never gather longer than half the time the ring takes to turn over.
	if w.events > 0 {
		ringTime := time.Duration(float64(ringSize) / w.events * float64(time.Second) / 2)
		maxGather = min(maxGather, ringTime)
	}
	return min(next, maxGather)
}

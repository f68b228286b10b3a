package server

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestNextGather(t *testing.T) {
	t.Parallel()
	const (
		ms   = time.Millisecond
		most = 50 * ms
		ring = 4096
	)
	for _, tc := range []struct {
		name   string
		cur    time.Duration
		w      window
		target float64 // 0: follow the load
		want   time.Duration
	}{
		// A fixed budget of 1,000 write calls per second.
		{"fixed: idle stays idle", 0, window{10, 10, 1, 1, -1}, 1000, 0},
		{"fixed: over budget from nothing starts small", 0, window{2000, 100, 1, 1, -1}, 1000, 2 * minGather},
		{"fixed: over budget grows in proportion", 4 * ms, window{3000, 100, 1, 3, -1}, 1000, 12 * ms},
		{"fixed: over budget but nothing to batch holds", 4 * ms, window{3000, 100, 1, 1, -1}, 1000, 4 * ms},
		{"fixed: batching under budget shrinks in proportion", 10 * ms, window{900, 100, 1, 1.5, -1}, 1000, 9 * ms},
		{"fixed: batching far under budget halves at most", 10 * ms, window{100, 100, 1, 1.5, -1}, 1000, 5 * ms},
		{"fixed: keeping up within the budget halves", 10 * ms, window{400, 100, 1, 1.1, -1}, 1000, 5 * ms},
		{"fixed: halving below the minimum stops", 800 * time.Microsecond, window{100, 100, 1, 1, -1}, 1000, 0},
		{"fixed: behind the events under budget grows", 4 * ms, window{500, 100, 10, 12, -1}, 1000, 6 * ms},
		// Following the machine's load.
		{"load: busy machine, streams writing a lot, grows", 4 * ms, window{50_000, 200, 1, 3, 0.95}, 0, 6 * ms},
		{"load: from nothing starts small", 0, window{50_000, 200, 1, 1, 0.95}, 0, 750 * time.Microsecond},
		{"load: busy machine, streams writing little, holds", 4 * ms, window{5000, 200, 1, 3, 0.95}, 0, 4 * ms},
		{"load: in the band holds", 4 * ms, window{50_000, 200, 1, 3, 0.75}, 0, 4 * ms},
		{"load: CPU to spare, batching, shrinks gently", 10 * ms, window{50_000, 200, 1, 3, 0.4}, 0, 8 * ms},
		{"load: CPU to spare, keeping up, halves", 10 * ms, window{50_000, 200, 1, 1.1, 0.4}, 0, 5 * ms},
		{"load: shrinking below the minimum stops", 600 * time.Microsecond, window{50_000, 200, 1, 1.1, 0.4}, 0, 0},
		{"load: unknown holds", 4 * ms, window{50_000, 200, 1, 3, -1}, 0, 4 * ms},
		{"load: behind the events grows whatever the load", 4 * ms, window{50_000, 200, 10, 12, 0.3}, 0, 6 * ms},
		{"bounded by the maximum", 40 * ms, window{10_000, 100, 8, 8, 1}, 0, most},
		// 4096 frames at 100,000 events/s turn over in 41 ms: half is 20 ms.
		{"bounded by the ring", 30 * ms, window{2000, 100_000, 8, 8, 1}, 1000, 20480 * time.Microsecond},
	} {
		p := gatherPolicy{target: tc.target, maxGather: most, ringSize: ring, matters: defaultMatters}
		if got := nextGather(tc.cur, tc.w, p); got != tc.want {
			t.Errorf("%s: nextGather(%v, %+v) = %v, want %v", tc.name, tc.cur, tc.w, got, tc.want)
		}
	}
}

// simulate runs budget windows of streams that get 200 events/s each and
// flush as often as their gathering time allows (each busy stream once per
// gathering time plus 1 ms of work, and at most once per event), and
// returns the last window's flush rate. load, when set, is told the flush
// rate and sets the machine's busy share.
func simulate(b *writeBudget, seq *atomic.Uint64, now *time.Time, streams, windows int, busy bool, load func(rate float64)) (rate float64) {
	for range windows {
		g := b.gatherTime(*now)
		var flushes float64
		if busy {
			perStream := min(1/(g+time.Millisecond).Seconds(), 200)
			flushes = float64(streams) * budgetWindow.Seconds() * perStream
		}
		// Streams keep up: they find one frame when they look, and gather
		// the others that come.
		perFlush := max(1, int(200*(g+time.Millisecond).Seconds()))
		for range int(flushes) {
			b.flushed(1, perFlush)
		}
		if busy {
			seq.Add(uint64(streams) * 200 * uint64(budgetWindow) / uint64(time.Second))
		}
		*now = now.Add(budgetWindow)
		rate = flushes / budgetWindow.Seconds()
		if load != nil {
			load(rate)
		}
	}
	return rate
}

// TestWriteBudgetConverges: with a fixed budget, the flush rate settles near
// it, and the gathering time falls back to zero when the load goes.
func TestWriteBudgetConverges(t *testing.T) {
	t.Parallel()
	var seq atomic.Uint64
	b := newWriteBudget(1000, time.Second, 1<<20, seq.Load, nil)
	now := time.Unix(0, 0).Add(time.Hour)
	if rate := simulate(b, &seq, &now, 500, 40, true, nil); rate < 500 || rate > 2000 {
		t.Fatalf("flush rate after 4 s of load: %.0f/s, want near the budget (1000/s); gather %v", rate, b.gatherTime(now))
	}
	simulate(b, &seq, &now, 500, 40, false, nil)
	if g := b.gatherTime(now); g != 0 {
		t.Fatalf("gather after the load went: %v, want 0", g)
	}
}

// TestWriteBudgetFollowsTheLoad: following the machine's load, the streams
// gather just enough to keep the machine out of saturation, and write at
// once when it has CPU to spare. The simulated machine spends 10 µs per
// write call out of 2 CPUs, plus a fixed share for everything else.
func TestWriteBudgetFollowsTheLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		streams int
		other   float64 // the busy share of everything else
		gathers bool
	}{
		// 1,000 listeners at 200 events/s: 200,000 writes/s would take
		// the whole machine: they gather, and the machine stays below
		// saturation.
		{"saturating", 1000, 0.2, true},
		// 100 listeners: 20,000 writes/s take 10 % of the machine.
		{"light", 100, 0.2, false},
		// On a machine busy with other work: they gather, giving some of
		// it back...
		{"light on a busy machine", 100, 0.8, true},
		// ...unless they write too little to matter (4,000 writes/s: 2 %).
		{"very light on a busy machine", 20, 0.9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seq atomic.Uint64
			var share atomic.Value
			share.Store(-1.0)
			b := newWriteBudget(AutoWriteBudget, 50*time.Millisecond, 1<<20, seq.Load, func() float64 { return share.Load().(float64) })
			now := time.Unix(0, 0).Add(time.Hour)
			busyShare := func(rate float64) { share.Store(min(1, tc.other+rate*10e-6/2)) }
			simulate(b, &seq, &now, tc.streams, 100, true, busyShare)
			g := b.gatherTime(now)
			load := share.Load().(float64)
			t.Logf("gathering %v, busy %.2f", g, load)
			if tc.gathers && (g == 0 || load > 0.95) {
				t.Fatalf("gathering %v, machine busy %.2f: want gathering that keeps it below saturation", g, load)
			}
			if !tc.gathers && g != 0 {
				t.Fatalf("gathering %v with CPU to spare (busy %.2f), want none", g, load)
			}
		})
	}
}

func TestCPULoad(t *testing.T) {
	t.Parallel()
	var l cpuLoad
	if got := l.sample(); got >= 0 {
		t.Fatalf("first sample: %v, want unknown (negative)", got)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	spins := 0
	for time.Now().Before(deadline) { // spin: make some CPU time pass
		spins++
	}
	t.Logf("%d spins", spins)
	if got := l.sample(); got < 0 || got > 1 {
		t.Fatalf("second sample: %v, want a share between 0 and 1", got)
	}
}

func BenchmarkWriteBudget(b *testing.B) {
	var seq atomic.Uint64
	wb := newWriteBudget(AutoWriteBudget, 50*time.Millisecond, 4096, seq.Load, new(cpuLoad).sample)
	for _, goroutines := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(goroutines)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_ = wb.gatherTime(time.Now())
					wb.flushed(1, 4)
				}
			})
		})
	}
	b.Run("nextGather", func(b *testing.B) {
		b.ReportAllocs()
		g := time.Millisecond
		for b.Loop() {
			g = nextGather(g, window{90_000, 1000, 1, 3, 0.9}, gatherPolicy{maxGather: 50 * time.Millisecond, ringSize: 4096, matters: defaultMatters})
		}
	})
}

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
		ms     = time.Millisecond
		target = 1000.0
		most   = 50 * ms
		ring   = 4096
	)
	for _, tc := range []struct {
		name string
		cur  time.Duration
		w    window
		want time.Duration
	}{
		{"idle stays idle", 0, window{10, 10, 1, 1}, 0},
		{"over budget from nothing starts small", 0, window{2000, 100, 1, 1}, 2 * minGather},
		{"over budget grows in proportion", 4 * ms, window{3000, 100, 1, 3}, 12 * ms},
		{"over budget but nothing to batch holds", 4 * ms, window{3000, 100, 1, 1}, 4 * ms},
		{"at budget, batching, holds", 10 * ms, window{900, 100, 1, 1.5}, 10 * ms},
		{"keeping up within the budget halves", 10 * ms, window{400, 100, 1, 1.1}, 5 * ms},
		{"halving below the minimum stops", 800 * time.Microsecond, window{100, 100, 1, 1}, 0},
		{"behind the events under budget grows", 4 * ms, window{500, 100, 10, 12}, 6 * ms},
		{"behind from nothing starts small", 0, window{500, 100, 10, 10}, 750 * time.Microsecond},
		{"bounded by the maximum", 40 * ms, window{10_000, 100, 8, 8}, most},
		// 4096 frames at 100,000 events/s turn over in 41 ms: half is 20 ms.
		{"bounded by the ring", 30 * ms, window{2000, 100_000, 8, 8}, 20480 * time.Microsecond},
	} {
		if got := nextGather(tc.cur, tc.w, target, most, ring); got != tc.want {
			t.Errorf("%s: nextGather(%v, %+v) = %v, want %v", tc.name, tc.cur, tc.w, got, tc.want)
		}
	}
}

// TestWriteBudgetConverges simulates streams that flush as often as their
// gathering time allows and checks that the flush rate settles near the
// budget, and that the gathering time falls back to zero when the load goes.
func TestWriteBudgetConverges(t *testing.T) {
	t.Parallel()
	var seq atomic.Uint64
	b := newWriteBudget(1000, time.Second, 1<<20, seq.Load)
	now := time.Unix(0, 0).Add(time.Hour)
	const streams = 500
	step := func(windows int, busy bool) (rate float64) {
		for range windows {
			g := b.gatherTime(now)
			// Each busy stream flushes once per gathering time (plus 1 ms of
			// work): the flush rate is streams / (gather + 1 ms).
			var flushes float64
			if busy {
				flushes = streams * budgetWindow.Seconds() / (g + time.Millisecond).Seconds()
			}
			// Streams keep up: they find one frame when they look, and
			// gather the others that come: 200 events/s each.
			perFlush := max(1, int(200*(g+time.Millisecond).Seconds()))
			for range int(flushes) {
				b.flushed(1, perFlush)
			}
			if busy {
				seq.Add(100_000 * uint64(budgetWindow) / uint64(time.Second))
			}
			now = now.Add(budgetWindow)
			rate = flushes / budgetWindow.Seconds()
		}
		return rate
	}
	rate := step(40, true)
	if rate < 500 || rate > 2000 {
		t.Fatalf("flush rate after 4 s of load: %.0f/s, want near the budget (1000/s); gather %v", rate, b.gatherTime(now))
	}
	step(40, false)
	if g := b.gatherTime(now); g != 0 {
		t.Fatalf("gather after the load went: %v, want 0", g)
	}
}

func BenchmarkWriteBudget(b *testing.B) {
	var seq atomic.Uint64
	wb := newWriteBudget(DefaultWriteBudget(), 50*time.Millisecond, 4096, seq.Load)
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
			g = nextGather(g, window{90_000, 1000, 1, 3}, 80_000, 50*time.Millisecond, 4096)
		}
	})
}

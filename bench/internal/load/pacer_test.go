package load

import (
	"context"
	"testing"
	"time"
)

// fakeClock drives a Pacer without real sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) bool {
	c.t = c.t.Add(d)
	return true
}

func newFakePacer(rate float64) (*Pacer, *fakeClock) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := NewPacer(rate, c.t)
	p.now, p.sleep = c.now, c.sleep
	return p, c
}

func TestPacerEvenSpacing(t *testing.T) {
	p, c := newFakePacer(100) // 10ms interval
	start := c.t
	deadline := start.Add(time.Second)
	var sends []time.Time
	for p.Wait(context.Background(), deadline) {
		sends = append(sends, c.t)
	}
	if len(sends) != 100 {
		t.Fatalf("%d sends in 1s at 100/s", len(sends))
	}
	for i, s := range sends {
		if want := start.Add(time.Duration(i) * 10 * time.Millisecond); !s.Equal(want) {
			t.Fatalf("send %d at %v, want %v", i, s.Sub(start), want.Sub(start))
		}
	}
}

func TestPacerNoBurstAfterStall(t *testing.T) {
	p, c := newFakePacer(1000) // 1ms interval, max lag 1ms
	deadline := c.t.Add(time.Hour)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		p.Wait(ctx, deadline)
	}
	// The caller stalls for 100ms (100 slots).
	c.t = c.t.Add(100 * time.Millisecond)
	stallEnd := c.t
	// Count the sends that happen without the clock moving: the burst.
	burst := 0
	for {
		before := c.t
		p.Wait(ctx, deadline)
		if c.t != before {
			break
		}
		burst++
	}
	if burst > 2 {
		t.Fatalf("burst of %d sends after a stall", burst)
	}
	if p.Skipped() < 90 {
		t.Fatalf("skipped %d slots, want about 100", p.Skipped())
	}
	if c.t.Sub(stallEnd) > 2*time.Millisecond {
		t.Fatalf("resumed after %v", c.t.Sub(stallEnd))
	}
}

func TestPacerSmallLagCatchesUp(t *testing.T) {
	// Timer overshoot below MaxLag must not lower the rate.
	p, c := newFakePacer(10_000) // 100µs interval, max lag 1ms
	p.sleep = func(_ context.Context, d time.Duration) bool {
		c.t = c.t.Add(d + 300*time.Microsecond) // every sleep overshoots
		return true
	}
	deadline := c.t.Add(time.Second)
	n := 0
	for p.Wait(context.Background(), deadline) {
		n++
	}
	if n < 9900 {
		t.Fatalf("%d sends, want ~10000", n)
	}
}

func TestPacerDeadlineAndCancel(t *testing.T) {
	p, c := newFakePacer(10)
	if p.Wait(context.Background(), c.t) {
		t.Fatal("slot at the deadline must not be used")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p2 := NewPacer(1, time.Now().Add(time.Hour))
	if p2.Wait(ctx, time.Now().Add(2*time.Hour)) {
		t.Fatal("cancelled context must stop the wait")
	}
}

package load

import (
	"context"
	"time"
)

// Pacer spaces sends evenly at a fixed rate. It follows a schedule (slot k is
// at start + k*interval) so that timer overshoot does not lower the rate, but
// it never bursts to catch up: when the caller has fallen behind the schedule
// by more than MaxLag (because requests are slower than the interval, or the
// process was descheduled), the schedule is re-anchored at the current time
// and the missed slots are dropped. The largest back-to-back run is therefore
// about MaxLag/interval + 1 sends.
type Pacer struct {
	interval time.Duration
	next     time.Time
	maxLag   time.Duration
	skipped  int64

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
}

// NewPacer returns a pacer for rate events per second whose first slot is at
// start. rate must be positive.
func NewPacer(rate float64, start time.Time) *Pacer {
	interval := time.Duration(float64(time.Second) / rate)
	if interval <= 0 {
		interval = 1
	}
	maxLag := interval
	if maxLag < time.Millisecond {
		maxLag = time.Millisecond
	}
	return &Pacer{
		interval: interval,
		next:     start,
		maxLag:   maxLag,
		now:      time.Now,
		sleep:    sleepCtx,
	}
}

// Interval returns the time between two slots.
func (p *Pacer) Interval() time.Duration { return p.interval }

// Skipped returns how many slots were dropped because the caller was late.
func (p *Pacer) Skipped() int64 { return p.skipped }

// Wait blocks until the next slot. It returns false, without waiting past it,
// when the next slot is at or after deadline, or when ctx is done.
func (p *Pacer) Wait(ctx context.Context, deadline time.Time) bool {
	if !p.next.Before(deadline) {
		return false
	}
	now := p.now()
	if d := p.next.Sub(now); d > 0 {
		if !p.sleep(ctx, d) {
			return false
		}
	} else if lag := -d; lag > p.maxLag {
		missed := int64(lag / p.interval)
		p.skipped += missed
		p.next = now
	}
	p.next = p.next.Add(p.interval)
	return ctx.Err() == nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

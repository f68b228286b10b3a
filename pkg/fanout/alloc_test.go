package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// These tests prove the zero-allocation claims in the doc comments rather than
// stating them. Frames are allocated before measuring: building a frame is
// the caller's one allocation per message; publishing and reading it are not.

const allocRuns = 1000

func frames(n int) []*fanout.Frame {
	fs := make([]*fanout.Frame, n)
	for i := range fs {
		fs[i] = fanout.NewFrame([]byte("data: {}\n\n"))
	}
	return fs
}

func TestPublishDoesNotAllocate(t *testing.T) {
	for _, sleepers := range []int{0, 1, 100} {
		r := newRing(t, fanout.Options{Size: 64, Shards: 4})
		// Subscribers that are asleep make Publish signal their shards.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		for range sleepers {
			sub := r.Subscribe()
			go func() {
				defer func() { done <- struct{}{} }()
				defer sub.Close()
				batch := make([]*fanout.Frame, 0, 64)
				for {
					batch, _ = sub.Read(batch[:0])
					if len(batch) == 0 && sub.Wait(ctx, 0) != nil {
						return
					}
				}
			}()
		}
		fs := frames(allocRuns + 1)
		i := 0
		allocs := testing.AllocsPerRun(allocRuns, func() {
			if _, err := r.Publish(fs[i]); err != nil {
				t.Fatal(err)
			}
			i++
		})
		cancel()
		for range sleepers {
			<-done
		}
		if allocs != 0 {
			t.Errorf("Publish with %d subscribers: %v allocations per call, want 0", sleepers, allocs)
		}
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	r := newRing(t, fanout.Options{Size: 64})
	sub := r.Subscribe()
	defer sub.Close()
	const perRun = 64 + 8 // more than the ring holds, so Read also takes the lapped path
	fs := frames(perRun * (allocRuns + 1))
	batch := make([]*fanout.Frame, 0, 16)
	next := 0
	allocs := testing.AllocsPerRun(allocRuns, func() {
		for range perRun {
			_, _ = r.Publish(fs[next])
			next++
		}
		for {
			batch, _ = sub.Read(batch[:0])
			if len(batch) == 0 {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Read: %v allocations per call, want 0", allocs)
	}
}

func TestWaitDoesNotAllocate(t *testing.T) {
	r := newRing(t, fanout.Options{Size: 64})
	sub := r.Subscribe()
	defer sub.Close()
	ctx := context.Background()
	_ = sub.Wait(ctx, time.Microsecond) // first call creates the timer
	allocs := testing.AllocsPerRun(100, func() {
		_ = sub.Wait(ctx, time.Microsecond)
	})
	if allocs != 0 {
		t.Errorf("Wait with timeout: %v allocations per call, want 0", allocs)
	}
}

package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// These tests prove the allocation claims in the doc comments rather than
// stating them. The frame's bytes are the caller's; publishing allocates the
// Frame header only, reading and waiting nothing.

const allocRuns = 1000

var frameBytes = []byte("data: {}\n\n")

func TestPublishAllocatesOnlyTheFrame(t *testing.T) {
	for _, sleepers := range []int{0, 1, 100} {
		r := newRing(t, fanout.Options{Size: 64, Shards: 4})
		_, _ = r.Publish("topic", frameBytes) // creates the topic
		// Subscribers that are asleep make Publish signal their shards.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		for i := range sleepers {
			topics := [][]string{nil, {"topic"}}[i%2]
			sub := subscribe(t, r, topics...)
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
		allocs := testing.AllocsPerRun(allocRuns, func() {
			if _, err := r.Publish("topic", frameBytes); err != nil {
				t.Fatal(err)
			}
		})
		cancel()
		for range sleepers {
			<-done
		}
		if allocs != 1 {
			t.Errorf("Publish with %d subscribers: %v allocations per call, want 1 (the Frame)", sleepers, allocs)
		}
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	for _, topics := range [][]string{nil, {"a", "b"}} {
		r := newRing(t, fanout.Options{Size: 64})
		sub := subscribe(t, r, topics...)
		const perRun = 64 + 8 // more than the ring holds, so Read also takes the lapped path
		batch := make([]*fanout.Frame, 0, 16)
		for i := range perRun { // topics exist before measuring
			_, _ = r.Publish([]string{"a", "b", "c"}[i%3], frameBytes)
		}
		readAll(sub)
		published := testing.AllocsPerRun(allocRuns, func() {
			for i := range perRun {
				_, _ = r.Publish([]string{"a", "b", "c"}[i%3], frameBytes)
			}
		})
		allocs := testing.AllocsPerRun(allocRuns, func() {
			for i := range perRun {
				_, _ = r.Publish([]string{"a", "b", "c"}[i%3], frameBytes)
			}
			for {
				var missed uint64
				batch, missed = sub.Read(batch[:0])
				if len(batch) == 0 && missed == 0 {
					break
				}
			}
		})
		if allocs != published {
			t.Errorf("Read (topics %q): %v allocations per run with publishing, %v for publishing alone; want Read to add none",
				topics, allocs, published)
		}
	}
}

func TestWaitDoesNotAllocate(t *testing.T) {
	r := newRing(t, fanout.Options{Size: 64})
	sub := subscribe(t, r, "a", "b")
	ctx := context.Background()
	_ = sub.Wait(ctx, time.Microsecond) // first call creates the timer
	allocs := testing.AllocsPerRun(100, func() {
		_ = sub.Wait(ctx, time.Microsecond)
	})
	if allocs != 0 {
		t.Errorf("Wait with timeout: %v allocations per call, want 0", allocs)
	}
}

// Package fanout moves immutable byte frames from many publishers to many
// subscribers through one lock-free, lossy ring.
//
// A caller builds each frame once ([NewFrame]) and publishes it
// ([Ring.Publish]); every subscriber then reads that same frame, so the cost of
// serializing a message is paid once, however many subscribers there are.
// The package knows nothing of HTTP, SSE or JSON: a frame is opaque bytes.
//
// # Guarantees
//
//   - Publish never waits for a subscriber, takes no lock, does not allocate,
//     and costs the same with ten thousand subscribers as with none.
//   - Every published frame gets a sequence number, starting at 1. A
//     subscriber sees frames in sequence order; frames published by one
//     goroutine therefore reach it in the order that goroutine published them.
//   - A subscriber that keeps up receives every frame exactly once. One that
//     falls more than the ring's size behind is told exactly how many frames it
//     missed and resumes at the oldest frame still held. It never slows
//     publishers or other subscribers, and memory stays bounded by the ring.
//   - A subscriber with nothing to read sleeps (no spinning) and wakes on the
//     next publish, on [Ring.Close], on its context's cancellation or on its own
//     timeout.
//
// # Typical use
//
//	ring := fanout.New(fanout.Options{Size: 4096})
//	defer ring.Close()
//
//	sub := ring.Subscribe()
//	defer sub.Close()
//	batch := make([]*fanout.Frame, 0, 64)
//	for {
//		var missed uint64
//		batch, missed = sub.Read(batch[:0])
//		// ... write every frame in batch, then flush once ...
//		_ = missed
//		if len(batch) == 0 {
//			if err := sub.Wait(ctx, 15*time.Second); err != nil {
//				// fanout.ErrTimeout: idle; fanout.ErrClosed: the ring is closed.
//			}
//		}
//	}
package fanout

// Package fanout moves immutable byte frames from many publishers to many
// subscribers through one lock-free, lossy ring, with topics.
//
// A publisher reserves a sequence number ([Ring.Reserve]), builds the frame's
// bytes once (they may contain that number: an event id, say) and commits them
// ([Ring.Commit]); every subscriber then reads that same frame, so the cost of
// serializing a message is paid once, however many subscribers there are. A
// publisher that cannot build the bytes gives the number up ([Ring.Abort]).
// Each frame is published on a [Topic] (or broadcast to everyone); a
// subscriber receives every topic or only the ones it names. The package
// knows nothing of HTTP, SSE or JSON: a frame is opaque bytes.
//
// # Guarantees
//
//   - Publishing never waits for a subscriber, takes no lock (but the first
//     time a topic is used), allocates only the Frame, and costs the same
//     with ten thousand subscribers or a thousand topics as with none.
//   - Every frame gets a sequence number, starting at 1, and a key chosen by
//     the publisher (the sequence number by default), strictly increasing with
//     it. A subscriber sees frames in sequence order; frames published by one
//     goroutine therefore reach it in the order that goroutine published
//     them, whatever their topics.
//   - A subscriber that keeps up receives every frame for it exactly once.
//     One that falls more than the ring's size behind is told exactly how many
//     frames for it were missed (see [Subscriber.Read] for the frames a
//     subscriber to some topics cannot count) and resumes at the oldest frame
//     still held. It never slows publishers or other subscribers, and memory
//     stays bounded by the ring: topics share it and hold no frames of their
//     own.
//   - A subscriber with nothing to read sleeps (no spinning) and wakes on the
//     next frame for it (frames of other topics do not wake it), on
//     [Ring.Close], on its context's cancellation or on its own timeout.
//   - A subscriber can start right after a given key ([Ring.SubscribeAfter]),
//     to resume a stream where a client left it.
//   - A subscriber may narrow its topics with a [Filter] on each message's
//     event ([Ring.SubscribeFilter]). Filters are compiled by the publisher's
//     side ([Options].Matcher) and evaluated by Commit once per message for
//     every live filter at once; subscribers with the same filter share that
//     evaluation. A filtered subscriber is woken only by frames it receives,
//     and counts exactly what it misses of them.
//
// # Typical use
//
//	ring := fanout.New(fanout.Options{Size: 4096})
//	defer ring.Close()
//
//	res, err := ring.Reserve("news", 1)
//	// ... build the bytes, using res.Seq() ...
//	ring.Commit(res, fanout.Message{Data: data}) // or ring.Abort(res) if they cannot be built
//
//	sub, err := ring.Subscribe("news")
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

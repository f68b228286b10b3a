package fanout

import (
	"context"
	"time"
)

// Subscriber reads the frames of one [Ring], in sequence order, from the
// position it was created at.
//
// A Subscriber is owned by one goroutine: Read, Wait and Close must not be
// called concurrently with each other. To stop a subscriber from another
// goroutine, cancel the context given to Wait.
type Subscriber struct {
	ring  *Ring
	shard *shard
	wake  chan struct{} // capacity 1; filled by the shard goroutine
	timer *time.Timer   // Wait's timeout, created on first use and reused
	next  uint64        // sequence number of the next frame to read
	total uint64        // frames missed since creation
	// idx is this subscriber's index in shard.sleepers, -1 when it is not
	// registered there. Guarded by shard.mu.
	idx    int
	closed bool
}

// Read appends to dst every frame that is ready, in sequence order, until dst
// is full (len(dst) == cap(dst)), and returns the extended slice. It never
// blocks and does not allocate: give it a dst with spare capacity, and reuse
// it (batch = sub.Read(batch[:0])). The frames are shared and must not be
// modified.
//
// missed is how many frames this subscriber skipped because they had been
// overwritten before it got to them (it fell more than the ring's size
// behind); those came, in sequence, before the frames returned. After a miss
// the subscriber resumes at the oldest frame still held.
func (s *Subscriber) Read(dst []*Frame) (batch []*Frame, missed uint64) {
	r := s.ring
	for len(dst) < cap(dst) {
		f := r.slots[s.next&r.mask].Load()
		if f == nil || f.seq < s.next {
			break // not published yet, or we are caught up
		}
		if f.seq > s.next {
			// Lapped. Everything below the oldest frame still held is gone;
			// oldest > s.next because f.seq >= s.next+size and head >= f.seq.
			oldest := r.oldest(r.head.Load())
			missed += oldest - s.next
			s.next = oldest
			continue
		}
		dst = append(dst, f)
		s.next++
	}
	if missed > 0 {
		s.total += missed
		r.missed.Add(missed)
	}
	return dst, missed
}

// ready reports whether Read would return a frame or a miss.
func (s *Subscriber) ready() bool {
	f := s.ring.slots[s.next&s.ring.mask].Load()
	return f != nil && f.seq >= s.next
}

// Wait blocks until Read has something to return, and then returns nil. It
// returns early with ErrTimeout when timeout (if positive) elapses, with
// ctx.Err() when ctx is done, and with ErrClosed when the ring is closed and
// nothing is left to read. It does not spin and, after the first call with a
// timeout, does not allocate.
func (s *Subscriber) Wait(ctx context.Context, timeout time.Duration) error {
	if s.ready() {
		return nil
	}
	if s.ring.closed.Load() {
		return ErrClosed
	}
	// Register as a sleeper, then look again: a publisher stores its frame
	// before it loads the shard's sleeper count, and we store that count
	// before this second look, so one of us sees the other.
	s.shard.sleep(s)
	if s.ready() {
		return nil
	}

	var expired <-chan time.Time
	if timeout > 0 {
		if s.timer == nil {
			s.timer = time.NewTimer(timeout)
		} else {
			s.timer.Reset(timeout)
		}
		expired = s.timer.C
		// Since Go 1.23 a stopped or reset timer never delivers a stale
		// value, so stopping it is enough to reuse it.
		defer s.timer.Stop()
	}
	select {
	case <-s.wake:
		return nil // possibly spurious (a stale token): the caller reads again
	case <-s.ring.done:
		if s.ready() {
			return nil
		}
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return ErrTimeout
	}
}

// Next returns the sequence number of the next frame the subscriber will
// read.
func (s *Subscriber) Next() uint64 { return s.next }

// Missed returns how many frames this subscriber has missed since it was
// created.
func (s *Subscriber) Missed() uint64 { return s.total }

// Close releases the subscriber. It is idempotent and returns nil.
func (s *Subscriber) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.shard.remove(s)
	if s.timer != nil {
		s.timer.Stop()
	}
	s.ring.subscribers.Add(-1)
	return nil
}

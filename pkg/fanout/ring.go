package fanout

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrClosed is returned by [Ring.Publish] after [Ring.Close], and by
	// [Subscriber.Wait] once the ring is closed and the subscriber has read
	// every frame that was ready.
	ErrClosed = errors.New("fanout: ring closed")
	// ErrTimeout is returned by [Subscriber.Wait] when its timeout elapses
	// before a frame is ready.
	ErrTimeout = errors.New("fanout: wait timed out")
)

// Defaults for [Options].
const (
	DefaultSize   = 4096
	DefaultShards = 16
)

// cacheLine is the false-sharing granule assumed for padding: 64 bytes on
// amd64 and most arm64 cores (Apple's M-series prefetch in pairs, 128, which
// only makes padding less effective there, never incorrect).
const cacheLine = 64

// Options configure a [Ring]. The zero value selects the defaults.
type Options struct {
	// Size is how many frames the ring holds: how far a subscriber may fall
	// behind before it starts missing frames. It is rounded up to a power of
	// two. Memory held is at most Size frames. Default DefaultSize.
	Size int
	// Shards is how many groups subscribers are spread over for sleeping and
	// waking. Each shard has one lock and one waker goroutine, so 10,000
	// sleepers do not contend on one lock, and a publish signals at most
	// Shards goroutines, however many subscribers there are. Default
	// DefaultShards.
	Shards int
}

// Ring is a fixed-size, multi-producer, multi-consumer broadcast ring of
// [Frame]s. Publishing never blocks and never waits for subscribers; a
// subscriber that falls a whole ring behind loses its oldest frames, and only
// it does.
//
// Slot ownership. Frame seq s lives in slot s & mask. Publishers reserve
// sequence numbers with one atomic add on head and then install their frame
// with a compare-and-swap that only ever moves a slot forward (to a larger
// seq). Readers never write slots: they load a slot and compare the frame's
// seq with the seq they want:
//
//	Size = 8, head = 12 (last reserved); 12's publisher has not stored yet
//
//	slot:    0    1    2    3    4    5    6    7
//	seq:     8    9   10   11    4    5    6    7
//
//	a reader wanting next loads slot next&7 and compares its seq:
//	  seq == next  the frame: take it, next++          (next = 5: takes 5)
//	  seq <  next  not stored yet, or caught up: wait  (next = 12: sees 4)
//	  seq >  next  lapped: next .. head-Size are gone; count them as missed
//	               and resume at head-Size+1, the oldest frame still held
//	               (next = 4 once 12 is stored: sees 12, misses 1, goes to 5)
//
// A stored frame is immutable, so one atomic load gives a reader both its seq
// and its bytes: no torn reads.
//
// All methods are safe for concurrent use.
type Ring struct {
	// head is the last reserved sequence number (0: none yet). Publishers
	// write it concurrently, so it sits alone on its cache line.
	_    [cacheLine]byte
	head atomic.Uint64
	_    [cacheLine - 8]byte

	slots  []atomic.Pointer[Frame]
	shards []shard
	done   chan struct{} // closed by Close; wakes every waiter
	wg     sync.WaitGroup
	mask   uint64

	subscribers atomic.Int64  // live subscribers
	missed      atomic.Uint64 // frames missed, summed over subscribers
	nextShard   atomic.Uint32 // round-robin shard assignment
	closed      atomic.Bool
	closeOnce   sync.Once
}

// New returns a ring configured by opts and starts its shard goroutines.
// Call [Ring.Close] to stop them. New panics if opts holds negative values.
func New(opts Options) *Ring {
	if opts.Size < 0 || opts.Shards < 0 {
		panic(fmt.Sprintf("fanout: invalid options %+v", opts))
	}
	size := opts.Size
	if size == 0 {
		size = DefaultSize
	}
	size = 1 << bits.Len(uint(size-1)) // round up to a power of two
	nshards := opts.Shards
	if nshards == 0 {
		nshards = DefaultShards
	}
	r := &Ring{
		slots:  make([]atomic.Pointer[Frame], size),
		shards: make([]shard, nshards),
		done:   make(chan struct{}),
		mask:   uint64(size - 1),
	}
	r.wg.Add(nshards)
	for i := range r.shards {
		sh := &r.shards[i]
		sh.kick = make(chan struct{}, 1)
		go func() {
			defer r.wg.Done()
			sh.run(r.done)
		}()
	}
	return r
}

// Size returns how many frames the ring holds.
func (r *Ring) Size() int { return len(r.slots) }

// Publish assigns f the next sequence number, stores it in the ring, wakes
// sleeping subscribers, and returns the sequence number. It never blocks, takes
// no lock and does not allocate; its cost does not depend on the number of
// subscribers. f must not have been published before and must not be modified
// afterwards. It returns ErrClosed if the ring is closed; a frame published
// concurrently with Close may or may not reach subscribers.
func (r *Ring) Publish(f *Frame) (uint64, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	seq := r.head.Add(1)
	// This plain write happens before the CompareAndSwap below, which
	// publishes it to every reader that loads the slot.
	f.seq = seq
	slot := &r.slots[seq&r.mask]
	for {
		old := slot.Load()
		if old != nil && old.seq > seq {
			// A publisher a whole lap ahead already stored its frame here
			// (we were preempted between the add and now). Storing ours
			// would move the slot backwards; readers count seq as missed.
			break
		}
		if slot.CompareAndSwap(old, f) {
			break
		}
	}
	r.wake()
	return seq, nil
}

// wake signals every shard that has sleepers. The load of each shard's
// sleeper count comes after the slot store above; a subscriber increments that
// count before its last readiness check (see Subscriber.Wait). Both are
// sequentially consistent atomics, so either the publisher sees the sleeper or
// the sleeper sees the frame.
func (r *Ring) wake() {
	for i := range r.shards {
		sh := &r.shards[i]
		if sh.sleeping.Load() > 0 {
			select {
			case sh.kick <- struct{}{}:
			default: // a wake-up is already pending for this shard
			}
		}
	}
}

// Last returns the sequence number of the most recently reserved frame, 0 if
// none. Frames up to Last may still be in the middle of being stored.
func (r *Ring) Last() uint64 { return r.head.Load() }

// oldest returns the smallest sequence number that may still be held, given
// the last reserved one.
func (r *Ring) oldest(last uint64) uint64 {
	size := uint64(len(r.slots))
	if last < size {
		return 1
	}
	return last - size + 1
}

// Subscribers returns the number of subscribers not yet closed.
func (r *Ring) Subscribers() int { return int(r.subscribers.Load()) }

// Missed returns the number of frames subscribers have missed by falling
// behind, summed over all subscribers since the ring was created.
func (r *Ring) Missed() uint64 { return r.missed.Load() }

// Close closes the ring: Publish returns ErrClosed from now on, every
// subscriber's Wait returns ErrClosed once it has read what is ready, and the
// shard goroutines stop before Close returns. Close is idempotent.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.done)
		r.wg.Wait()
	})
	return nil
}

// Done returns a channel closed when the ring is closed.
func (r *Ring) Done() <-chan struct{} { return r.done }

// Subscribe returns a subscriber that receives every frame published from now
// on. The subscriber must be closed when no longer needed.
func (r *Ring) Subscribe() *Subscriber {
	return r.subscribe(r.head.Load() + 1)
}

// SubscribeAfter returns a subscriber that receives the frames published
// after seq: the ones still held first, then new ones. If some frames after
// seq are no longer held, the subscriber's first [Subscriber.Read] reports
// how many. A seq beyond the last published frame (one from before a restart,
// say) is treated like [Ring.Subscribe]. It also returns how many frames after
// seq are already gone, as of the call.
func (r *Ring) SubscribeAfter(seq uint64) (sub *Subscriber, gone uint64) {
	last := r.head.Load()
	next := seq + 1
	if seq >= last {
		next = last + 1
	}
	if oldest := r.oldest(last); next < oldest {
		gone = oldest - next
	}
	return r.subscribe(next), gone
}

func (r *Ring) subscribe(next uint64) *Subscriber {
	i := r.nextShard.Add(1) % uint32(len(r.shards))
	s := &Subscriber{
		ring:  r,
		shard: &r.shards[i],
		next:  next,
		wake:  make(chan struct{}, 1),
		idx:   -1,
	}
	r.subscribers.Add(1)
	return s
}

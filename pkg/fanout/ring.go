package fanout

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrClosed is returned by [Ring.Reserve], [Ring.Publish] and the
	// Subscribe methods after [Ring.Close], and by [Subscriber.Wait] once the
	// ring is closed and the subscriber has read every frame that was ready.
	ErrClosed = errors.New("fanout: ring closed")
	// ErrTimeout is returned by [Subscriber.Wait] when its timeout elapses
	// before a frame is ready.
	ErrTimeout = errors.New("fanout: wait timed out")
	// ErrTooManyTopics is returned by [Ring.Reserve] and the Subscribe
	// methods when a new topic would exceed Options.MaxTopics and no topic
	// can make room: every one alive has a subscriber or a publisher
	// between Reserve and the end of its Commit or Abort (permanent topics
	// aside, which are not counted).
	ErrTooManyTopics = errors.New("fanout: too many topics")
	// ErrInterrupted is returned by [Subscriber.Wait] after
	// [Subscriber.Interrupt].
	ErrInterrupted = errors.New("fanout: wait interrupted")
)

// Defaults for [Options].
const (
	DefaultSize      = 4096
	DefaultShards    = 16
	DefaultMaxTopics = 1000
	DefaultTopicIdle = 2 * time.Minute
)

// Options configure a [Ring]. The zero value selects the defaults.
type Options struct {
	// Size is how many frames the ring holds: how far a subscriber may fall
	// behind before it starts missing frames. It is rounded up to a power of
	// two. Memory held is at most Size frames, whatever the number of topics.
	// Default DefaultSize.
	Size int
	// Shards is how many groups subscribers are spread over for sleeping and
	// waking. Each shard has one waker goroutine, so a publish signals at
	// most Shards goroutines per topic, however many subscribers there are.
	// Default DefaultShards.
	Shards int
	// MaxTopics bounds the number of topics alive at once. Default
	// DefaultMaxTopics.
	MaxTopics int
	// TopicIdle is how long a topic must have had neither subscribers nor
	// frames before its memory is released (between 1 and 1.5 times this).
	// Default DefaultTopicIdle.
	TopicIdle time.Duration
	// Permanent names topics that always exist: created with the ring,
	// never released, and not counted against MaxTopics, so that they are
	// served however many topics others create.
	Permanent []string
	// Matcher compiles filters (see Filter) into a Matcher; it is called
	// each time a distinct filter comes or goes, with every live one, and
	// once per filter with that filter alone. Without it, subscribers
	// cannot have filters.
	Matcher func(filters []Filter) Matcher
	// MaxFilters bounds the number of filter groups alive at once
	// (distinct filters over distinct topics). Default DefaultMaxFilters.
	MaxFilters int
}

// Ring is a fixed-size, multi-producer, multi-consumer broadcast ring of
// [Frame]s, each published on a [Topic]. Publishing never blocks and never
// waits for subscribers; a subscriber that falls a whole ring behind loses
// its oldest frames, and only it does.
//
// Publishing is in two steps so that a frame's bytes can contain its own
// number: [Ring.Reserve] takes the next sequence number, the publisher builds
// the bytes, and [Ring.Commit] stores them. Every reservation must be
// committed, or given up with [Ring.Abort], promptly: subscribers do not read
// past one that is neither.
//
// Slot ownership. Frame seq s lives in slot s & mask. Publishers reserve
// sequence numbers with one atomic add on head and then install their frame
// with a compare-and-swap that only ever moves a slot forward (to a larger
// seq). The sequencer (see sequence) then makes committed frames visible in
// order, advancing visible. Readers never write slots: they read seqs up to
// visible, loading a slot and comparing the frame's seq with the one they
// want:
//
//	Size = 8, head = 12 (last reserved), visible = 11
//
//	slot:    0    1    2    3    4    5    6    7
//	seq:     8    9   10   11    4    5    6    7
//
//	a reader wanting next <= visible loads slot next&7:
//	  seq == next  the frame: take it, next++          (next = 5: takes 5)
//	               (an aborted number's filler: pass it)
//	  seq >  next  lapped: next .. head-Size are gone; count them as missed
//	               and resume at head-Size+1, the oldest frame still held
//	               (next = 4 once 12 is stored: sees 12, misses 1, goes to 5)
//	a reader with next > visible waits              (next = 12)
//
// A stored frame is immutable once visible, so one atomic load gives a reader
// its seq, key, topic position and bytes: no torn reads.
//
// All methods are safe for concurrent use.
type Ring struct {
	// head is the last reserved sequence number (0: none yet). Publishers
	// write it concurrently, so it sits alone on its cache line.
	_    cpu.CacheLinePad
	head atomic.Uint64
	_    cpu.CacheLinePad
	// visible is the last sequence number made visible by the sequencer:
	// every frame up to it is committed and numbered within its topic. Its
	// store publishes those frames to readers; written only by the
	// sequencer, read by every reader.
	visible atomic.Uint64
	_       cpu.CacheLinePad
	// sequencing is held (true) by the one goroutine running the sequencer.
	sequencing atomic.Bool
	nextShard  atomic.Uint32 // round-robin shard assignment (rarely written)
	_          cpu.CacheLinePad

	slots   []atomic.Pointer[Frame]
	shards  []shard
	root    *Topic // the wait sets of subscribers to every topic
	topics  registry
	filters filters
	done    chan struct{} // closed by Close; wakes every waiter
	wg      sync.WaitGroup
	mask    uint64
	opts    Options

	subscribers atomic.Int64 // live subscribers
	// patternSleepers counts the subscribers asleep on a pattern: while it
	// is 0, a frame's topic's patterns cost one load to the sequencer.
	patternSleepers atomic.Int32
	missed          atomic.Uint64 // frames missed, counted by subscribers as they read or close
	missedHigh      atomic.Uint64 // the largest value Missed returned: it never goes back
	closed          atomic.Bool
	closeOnce       sync.Once
}

// New returns a ring configured by opts and starts its goroutines (one per
// shard and a janitor for idle topics). Call [Ring.Close] to stop them. New
// panics if opts holds negative values.
func New(opts Options) *Ring {
	if opts.Size < 0 || opts.Shards < 0 || opts.MaxTopics < 0 || opts.TopicIdle < 0 || opts.MaxFilters < 0 {
		panic(fmt.Sprintf("fanout: invalid options %+v", opts))
	}
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	opts.Size = 1 << bits.Len(uint(opts.Size-1)) // round up to a power of two
	if opts.Shards == 0 {
		opts.Shards = DefaultShards
	}
	if opts.MaxTopics == 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	if opts.TopicIdle == 0 {
		opts.TopicIdle = DefaultTopicIdle
	}
	if opts.MaxFilters == 0 {
		opts.MaxFilters = DefaultMaxFilters
	}
	r := &Ring{
		slots:  make([]atomic.Pointer[Frame], opts.Size),
		shards: make([]shard, opts.Shards),
		done:   make(chan struct{}),
		mask:   uint64(opts.Size - 1),
		opts:   opts,
	}
	r.root = newTopic("", opts.Shards)
	r.filters.init()
	r.topics.head = &r.head
	opts.Permanent = slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(
		slices.Clone(opts.Permanent), func(name string) bool { return name == "" }))))
	r.opts.Permanent = opts.Permanent
	for _, name := range opts.Permanent {
		r.topics.addPermanent(r, name)
	}
	// One pending wake-up per wait set and shard at most: the root's, one
	// per topic, and one per pattern and filter group, which are not
	// bounded by MaxTopics. Released topics may leave one more behind each;
	// twice the topics' bound leaves room for the topics, and a full queue
	// (patterns and groups woken together beyond that) falls back to
	// waking inline.
	queue := 2 * (opts.MaxTopics + len(opts.Permanent) + 1)
	r.wg.Add(opts.Shards + 1)
	for i := range r.shards {
		sh := &r.shards[i]
		sh.queue = make(chan *waitSet, queue)
		go func() {
			defer r.wg.Done()
			sh.run(r.done)
		}()
	}
	go func() {
		defer r.wg.Done()
		r.sweep()
	}()
	return r
}

// Size returns how many frames the ring holds.
func (r *Ring) Size() int { return len(r.slots) }

// Reservation is a run of consecutive sequence numbers taken by
// [Ring.Reserve], to be given exactly once either to [Ring.Commit] or, when
// its frames cannot be built, to [Ring.Abort].
type Reservation struct {
	topic *Topic
	seq   uint64
	n     int
}

// Seq returns the first reserved sequence number.
func (res Reservation) Seq() uint64 { return res.seq }

// Len returns how many sequence numbers are reserved.
func (res Reservation) Len() int { return res.n }

// Reserve takes the next n consecutive sequence numbers for frames on the
// named topic (created if needed; "" publishes broadcast frames that every
// subscriber receives, whatever its topics). Consecutive: no other frame
// comes between them, whoever publishes at the same time. It never blocks,
// takes no lock on the common path (an existing topic) and does not allocate
// there; its cost does not depend on the number of subscribers or topics. The
// reservation must then be committed with Commit, or given up with Abort,
// promptly: subscribers do not read past it until it is. When the topic is
// new and Options.MaxTopics are alive, it takes the place of one without
// subscribers (see Topic). It returns ErrClosed after Close and
// ErrTooManyTopics when no topic can make room. It panics if n < 1.
func (r *Ring) Reserve(topic string, n int) (Reservation, error) {
	if n < 1 {
		panic("fanout: Reserve of fewer than one frame")
	}
	if r.closed.Load() {
		return Reservation{}, ErrClosed
	}
	var t *Topic
	if topic != "" {
		var err error
		if t, err = r.topics.pin(r, topic); err != nil {
			return Reservation{}, err
		}
	}
	last := r.head.Add(uint64(n))
	return Reservation{topic: t, seq: last - uint64(n) + 1, n: n}, nil
}

// Commit stores the reserved frames, one per message, in order, and makes
// them visible to subscribers as soon as every frame reserved before them is
// committed too, waking the subscribers asleep on their topic. It never
// blocks, takes no lock and allocates the Frames only (in one array), but
// while subscribers have filters: it then evaluates each message against
// every live filter at once (one Matcher call), and allocates what a message
// matched.
// Exactly one of Commit and Abort must be called per reservation, once;
// Commit takes res.Len() messages (it panics otherwise). Frames committed
// after Close may or may not reach subscribers.
func (r *Ring) Commit(res Reservation, msgs ...Message) {
	if len(msgs) != res.n {
		panic(fmt.Sprintf("fanout: Commit of %d messages for a reservation of %d", len(msgs), res.n))
	}
	// One allocation for the frames of a batch: they stay in the ring
	// together, and a frame keeps its batch's array alive no longer than
	// the ring holds the batch's last frame.
	frames := make([]Frame, len(msgs))
	fs := r.filters.cur.Load()
	var idx []int // the filters a message matched
	for i := range msgs {
		m := &msgs[i]
		f := &frames[i]
		*f = Frame{data: m.Data, topic: res.topic, seq: res.seq + uint64(i), key: m.Key, stamp: m.Stamp, event: m.Event}
		if f.key == 0 {
			f.key = f.seq
		}
		f.sel = fs.evaluate(f.topic, f.event, f.key, &idx)
		r.store(f)
	}
	r.sequence()
	if res.topic != nil {
		res.topic.unpin()
	}
}

// Abort gives up a reservation whose frames cannot be built (a message that
// fails to serialize, say) instead of committing it. Its numbers are filled
// with frames that no subscriber receives, and subscribers read on past them
// as soon as every number before the next frame is committed or aborted: they
// see a gap in the sequence numbers (and keys), and are told of no miss,
// unless a subscriber to every topic falls a ring behind across them (it
// then counts every number it lost, as Read says, aborted ones included).
// The reservation no longer holds its topic, which may be released once idle.
//
// Exactly one of Commit and Abort must be called per reservation, once;
// Abort of the zero Reservation (that of a failed Reserve) does nothing. Like
// Commit, it never blocks and takes no lock; it allocates once, whatever
// res.Len(). After Close, subscribers may or may not read past the aborted
// numbers.
func (r *Ring) Abort(res Reservation) {
	if res.n == 0 {
		return
	}
	fill := make([]Frame, res.n) // key 0: aborted
	for i := range fill {
		fill[i].seq = res.seq + uint64(i)
		r.store(&fill[i])
	}
	r.sequence()
	if res.topic != nil {
		res.topic.unpin()
	}
}

// store installs f in its slot.
func (r *Ring) store(f *Frame) {
	slot := &r.slots[f.seq&r.mask]
	for {
		old := slot.Load()
		if old != nil && old.seq > f.seq {
			// A publisher a whole lap ahead already stored its frame here
			// (we were preempted between Reserve and now). Storing ours
			// would move the slot backwards; readers count seq as missed.
			return
		}
		if slot.CompareAndSwap(old, f) {
			return
		}
	}
}

// Publish reserves and commits one frame holding data on the named topic,
// with the sequence number as its key, and returns the sequence number. See
// Reserve for the topic and the errors.
func (r *Ring) Publish(topic string, data []byte) (uint64, error) {
	res, err := r.Reserve(topic, 1)
	if err != nil {
		return 0, err
	}
	r.Commit(res, Message{Data: data})
	return res.seq, nil
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

// frameAt returns the visible frame with sequence number seq, or nil if it is
// no longer (or not yet) held.
func (r *Ring) frameAt(seq uint64) *Frame {
	f := r.slots[seq&r.mask].Load()
	if f == nil || f.seq != seq {
		return nil
	}
	return f
}

// heldFrom returns the first frame from seq up to visible that is not an
// aborted number's filler: nil if there is none, or if one before it is no
// longer held.
func (r *Ring) heldFrom(seq, visible uint64) *Frame {
	for ; seq <= visible; seq++ {
		if f := r.frameAt(seq); f == nil || !f.aborted() {
			return f
		}
	}
	return nil
}

// heldBefore returns the last frame before seq, down to first, that is not an
// aborted number's filler: nil if there is none, or if one after it is no
// longer held.
func (r *Ring) heldBefore(seq, first uint64) *Frame {
	for seq > first {
		seq--
		if f := r.frameAt(seq); f == nil || !f.aborted() {
			return f
		}
	}
	return nil
}

// Subscribers returns the number of subscribers not yet closed.
func (r *Ring) Subscribers() int { return int(r.subscribers.Load()) }

// Missed returns the number of frames subscribers have missed by falling
// behind, summed over all subscribers since the ring was created: the misses
// subscribers were told of as they read, what closed subscribers had lost
// without reading that far (see Subscriber.Close), plus, for live subscribers
// to every topic that are too far behind to read them (stuck writing, say),
// the frames already overwritten ahead of them. It never decreases (a
// Prometheus counter): every part is a count of frames definitely lost, and a
// subscriber that reads or closes moves its share from one part to another.
// It walks the live subscribers: call it at a scrape, not per frame.
func (r *Ring) Missed() uint64 {
	n := r.missed.Load()
	// Frames below oldest(visible) are overwritten for sure: the frame a
	// whole ring after each of them is visible, hence stored.
	oldest := r.oldest(r.visible.Load())
	for i := range r.shards {
		n += r.shards[i].behind(oldest)
	}
	// A subscriber that reads or closes while we walk may be counted in
	// neither part: hold on to the largest value seen, which is exact again
	// as soon as it has moved its share.
	for {
		high := r.missedHigh.Load()
		if n <= high {
			return high
		}
		if r.missedHigh.CompareAndSwap(high, n) {
			return n
		}
	}
}

// Topics returns the number of topics alive, permanent ones included.
func (r *Ring) Topics() int { return r.topics.len() + len(r.opts.Permanent) }

// Close closes the ring: Reserve and the Subscribe methods return ErrClosed
// from now on, every subscriber's Wait returns ErrClosed once it has read
// what is visible, and the ring's goroutines stop before Close returns. Close
// is idempotent.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.filters.close()
		close(r.done)
		// Wake every subscriber through its own channel too: a Wait
		// without a context selects on nothing else.
		for i := range r.shards {
			r.shards[i].wakeAll()
		}
		r.wg.Wait()
	})
	return nil
}

// Done returns a channel closed when the ring is closed.
func (r *Ring) Done() <-chan struct{} { return r.done }

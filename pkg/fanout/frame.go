package fanout

// Frame is one immutable message in the ring: the bytes every subscriber
// writes, the topic it was published on, and the numbers that order it.
//
// A Frame is created by [Ring.Commit] and never modified once it is visible
// to subscribers: the ring and all its subscribers share it without copying
// and without locks.
type Frame struct {
	data  []byte
	topic *Topic // nil: a broadcast frame, for every subscriber whatever its topics
	// seq is the frame's position in the ring, written by Commit before the
	// frame is stored in its slot (the slot's compare-and-swap publishes it).
	seq uint64
	// key is the publisher's number for the frame (an event id, say):
	// strictly increasing with seq. Written before the slot store. 0 marks
	// the filler of an aborted number (see Ring.Abort), which no subscriber
	// receives: Commit gives every frame a key of at least 1.
	key uint64
	// tseq is the frame's position among its topic's frames (1, 2, ...),
	// written by the sequencer before it makes the frame visible (the store
	// of Ring.visible publishes it). 0 for broadcast frames.
	tseq uint64
	// stamp is when the publisher accepted the message (Unix nanoseconds),
	// as given to Commit, for latency measurements.
	stamp int64
	// event is Message.Event, what filters are evaluated against.
	event []byte
	// sel is what is known of the frame's filters (see filters): written by
	// Commit, completed by the sequencer before it makes the frame visible.
	// nil: evaluated against no filter.
	sel *selected
}

// aborted reports whether f fills a number given up by Ring.Abort.
func (f *Frame) aborted() bool { return f.key == 0 }

// Bytes returns the frame's bytes. The slice is shared by the publisher and
// every subscriber and must not be modified.
func (f *Frame) Bytes() []byte { return f.data }

// Seq returns the frame's position in the ring: sequence numbers start at 1
// and grow by one per reservation.
func (f *Frame) Seq() uint64 { return f.seq }

// Key returns the publisher's number for the frame, as given to
// [Ring.Commit] (the sequence number when it gave 0).
func (f *Frame) Key() uint64 { return f.key }

// Topic returns the topic the frame was published on, nil for a broadcast
// frame.
func (f *Frame) Topic() *Topic { return f.topic }

// Stamp returns the acceptance time given to [Ring.Commit], in Unix
// nanoseconds (0 if none was given).
func (f *Frame) Stamp() int64 { return f.stamp }

// Message is what a publisher hands to [Ring.Commit].
type Message struct {
	// Data is the frame's bytes. The ring takes ownership: the caller must
	// not modify Data afterwards.
	Data []byte
	// Key is the publisher's number for the frame, used by
	// [Ring.SubscribeAfter] to find where a subscriber resumes. Keys must
	// strictly increase with the reservations' sequence numbers. 0 means
	// "use the sequence number".
	Key uint64
	// Stamp is the acceptance time in Unix nanoseconds; optional.
	Stamp int64
	// Event is what subscribers' filters are evaluated against (see
	// Filter): the message's event, which Data may hold (it may share
	// Data's memory). Optional; the ring takes ownership, as of Data.
	Event []byte
}

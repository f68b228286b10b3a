package fanout

// Frame is one immutable message in the ring: the bytes every subscriber
// writes, and the sequence number the ring gave it.
//
// A Frame is created by [NewFrame], handed to [Ring.Publish] exactly once, and
// never modified afterwards: the ring and all its subscribers share it without
// copying and without locks. The zero Frame is an empty, unpublished frame.
type Frame struct {
	data []byte
	// seq is written by Publish before the frame is stored in its slot (an
	// atomic store, which publishes this write to every reader that loads the
	// slot) and never again. 0 means "not published".
	seq uint64
}

// NewFrame returns a frame holding data. The frame takes ownership of data:
// the caller must not modify data afterwards. It allocates the Frame only; data
// is not copied.
func NewFrame(data []byte) *Frame {
	return &Frame{data: data}
}

// Bytes returns the frame's bytes. The slice is shared by the publisher and
// every subscriber and must not be modified.
func (f *Frame) Bytes() []byte { return f.data }

// Seq returns the sequence number the ring assigned to the frame when it was
// published, or 0 if it has not been published. Sequence numbers start at 1
// and grow by one per published frame.
func (f *Frame) Seq() uint64 { return f.seq }

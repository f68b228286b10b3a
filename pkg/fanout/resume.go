package fanout

// Resume says where [Ring.SubscribeAfter] started a subscriber, relative to
// the key it was given.
type Resume struct {
	// Status is where the key stands against the frames held.
	Status ResumeStatus
	// Oldest is the key of the oldest frame held, when Status is
	// ResumeOlder: the subscriber starts there, and frames with keys after
	// the given key and before Oldest are gone.
	Oldest uint64
}

// ResumeStatus is where a resume key stands against the frames a ring holds.
type ResumeStatus uint8

// Resume statuses.
const (
	// ResumeExact: the key is within the frames held (or is the newest);
	// the subscriber starts right after it and misses nothing.
	ResumeExact ResumeStatus = iota + 1
	// ResumeOlder: the key is older than every frame held; the subscriber
	// starts at the oldest one.
	ResumeOlder
	// ResumeNewer: the key is newer than every frame held, or nothing is
	// held: it is not one this ring gave out (yet). The subscriber starts
	// with the frames published from now on.
	ResumeNewer
)

func (s ResumeStatus) String() string {
	switch s {
	case ResumeExact:
		return "exact"
	case ResumeOlder:
		return "older"
	case ResumeNewer:
		return "newer"
	}
	return "unknown"
}

// SubscribeAfter returns a subscriber, as Subscribe does, that starts right
// after the frame whose key is key: with the frames after it still held, then
// new ones. Resume says whether that was possible (see ResumeStatus); the
// numbers a publisher aborted, which have no key, play no part. Keys increase
// with sequence numbers, so the search is a binary search over the frames
// held: O(log Size) (plus the runs of aborted numbers it meets), no
// allocation beyond the subscriber's.
//
// A subscriber to some topics counts what it misses of each from there (see
// Read).
func (r *Ring) SubscribeAfter(key uint64, topics ...string) (*Subscriber, Resume, error) {
	return r.SubscribeFilterAfter(key, nil, topics...)
}

// SubscribeFilterAfter returns a subscriber with a filter, as SubscribeFilter
// does, that starts after key, as SubscribeAfter does. Frames held that were
// made visible before any subscriber had its filter (and topics) are
// evaluated by this subscriber as it reads them, and what it misses of those
// (falling a ring behind while it reads them) is not counted.
func (r *Ring) SubscribeFilterAfter(key uint64, filter Filter, topics ...string) (*Subscriber, Resume, error) {
	s, err := r.newSubscriber(topics, filter)
	if err != nil {
		return nil, Resume{}, err
	}
	var res Resume
	s.bearings(func(uint64) uint64 {
		var next uint64
		next, res = r.locate(key)
		return next
	})
	return s, res, nil
}

// locate returns the sequence number to start at to read the frames whose key
// is greater than key, and where key stands.
func (r *Ring) locate(key uint64) (next uint64, res Resume) {
	visible := r.visible.Load()
	first := r.oldest(r.head.Load())
	if visible == 0 || first > visible {
		return visible + 1, Resume{Status: ResumeNewer}
	}
	// Binary search for the first seq in [first, visible] whose frame has a
	// key greater than key, aborted numbers (no key) passed over: the first
	// seq at which the last frame held up to it has one. A frame overwritten
	// meanwhile counts as "not greater": it is older than everything still
	// held.
	lo, hi := first, visible+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if f := r.heldBefore(mid+1, first); f == nil || f.key <= key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if f := r.heldBefore(lo, first); f != nil {
		if lo > visible && f.key < key {
			return lo, Resume{Status: ResumeNewer}
		}
		return lo, Resume{Status: ResumeExact}
	}
	// Everything held is newer than key (or what was not moved out while we
	// looked), or nothing but aborted numbers is held.
	oldest := r.heldFrom(lo, visible)
	switch {
	case oldest != nil:
		return lo, Resume{Status: ResumeOlder, Oldest: oldest.key}
	case lo > visible:
		return lo, Resume{Status: ResumeNewer}
	}
	return lo, Resume{Status: ResumeOlder, Oldest: 0}
}

package fanout

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// Subscriber reads the frames of one [Ring], in sequence order, from the
// position it was created at: every frame, or only those of its topics (and
// broadcast frames).
//
// A Subscriber is owned by one goroutine: Read, Wait and Close must not be
// called concurrently with each other. To stop a subscriber from another
// goroutine, cancel the context given to Wait, or call Interrupt.
type Subscriber struct {
	ring     *Ring
	topics   []*Topic // the topics it named; with patterns nil: every topic
	last     []uint64 // per topic: Frame.tseq of the last frame before next
	patterns []*Topic // the patterns it named
	// plast is, per topic one of its patterns matches (but those it named,
	// counted in last), Frame.tseq of the last frame before next; a topic
	// created after the subscriber took its bearings (gen > since) is absent
	// until its first frame: it had none before.
	plast    map[*Topic]*uint64
	prune    int       // the size of plast at which to forget released topics
	since    uint64    // the registry's generation at its bearings
	sleepers []sleeper // one per topic and pattern, or one in the root topic
	wake     chan struct{}
	timer    *time.Timer // Wait's timeout, created on first use and reused
	// pos mirrors next for Ring.Missed, stored at the end of each Read.
	pos   atomic.Uint64
	next  uint64 // sequence number of the next frame to look at
	skip  uint64 // frames with a key up to this one are passed over
	total uint64 // frames missed since creation
	slot  int    // index in its shard's subscriber list; guarded by shard.mu
	shard int
	// group is its filter's group (see filters), nil without a filter.
	group *Topic
	glast uint64 // the mark of the last frame of its group before next
	// filtered counts the frames of its topics its filter turned away.
	filtered uint64
	// interrupted is set by Interrupt, from any goroutine.
	interrupted atomic.Bool
	all         bool // receives every topic
	every       bool // receives every frame: every topic, no filter
	closed      bool
}

// Subscribe returns a subscriber that receives the frames published from now
// on: on the named topics (created if needed) and broadcast frames, or on
// every topic when none is named. A name that is a topic pattern (package
// topic: a valid pattern with a wildcard, "player.*" or "video.>") names
// every topic it matches, existing or created later. The subscriber must be
// closed when no longer needed. A new topic takes the place of one without
// subscribers when Options.MaxTopics are alive (see Topic). It returns
// ErrClosed after Close and ErrTooManyTopics when a named topic is new and
// no topic can make room.
func (r *Ring) Subscribe(topics ...string) (*Subscriber, error) {
	return r.SubscribeFilter(nil, topics...)
}

// SubscribeFilter returns a subscriber, as Subscribe does, that receives only
// the frames its filter selects (see Filter) among those of its topics, and
// broadcast frames; a nil filter selects every frame. It is woken only by a
// frame it receives, and told exactly how many frames for it it missed.
// Subscribers with the same filter and topics share one evaluation of each
// frame (made by Commit). Besides Subscribe's errors, it returns
// ErrTooManyFilters when the filter is new and Options.MaxFilters are alive.
func (r *Ring) SubscribeFilter(filter Filter, topics ...string) (*Subscriber, error) {
	s, err := r.newSubscriber(topics, filter)
	if err != nil {
		return nil, err
	}
	s.bearings(func(v uint64) uint64 { return v + 1 })
	return s, nil
}

// bearings positions s where start says, given the last visible sequence
// number, and takes its bearings with the sequencer role held (and, for a
// subscriber to patterns, the registry's lock, so that no topic is created
// meanwhile): every frame of its topics counted so far, but those at or after
// its start, is one before its start. It makes s live.
func (s *Subscriber) bearings(start func(visible uint64) uint64) {
	r := s.ring
	if len(s.patterns) > 0 {
		r.topics.mu.Lock()
		defer r.topics.mu.Unlock()
		s.since = r.topics.gen
	}
	r.hold()
	defer r.unhold()
	v := r.visible.Load()
	next := start(v)
	for k, t := range s.topics {
		s.last[k] = t.count.Load()
	}
	if s.group != nil {
		s.glast = s.group.count.Load()
	}
	if len(s.patterns) > 0 {
		s.plast = make(map[*Topic]*uint64)
		r.topics.each(func(t *Topic) {
			if s.matches(t.name) && !slices.Contains(s.topics, t) {
				n := t.count.Load()
				s.plast[t] = &n
			}
		})
	}
	// Frames of its topics from next on are not before its start. (Exact
	// unless the ring turns over while it looks: the subscriber is then
	// lapped at once, and may be told of a few frames of its topics fewer
	// than it missed.)
	for seq := next; seq <= v; seq++ {
		if f := r.frameAt(seq); f != nil {
			if want, last, _ := s.place(f, false); want && last != nil && *last > 0 {
				*last--
			}
		}
	}
	s.start(next)
}

// matches reports whether one of s's patterns matches the topic name.
func (s *Subscriber) matches(name string) bool {
	for _, p := range s.patterns {
		if topic.Match(p.name, name) {
			return true
		}
	}
	return false
}

func (r *Ring) newSubscriber(topics []string, filter Filter) (*Subscriber, error) {
	s, err := r.topicSubscriber(topics)
	if err != nil || filter == nil {
		return s, err
	}
	if s.group, err = r.filters.join(r, filter, s); err != nil {
		s.unsubscribe()
		return nil, err
	}
	s.every = false
	// It sleeps on its group only: it is woken by its frames, and the
	// broadcast frames that wake every group.
	s.sleepers = []sleeper{{sub: s, set: &s.group.sets[s.shard], idx: -1}}
	return s, nil
}

// topicSubscriber returns a new subscriber to the named topics, not live yet.
func (r *Ring) topicSubscriber(topics []string) (*Subscriber, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	i := int(r.nextShard.Add(1) % uint32(len(r.shards)))
	s := &Subscriber{ring: r, wake: make(chan struct{}, 1), shard: i, all: len(topics) == 0}
	if s.all {
		s.every = true
		s.sleepers = []sleeper{{sub: s, set: &r.root.sets[i], idx: -1}}
		return s, nil
	}
	for _, name := range topics {
		if isPattern(name) {
			if !slices.ContainsFunc(s.patterns, func(p *Topic) bool { return p.name == name }) {
				s.patterns = append(s.patterns, r.topics.subscribePattern(r, name))
			}
			continue
		}
		if s.index(name) >= 0 {
			continue // named twice
		}
		t, err := r.topics.subscribe(r, name)
		if err != nil {
			s.unsubscribe()
			return nil, err
		}
		s.topics = append(s.topics, t)
	}
	s.last = make([]uint64, len(s.topics))
	s.sleepers = make([]sleeper, 0, len(s.topics)+len(s.patterns))
	for _, t := range slices.Concat(s.topics, s.patterns) {
		s.sleepers = append(s.sleepers, sleeper{sub: s, set: &t.sets[i], idx: -1})
	}
	return s, nil
}

// isPattern reports whether a topic name a subscriber gives is a pattern.
func isPattern(name string) bool { return topic.ValidPattern(name) && topic.IsPattern(name) }

// unsubscribe removes s from its topics, patterns and filter group.
func (s *Subscriber) unsubscribe() {
	for _, t := range slices.Concat(s.topics, s.patterns) {
		s.ring.topics.unsubscribe(t)
	}
	if s.group != nil {
		s.ring.filters.leave(s.ring, s.group)
	}
}

// start positions the subscriber and makes it live. For a subscriber to some
// topics, s.last must hold, per topic, the position among the topic's frames
// of its last frame before next.
func (s *Subscriber) start(next uint64) {
	s.next = next
	s.pos.Store(next)
	s.ring.subscribers.Add(1)
	s.ring.shards[s.shard].add(s)
}

// index returns the position of the topic named name in s.topics, -1 if s
// does not receive it.
func (s *Subscriber) index(name string) int {
	for k, t := range s.topics {
		if t.name == name {
			return k
		}
	}
	return -1
}

// viaPattern is the index wants gives a frame s receives because one of its
// patterns matches the frame's topic.
const viaPattern = -2

// wants returns whether s receives f, and how it counts what it misses of
// f's topic: the index of f's topic in s.topics when f's topic is the very
// topic s subscribed to, viaPattern when one of s's patterns matched it, -1
// when it does not count (every topic; a released topic of the same name).
// Nobody receives an aborted number.
func (s *Subscriber) wants(f *Frame) (want bool, k int) {
	if f.aborted() {
		return false, -1
	}
	if s.all || f.topic == nil {
		return true, -1
	}
	for k, t := range s.topics {
		if f.topic == t {
			return true, k
		}
	}
	if len(s.patterns) > 0 {
		if ps := f.topic.patterns.Load(); ps != nil {
			for _, p := range *ps {
				if slices.Contains(s.patterns, p) {
					return true, viaPattern
				}
			}
		}
	}
	if f.topic.released.Load() {
		return s.index(f.topic.name) >= 0 || s.matches(f.topic.name), -1
	}
	return false, -1
}

// lastOf returns where s keeps the position of the last frame of topic t
// before next, for a frame wants gave k for; nil when s does not count t's
// misses (a topic its pattern matches that was released before it started:
// its frames reach s only if they were in flight, uncounted).
func (s *Subscriber) lastOf(t *Topic, k int) *uint64 {
	switch {
	case k >= 0:
		return &s.last[k]
	case k != viaPattern:
		return nil
	}
	p, ok := s.plast[t]
	if !ok {
		if t.gen <= s.since {
			return nil
		}
		p = new(uint64) // created after s started: none before
		s.plast[t] = p
	}
	return p
}

// place returns whether s receives f, where s keeps the position of the
// last frame before next of the run that counts f's misses (f's topic, or
// s's filter group; nil when s does not count them), and f's position in
// that run. Read (read set) has it evaluate a frame made visible before s's
// group existed, and count the frames of s's topics its filter turns away;
// bearings and lost only look for the frames counted.
func (s *Subscriber) place(f *Frame, read bool) (want bool, last *uint64, pos uint64) {
	if s.group == nil {
		want, k := s.wants(f)
		if !want {
			return false, nil, 0
		}
		return true, s.lastOf(f.topic, k), f.tseq
	}
	if f.aborted() {
		return false, nil, 0
	}
	if f.topic == nil {
		return true, nil, 0 // broadcast
	}
	if f.sel != nil {
		for _, mk := range f.sel.marks {
			if mk.g == s.group {
				return true, &s.glast, mk.n
			}
		}
	}
	if !read {
		return false, nil, 0
	}
	if want, _ := s.wants(f); !want {
		return false, nil, 0
	}
	if f.sel.generation() < s.group.gen && s.group.group.matches(f.event, f.key) {
		return true, nil, 0 // visible before its group existed: not counted
	}
	s.filtered++
	return false, nil, 0
}

// Read appends to dst the frames ready for this subscriber, in sequence
// order, until dst is full (len(dst) == cap(dst)), and returns the extended
// slice. It never blocks and does not allocate: give it a dst with spare
// capacity, and reuse it (batch = sub.Read(batch[:0])). The frames are shared
// and must not be modified.
//
// missed is how many frames for this subscriber it skipped because they had
// been overwritten before it got to them (it fell more than the ring's size
// behind); those came, in sequence, before the frames returned. After a miss
// the subscriber resumes at the oldest frame still held. A subscriber to
// every topic learns of a miss as soon as it reads; a subscriber to some
// topics learns how many frames of a topic it missed at that topic's next
// frame (frames of other topics are never counted). The counts are exact,
// but for two cases: frames overwritten before the ring ever made them
// visible (when the ring turned over entirely while one publisher was stopped
// between Reserve and Commit) are counted for a subscriber to every topic,
// and for no subscriber to some topics (their topic is never known); and
// frames of a released topic of the same name as one of its topics (see
// Topic), or one of its patterns matches that was released before it
// subscribed, which a subscriber to some topics receives, are lost to it
// without a count.
func (s *Subscriber) Read(dst []*Frame) (batch []*Frame, missed uint64) {
	r := s.ring
	visible := r.visible.Load()
	for len(dst) < cap(dst) && s.next <= visible {
		f := r.slots[s.next&r.mask].Load()
		if f.seq != s.next {
			// Lapped (f.seq > s.next: a frame is never older than a visible
			// seq). Everything below the oldest frame still held is gone;
			// oldest > s.next because f.seq >= s.next+size and head >= f.seq.
			if s.every && len(dst) > 0 {
				break // report the miss before the frames after it, at the next Read
			}
			oldest := r.oldest(r.head.Load())
			if s.every {
				missed += oldest - s.next
			}
			s.next = oldest
			continue
		}
		want, last, pos := s.place(f, true)
		if !want {
			s.next++
			continue
		}
		if f.key <= s.skip {
			// The client has it: the topic's next frame must not count it
			// as missed.
			if last != nil {
				*last = pos
			}
			s.next++
			continue
		}
		if last != nil {
			if pos > *last+1 {
				if len(dst) > 0 {
					break // report the miss before this frame, at the next Read
				}
				missed += pos - *last - 1
			}
			*last = pos
		}
		dst = append(dst, f)
		s.next++
	}
	s.pos.Store(s.next)
	if len(s.plast) > s.prune {
		s.forget()
	}
	if missed > 0 {
		s.total += missed
		r.missed.Add(missed)
	}
	return dst, missed
}

// forget removes from plast the released topics whose frames are all
// behind the subscriber: it will meet none of them again, and Close counts
// only the topics alive. So a subscriber to patterns holds a position for
// the topics alive and the few released ones it has not read past, however
// many topics come and go. It runs when plast has doubled since the last
// time: amortized O(1) per topic.
func (s *Subscriber) forget() {
	for t := range s.plast {
		if at := t.releasedAt.Load(); at != 0 && at < s.next {
			delete(s.plast, t)
		}
	}
	s.prune = 2*len(s.plast) + 64
}

// ready reports whether Read may have something to return: a visible frame
// it has not looked at.
func (s *Subscriber) ready() bool { return s.next <= s.ring.visible.Load() }

// Wait blocks until Read may have something to return, and then returns nil
// (Read may then find only frames it skips: other topics' frames for a
// subscriber to some topics, or the numbers a publisher aborted). It returns
// early with ErrTimeout when timeout (if positive) elapses, with ctx.Err()
// when ctx is done, with ErrInterrupted after Interrupt, and with ErrClosed
// when the ring is closed and nothing is left to read. It does not spin and,
// after the first call with a timeout, does not allocate. A context that can
// never be done (context.Background()) makes it cheaper: it then waits on the
// subscriber's own channel and the timer only; use Interrupt to stop it from
// another goroutine.
func (s *Subscriber) Wait(ctx context.Context, timeout time.Duration) error {
	if s.interrupted.Load() {
		return ErrInterrupted
	}
	if s.ready() {
		return nil
	}
	if s.ring.closed.Load() {
		return ErrClosed
	}
	// Register as a sleeper, then look again: the sequencer stores visible
	// before it loads the sleeper counts, and we store those counts before
	// this second look, so one of us sees the other.
	for i := range s.sleepers {
		s.sleepers[i].set.sleep(&s.sleepers[i])
	}
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
	if done := ctx.Done(); done != nil {
		select {
		case <-s.wake:
		case <-s.ring.done:
		case <-done:
			return ctx.Err()
		case <-expired:
			return ErrTimeout
		}
	} else {
		select {
		case <-s.wake: // also sent by Interrupt and Ring.Close
		case <-expired:
			return ErrTimeout
		}
	}
	switch {
	case s.interrupted.Load():
		return ErrInterrupted
	case s.ready():
		return nil
	case s.ring.closed.Load():
		return ErrClosed
	}
	return nil // possibly spurious (a stale token): the caller reads again
}

// Interrupt makes the Wait in progress, or the next one, return
// ErrInterrupted. It is safe to call from any goroutine, any number of
// times; the subscriber's Read still works.
func (s *Subscriber) Interrupt() {
	s.interrupted.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SkipThrough makes the subscriber pass over, without counting them as
// missed, the frames whose key is key or less: those its client already has
// (from another instance further ahead in a shared stream, say). A
// subscriber to every topic that falls a ring behind still counts every
// number it lost, as Read says: the keys of lost frames are lost with them.
func (s *Subscriber) SkipThrough(key uint64) { s.skip = key }

// NextKey returns the key of the next frame the subscriber will look at, if
// that frame is already visible and still held. Aborted numbers, which have
// no key, are passed over.
func (s *Subscriber) NextKey() (uint64, bool) {
	if f := s.ring.heldFrom(s.next, s.ring.visible.Load()); f != nil {
		return f.key, true
	}
	return 0, false
}

// Next returns the sequence number of the next frame the subscriber will
// look at.
func (s *Subscriber) Next() uint64 { return s.next }

// FilteredOut returns how many frames of its topics the subscriber's filter
// turned away since it was created (0 without a filter).
func (s *Subscriber) FilteredOut() uint64 { return s.filtered }

// Missed returns how many frames this subscriber has missed since it was
// created.
func (s *Subscriber) Missed() uint64 { return s.total }

// Behind returns how many visible frames the subscriber has not looked at
// yet (of every topic: an estimate of its lag for a subscriber to some
// topics).
func (s *Subscriber) Behind() uint64 {
	if v := s.ring.visible.Load(); v >= s.next {
		return v - s.next + 1
	}
	return 0
}

// Close releases the subscriber. What it had lost without reading that far,
// the frames for it already overwritten ahead of its position (but those a
// Read would pass over, see SkipThrough), is added to Missed (of the
// subscriber and of the ring): a subscriber stuck writing and then closed is
// accounted for what it missed. For a subscriber to patterns, that is what it
// lost of the topics alive when it closes: a topic its patterns match that
// was released since it subscribed is no longer known to it (it may have met
// none of its frames), and what it lost of that one is not counted, as Read
// tells of it only at a frame of that topic still held. It is idempotent and
// returns nil.
func (s *Subscriber) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var lost uint64
	if !s.every {
		lost = s.lost()
	}
	for i := range s.sleepers {
		s.sleepers[i].set.remove(&s.sleepers[i])
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.unsubscribe()
	// A subscriber to every topic is counted behind by Ring.Missed while it
	// is in its shard: what it lost is counted as it leaves the shard,
	// under the same lock, from a visible position no older than Missed's.
	s.total += s.ring.shards[s.shard].drop(s, lost)
	s.ring.subscribers.Add(-1)
	return nil
}

// lost returns how many frames for the subscriber were overwritten ahead of
// its position: those it would be told it missed at its next Read.
func (s *Subscriber) lost() uint64 {
	r := s.ring
	if s.next >= r.oldest(r.visible.Load()) {
		return 0 // the common case, without the sequencer role
	}
	r.hold()
	defer r.unhold()
	v := r.visible.Load()
	oldest := r.oldest(v)
	if s.next >= oldest {
		return 0
	}
	// Per topic (a subscriber to every topic is counted by shard.drop): the
	// frames between the last one read and the first one still held (or the
	// last one counted, if none is held), unless its client has that one
	// (SkipThrough), and so the frames before it too: Read passes those over
	// without counting them.
	first := make(map[*uint64]uint64)
	for seq := oldest; seq <= v; seq++ {
		f := r.frameAt(seq)
		if f == nil {
			continue // overwritten since: lost too, whatever its topic
		}
		want, last, pos := s.place(f, false)
		if !want {
			continue
		}
		if last != nil {
			if _, ok := first[last]; !ok {
				first[last] = pos
				if f.key <= s.skip {
					first[last] = *last + 1 // none lost
				}
			}
		}
	}
	var n uint64
	count := func(t *Topic, last *uint64) {
		if last == nil {
			return
		}
		end, ok := first[last]
		if !ok {
			end = t.count.Load() + 1
		}
		if end > *last+1 {
			n += end - *last - 1
		}
	}
	if s.group != nil {
		count(s.group, &s.glast) // what it counts: its group's frames
		return n
	}
	for k, t := range s.topics {
		count(t, &s.last[k])
	}
	if len(s.patterns) > 0 {
		r.topics.each(func(t *Topic) {
			// A topic it named and its patterns match is counted once,
			// above: its frames reach it by name.
			if s.matches(t.name) && !slices.Contains(s.topics, t) {
				count(t, s.lastOf(t, viaPattern))
			}
		})
	}
	return n
}

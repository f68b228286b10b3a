package fanout

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// Topic is a named stream of frames within a [Ring]. Subscribers choose the
// topics they receive ([Ring.Subscribe]); a subscriber to some topics is woken
// only by frames of those topics, and when it falls behind it is told exactly
// how many frames of its topics it missed (of those that were ever visible:
// see [Subscriber.Read]), never frames of other topics.
//
// Topics are created on first use and released when they have had neither
// subscribers nor frames for Options.TopicIdle, or at once, when the table is
// full and a new topic needs room, if they have no subscriber (see
// registry.evict); frames still in the ring keep a released topic's name, and
// subscribers to that name receive them. The topics named in
// Options.Permanent are never released.
//
// A subscriber may also name a topic pattern (package topic: "player.*",
// "video.>"): it then receives the frames of every topic the pattern
// matches, existing or created later. A pattern has wait sets as a topic
// has (a Topic with pattern set), and each topic lists the live patterns
// that match it, so that a frame wakes the subscribers of its topic and of
// its topic's patterns, and nobody else.
type Topic struct {
	name string
	sets []waitSet // one per shard: the subscribers asleep on this topic
	// patterns are the live patterns that match this topic (nil for a
	// pattern): replaced whole, under registry.mu, when one is added or
	// removed; read lock-free by the sequencer and by subscribers.
	patterns atomic.Pointer[[]*Topic]
	// gen is the registry's creation count when the topic was created:
	// subscribers to patterns tell topics created after they started by it.
	// Immutable.
	gen uint64
	// pattern is set for a pattern's wait sets: no frame is published on it.
	pattern bool
	// group is set for a filter group's wait sets (see filters): no frame
	// is published on it; count is the frames it matched. Its subs are
	// guarded by filters.mu.
	group *group
	// patternSleepers, for a pattern, is the ring's count of sleepers on
	// every pattern, which sleeping on this one changes too.
	patternSleepers *atomic.Int32
	// count is how many of the topic's frames the sequencer has made
	// visible; the last one's Frame.tseq. Written by the sequencer role's
	// holder only; read by the janitor, the eviction clock and by
	// subscribers holding the sequencer role (then it matches visible).
	count atomic.Uint64
	// pins counts publishers between Reserve and the end of Commit or
	// Abort; a pinned topic is not released.
	pins atomic.Int64

	// Guarded by registry.mu.
	subs      int    // subscribers
	idle      int    // consecutive sweeps without subscribers nor frames
	lastCount uint64 // count at the janitor's previous sweep
	seen      uint64 // count when the eviction clock last passed it
	pos       int    // index in registry.list; -1 for a permanent topic

	// sleeping is the number of sleepers over all of sets: publishers look
	// at it first, so a topic nobody waits on costs one load.
	sleeping atomic.Int32
	// released is set once the topic was removed from the registry; a
	// publisher that pinned it in the meantime looks again.
	released atomic.Bool
	// releasedAt is, once the topic is released for good, the last
	// sequence number reserved then: every frame of the topic has one up to
	// it (none was pinned). 0 while it is live.
	releasedAt atomic.Uint64
}

func newTopic(name string, shards int) *Topic {
	t := &Topic{name: name, sets: make([]waitSet, shards), pos: -1}
	for i := range t.sets {
		t.sets[i].topic = t
	}
	return t
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

func (t *Topic) unpin() { t.pins.Add(-1) }

// registry holds the live topics by name. Lookups are lock-free (sync.Map,
// read-mostly); creation and release take mu.
//
// The topics that can be released are also in list, which counts them
// against Options.MaxTopics. When it is full, a new topic takes the place of
// one without subscribers, chosen by a clock (second chance): the hand skips
// topics with subscribers, and topics that had frames since it last passed
// them (marking them), and releases the first other one. So producers that
// fill the table with topics nobody listens to never lock out listeners, nor
// each other: a full table refuses a new topic only when every topic in it
// has a subscriber (or a publisher in the middle of a Commit or Abort). Each
// creation costs O(1) amortized: the hand moves on from where it stopped.
type registry struct {
	byName   sync.Map // string -> *Topic
	patterns sync.Map // pattern text -> *Topic (with pattern set); written under mu
	mu       sync.Mutex
	list     []*Topic       // guarded by mu; Topic.pos is the index here
	hand     int            // the eviction clock's position in list; guarded by mu
	gen      uint64         // topics created so far; guarded by mu
	head     *atomic.Uint64 // the ring's last reserved sequence number
}

func (g *registry) get(name string) *Topic {
	if v, ok := g.byName.Load(name); ok {
		return v.(*Topic) //nolint:forcetypeassert // only *Topic is stored
	}
	return nil
}

// len returns the number of topics counted against Options.MaxTopics: the
// live ones but the permanent ones.
func (g *registry) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.list)
}

// each calls fn for every live topic.
func (g *registry) each(fn func(*Topic)) {
	g.byName.Range(func(_, v any) bool {
		fn(v.(*Topic)) //nolint:forcetypeassert // only *Topic is stored
		return true
	})
}

// addPermanent creates a topic that is never released and not counted
// against Options.MaxTopics.
func (g *registry) addPermanent(r *Ring, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.get(name) == nil {
		g.byName.Store(name, g.newTopic(r, name))
	}
}

// newTopic returns a new topic with its generation and the live patterns
// that match it. The caller holds mu, and stores it in byName.
func (g *registry) newTopic(r *Ring, name string) *Topic {
	g.gen++
	t := newTopic(name, len(r.shards))
	t.gen = g.gen
	var ps []*Topic
	g.patterns.Range(func(_, v any) bool {
		if p := v.(*Topic); topic.Match(p.name, name) { //nolint:forcetypeassert // only *Topic is stored
			ps = append(ps, p)
		}
		return true
	})
	if ps != nil {
		t.patterns.Store(&ps)
	}
	return t
}

// eachPattern calls fn for every live pattern.
func (g *registry) eachPattern(fn func(*Topic)) {
	g.patterns.Range(func(_, v any) bool {
		fn(v.(*Topic)) //nolint:forcetypeassert // only *Topic is stored
		return true
	})
}

// wakePatterns wakes the sleepers of every live pattern that matches name.
// For the frames of a released topic only: a live topic's frames wake the
// patterns it lists.
func (g *registry) wakePatterns(r *Ring, name string) {
	g.eachPattern(func(p *Topic) {
		if topic.Match(p.name, name) {
			p.wakeSets(r)
		}
	})
}

// subscribePattern returns the live pattern of that text, created if needed
// (and added to the patterns of every live topic it matches), with one more
// subscriber. Patterns are not counted against Options.MaxTopics: they hold
// no frame, and live only while subscribed.
func (g *registry) subscribePattern(r *Ring, text string) *Topic {
	g.mu.Lock()
	defer g.mu.Unlock()
	var p *Topic
	if v, ok := g.patterns.Load(text); ok {
		p = v.(*Topic) //nolint:forcetypeassert // only *Topic is stored
	} else {
		p = newTopic(text, len(r.shards))
		p.pattern = true
		p.patternSleepers = &r.patternSleepers
		g.patterns.Store(text, p)
		g.each(func(t *Topic) {
			if topic.Match(text, t.name) {
				t.setPatterns(append(t.patternList(), p))
			}
		})
	}
	p.subs++
	return p
}

// patternList returns a copy of t's patterns.
func (t *Topic) patternList() []*Topic {
	if ps := t.patterns.Load(); ps != nil {
		return slices.Clone(*ps)
	}
	return nil
}

// setPatterns replaces t's patterns (nil for none).
func (t *Topic) setPatterns(ps []*Topic) {
	if len(ps) == 0 {
		t.patterns.Store(nil)
		return
	}
	t.patterns.Store(&ps)
}

// pin returns the live topic of that name, created if needed, pinned against
// release until the caller unpins it.
func (g *registry) pin(r *Ring, name string) (*Topic, error) {
	for {
		t := g.get(name)
		if t == nil {
			var err error
			if t, err = g.create(r, name, false); err != nil {
				return nil, err
			}
		}
		// Pin, then check that it was not released: release marks a topic
		// released, then checks its pins, so one of the two sees the other.
		t.pins.Add(1)
		if !t.released.Load() {
			return t, nil
		}
		t.unpin()
	}
}

// subscribe returns the live topic of that name, created if needed, with one
// more subscriber.
func (g *registry) subscribe(r *Ring, name string) (*Topic, error) {
	return g.create(r, name, true)
}

// unsubscribe removes a subscriber from t, a topic or a pattern; a pattern
// left without subscribers is removed.
func (g *registry) unsubscribe(t *Topic) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.subs--; t.subs > 0 || !t.pattern {
		return
	}
	g.patterns.Delete(t.name)
	g.each(func(u *Topic) {
		if ps := u.patterns.Load(); ps != nil && slices.Contains(*ps, t) {
			u.setPatterns(slices.DeleteFunc(u.patternList(), func(p *Topic) bool { return p == t }))
		}
	})
}

// create returns the topic of that name, creating it if it does not exist
// (making room if the table is full: see evict), and with one more
// subscriber if sub is set.
func (g *registry) create(r *Ring, name string, sub bool) (*Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.get(name)
	if t == nil {
		if len(g.list) >= r.opts.MaxTopics && !g.evict() {
			return nil, ErrTooManyTopics
		}
		t = g.newTopic(r, name)
		t.pos = len(g.list)
		g.list = append(g.list, t)
		g.byName.Store(name, t)
	}
	if sub {
		t.subs++
		t.idle = 0
	}
	return t, nil
}

// evict releases one topic without subscribers, the least recently used the
// clock finds, and reports whether it found one. The caller holds mu.
func (g *registry) evict() bool {
	// Two turns at most: the first may only mark topics that had frames.
	for range 2 * len(g.list) {
		if g.hand >= len(g.list) {
			g.hand = 0
		}
		t := g.list[g.hand]
		if count := t.count.Load(); t.subs == 0 && count == t.seen && g.release(t) {
			return true // the hand now points at the topic moved into t's place
		}
		t.seen = t.count.Load()
		g.hand++
	}
	return false
}

// release removes t from the registry unless a publisher has it pinned, and
// reports whether it did. The caller holds mu.
func (g *registry) release(t *Topic) bool {
	t.released.Store(true)
	if t.pins.Load() > 0 {
		t.released.Store(false) // a publisher is using it: not idle after all
		return false
	}
	t.releasedAt.Store(g.head.Load())
	g.byName.Delete(t.name)
	last := len(g.list) - 1
	moved := g.list[last]
	g.list[t.pos] = moved
	moved.pos = t.pos
	g.list[last] = nil
	g.list = g.list[:last]
	t.pos = -1
	return true
}

// sweep releases idle topics every half TopicIdle until the ring is closed.
func (r *Ring) sweep() {
	tick := time.NewTicker(r.opts.TopicIdle / 2)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.topics.releaseIdle()
		case <-r.done:
			return
		}
	}
}

// releaseIdle releases the topics that had neither subscribers nor new
// frames for two consecutive sweeps.
func (g *registry) releaseIdle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Backwards: release moves the last topic into the released one's
	// place, and that one was already looked at.
	for i := len(g.list) - 1; i >= 0; i-- {
		t := g.list[i]
		count := t.count.Load()
		if t.subs > 0 || count != t.lastCount {
			t.idle, t.lastCount = 0, count
			continue
		}
		if t.idle++; t.idle < 2 {
			continue
		}
		if !g.release(t) {
			t.idle = 0
		}
	}
}

package fanout

import (
	"sync"
	"sync/atomic"
	"time"
)

// Topic is a named stream of frames within a [Ring]. Subscribers choose the
// topics they receive ([Ring.Subscribe]); a subscriber to some topics is woken
// only by frames of those topics, and when it falls behind it is told exactly
// how many frames of its topics it missed (of those that were ever visible:
// see [Subscriber.Read]), never frames of other topics.
//
// Topics are created on first use and released when they have had neither
// subscribers nor frames for Options.TopicIdle; frames still in the ring keep
// a released topic's name, and subscribers to that name receive them.
type Topic struct {
	name string
	sets []waitSet // one per shard: the subscribers asleep on this topic
	// count is how many of the topic's frames the sequencer has made
	// visible; the last one's Frame.tseq. Written by the sequencer role's
	// holder only, read by the janitor.
	count atomic.Uint64
	// pins counts publishers between Reserve and the end of Commit; a
	// pinned topic is not released.
	pins atomic.Int64

	// Guarded by registry.mu.
	subs      int    // subscribers
	idle      int    // consecutive sweeps without subscribers nor frames
	lastCount uint64 // count at the previous sweep

	// sleeping is the number of sleepers over all of sets: publishers look
	// at it first, so a topic nobody waits on costs one load.
	sleeping atomic.Int32
	// released is set once the janitor has removed the topic from the
	// registry; a publisher that pinned it in the meantime looks again.
	released atomic.Bool
}

func newTopic(name string, shards int) *Topic {
	t := &Topic{name: name, sets: make([]waitSet, shards)}
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
type registry struct {
	byName sync.Map // string -> *Topic
	mu     sync.Mutex
	n      int // topics in byName; guarded by mu
}

func (g *registry) get(name string) *Topic {
	if v, ok := g.byName.Load(name); ok {
		return v.(*Topic) //nolint:forcetypeassert // only *Topic is stored
	}
	return nil
}

func (g *registry) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// each calls fn for every live topic.
func (g *registry) each(fn func(*Topic)) {
	g.byName.Range(func(_, v any) bool {
		fn(v.(*Topic)) //nolint:forcetypeassert // only *Topic is stored
		return true
	})
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
		// Pin, then check that the janitor has not released it: the janitor
		// marks a topic released, then checks its pins, so one of the two
		// sees the other.
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

// unsubscribe removes a subscriber from t.
func (g *registry) unsubscribe(t *Topic) {
	g.mu.Lock()
	t.subs--
	g.mu.Unlock()
}

// create returns the topic of that name, creating it if it does not exist,
// and with one more subscriber if sub is set.
func (g *registry) create(r *Ring, name string, sub bool) (*Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.get(name)
	if t == nil {
		if g.n >= r.opts.MaxTopics {
			return nil, ErrTooManyTopics
		}
		t = newTopic(name, len(r.shards))
		g.byName.Store(name, t)
		g.n++
	}
	if sub {
		t.subs++
		t.idle = 0
	}
	return t, nil
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
	g.byName.Range(func(k, v any) bool {
		t := v.(*Topic) //nolint:forcetypeassert // only *Topic is stored
		count := t.count.Load()
		if t.subs > 0 || count != t.lastCount {
			t.idle, t.lastCount = 0, count
			return true
		}
		if t.idle++; t.idle < 2 {
			return true
		}
		t.released.Store(true)
		if t.pins.Load() > 0 {
			t.released.Store(false) // a publisher is using it: not idle after all
			t.idle = 0
			return true
		}
		g.byName.Delete(k)
		g.n--
		return true
	})
}

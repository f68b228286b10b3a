package fanout

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// Sleeping and waking.
//
// Subscribers are spread over the ring's shards. A subscriber with nothing to
// read registers as a sleeper in one wait set per topic it receives (the
// root topic's for a subscriber to every topic), all in its shard, and then
// blocks on its own one-slot wake channel.
//
// The sequencer, having made frames visible, looks at each concerned topic's
// count of sleepers (one load when nobody sleeps on it) and, for each of its
// wait sets with sleepers and no wake-up pending, queues the set to its
// shard's goroutine (at most one pending wake-up per set, however many frames
// are published). The shard goroutine then wakes every sleeper of the set. So
// the work of waking N subscribers is done by the shard goroutines, never by
// a publisher, and a frame never wakes subscribers of other topics.
//
// No wake-up is lost: a subscriber increments the sleeper counts before its
// last readiness check (a load of Ring.visible), and the sequencer stores
// visible before it loads the sleeper counts. Both are sequentially consistent
// atomics, so either the subscriber sees the frame or the sequencer sees the
// sleeper. A set whose wake-up is pending is woken after that load (the shard
// goroutine clears pending before it takes the set's lock), so it wakes every
// sleeper registered by then.

// waitSet is the sleepers of one topic in one shard.
type waitSet struct {
	waitSetFields
	// Padding to a cache line: the root topic's sets are loaded by every
	// publish and written by every sleeper of their shard.
	_ [(cacheLine - unsafe.Sizeof(waitSetFields{})%cacheLine) % cacheLine]byte
}

const cacheLine = unsafe.Sizeof(cpu.CacheLinePad{})

type waitSetFields struct {
	topic    *Topic
	sleepers []*sleeper // guarded by mu; sleeper.idx is the index here
	// sleeping mirrors len(sleepers); written under mu, read lock-free by
	// the sequencer.
	sleeping atomic.Int32
	// pending is set while the set is queued to its shard's goroutine.
	pending atomic.Bool
	mu      sync.Mutex
}

// sleeper is one subscriber's registration in one wait set.
type sleeper struct {
	sub *Subscriber
	set *waitSet
	idx int // index in set.sleepers, -1 when not registered; guarded by set.mu
}

// sleep registers sl, once: a subscriber whose Wait timed out stays
// registered until the next wake-up or its Close, so repeated timeouts do not
// grow the list.
func (ws *waitSet) sleep(sl *sleeper) {
	ws.mu.Lock()
	if sl.idx < 0 {
		sl.idx = len(ws.sleepers)
		ws.sleepers = append(ws.sleepers, sl)
		ws.sleeping.Store(int32(len(ws.sleepers)))
		ws.topic.addSleepers(1)
	}
	ws.mu.Unlock()
}

// remove unregisters sl if it is registered. O(1): the last sleeper takes
// its place.
func (ws *waitSet) remove(sl *sleeper) {
	ws.mu.Lock()
	if i := sl.idx; i >= 0 {
		last := len(ws.sleepers) - 1
		moved := ws.sleepers[last]
		ws.sleepers[i] = moved
		moved.idx = i
		ws.sleepers[last] = nil
		ws.sleepers = ws.sleepers[:last]
		sl.idx = -1
		ws.sleeping.Store(int32(last))
		ws.topic.addSleepers(-1)
	}
	ws.mu.Unlock()
}

// wakeAll wakes and unregisters every sleeper. The sends cannot block: each
// wake channel has one slot, and a token already in it means the subscriber
// is being woken anyway.
func (ws *waitSet) wakeAll() {
	ws.mu.Lock()
	for i, sl := range ws.sleepers {
		sl.idx = -1
		select {
		case sl.sub.wake <- struct{}{}:
		default:
		}
		ws.sleepers[i] = nil
	}
	if n := len(ws.sleepers); n > 0 {
		ws.topic.addSleepers(-int32(n))
	}
	ws.sleepers = ws.sleepers[:0]
	ws.sleeping.Store(0)
	ws.mu.Unlock()
}

// addSleepers counts n more sleepers (n < 0: fewer) on t, and, for a
// pattern, on every pattern of the ring.
func (t *Topic) addSleepers(n int32) {
	t.sleeping.Add(n)
	if t.patternSleepers != nil {
		t.patternSleepers.Add(n)
	}
}

// wake queues every wait set of t, and of the patterns that match it, that
// has sleepers to its shard's goroutine. It never blocks. While no
// subscriber to a pattern sleeps, the patterns cost one load, however many
// match t.
func (t *Topic) wake(r *Ring) {
	t.wakeSets(r)
	if ps := t.patterns.Load(); ps != nil && r.patternSleepers.Load() > 0 {
		for _, p := range *ps {
			p.wakeSets(r)
		}
	}
}

// wakeSets queues every wait set of t that has sleepers to its shard's
// goroutine.
func (t *Topic) wakeSets(r *Ring) {
	if t.sleeping.Load() == 0 {
		return
	}
	for i := range t.sets {
		ws := &t.sets[i]
		if ws.sleeping.Load() == 0 || !ws.pending.CompareAndSwap(false, true) {
			continue
		}
		select {
		case r.shards[i].queue <- ws:
		default:
			// Queue full (many patterns or filter groups woken at once,
			// which the queue is not sized for, or many topics released
			// with a wake-up pending): wake here rather than lose the
			// wake-up. The publisher that holds the sequencer role pays
			// for it, once per set.
			ws.pending.Store(false)
			ws.wakeAll()
		}
	}
}

// shard is one group of subscribers: the goroutine that wakes their wait
// sets, and the list of its live subscribers (for Ring.Missed).
type shard struct {
	queue chan *waitSet // wait sets to wake; one entry per set at most
	mu    sync.Mutex
	subs  []*Subscriber // guarded by mu; Subscriber.slot is the index here
}

// run wakes the wait sets queued to this shard until done is closed
// (sleepers also watch done themselves, so none is left behind).
func (sh *shard) run(done <-chan struct{}) {
	for {
		select {
		case ws := <-sh.queue:
			ws.pending.Store(false)
			ws.wakeAll()
		case <-done:
			return
		}
	}
}

func (sh *shard) add(s *Subscriber) {
	sh.mu.Lock()
	s.slot = len(sh.subs)
	sh.subs = append(sh.subs, s)
	sh.mu.Unlock()
}

// drop removes s and adds what it lost to the ring's missed count, in one
// critical section, and returns what it lost: lost for a subscriber to some
// topics, and for a subscriber to every topic the frames overwritten ahead of
// it now. Ring.Missed, which walks the shard under its lock, sees those
// frames either ahead of s or in the count.
func (sh *shard) drop(s *Subscriber, lost uint64) uint64 {
	sh.mu.Lock()
	if s.every {
		if oldest := s.ring.oldest(s.ring.visible.Load()); s.next < oldest {
			lost = oldest - s.next
		}
	}
	if lost > 0 {
		s.ring.missed.Add(lost)
	}
	last := len(sh.subs) - 1
	moved := sh.subs[last]
	sh.subs[s.slot] = moved
	moved.slot = s.slot
	sh.subs[last] = nil
	sh.subs = sh.subs[:last]
	sh.mu.Unlock()
	return lost
}

// wakeAll sends every live subscriber of the shard a wake-up.
func (sh *shard) wakeAll() {
	sh.mu.Lock()
	for _, s := range sh.subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	sh.mu.Unlock()
}

// behind returns how many frames this shard's subscribers to every topic
// have already lost without having read far enough to be told: for each,
// the frames between its position and the oldest frame held.
func (sh *shard) behind(oldest uint64) uint64 {
	var n uint64
	sh.mu.Lock()
	for _, s := range sh.subs {
		if pos := s.pos.Load(); s.every && pos < oldest {
			n += oldest - pos
		}
	}
	sh.mu.Unlock()
	return n
}

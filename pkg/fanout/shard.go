package fanout

import (
	"sync"
	"sync/atomic"
)

// shard is one group of subscribers that sleep and wake together.
//
// Publishers only read sleeping and, when it is non-zero, try a non-blocking
// send on kick: at most one pending wake-up per shard, however many
// publishes happen. The shard's goroutine then wakes each sleeper through the
// sleeper's own one-slot channel. So the work of waking N subscribers is done
// by the shard goroutines, never by the publisher, and subscribers in
// different shards never touch the same lock.
type shard struct {
	// sleeping mirrors len(sleepers); written under mu, read lock-free by
	// every publisher. Alone on its cache line: subscribers write it when
	// they go to sleep, publishers read it on every publish.
	_        [cacheLine]byte
	sleeping atomic.Int32
	_        [cacheLine - 4]byte

	kick     chan struct{} // capacity 1: "something was published"
	sleepers []*Subscriber // guarded by mu; Subscriber.idx is its index here
	mu       sync.Mutex
}

// run wakes this shard's sleepers each time a publisher kicks it, until done
// is closed (sleepers also watch done themselves, so none is left behind).
func (sh *shard) run(done <-chan struct{}) {
	for {
		select {
		case <-sh.kick:
			sh.wakeAll()
		case <-done:
			return
		}
	}
}

// sleep registers s as sleeping, once: a subscriber whose Wait timed out
// stays registered until the next wake-up or its Close, so repeated timeouts
// do not grow the list.
func (sh *shard) sleep(s *Subscriber) {
	sh.mu.Lock()
	if s.idx < 0 {
		s.idx = len(sh.sleepers)
		sh.sleepers = append(sh.sleepers, s)
		sh.sleeping.Store(int32(len(sh.sleepers)))
	}
	sh.mu.Unlock()
}

// remove unregisters s if it is sleeping. O(1): the last sleeper takes its
// place.
func (sh *shard) remove(s *Subscriber) {
	sh.mu.Lock()
	if i := s.idx; i >= 0 {
		last := len(sh.sleepers) - 1
		moved := sh.sleepers[last]
		sh.sleepers[i] = moved
		moved.idx = i
		sh.sleepers[last] = nil
		sh.sleepers = sh.sleepers[:last]
		s.idx = -1
		sh.sleeping.Store(int32(last))
	}
	sh.mu.Unlock()
}

// wakeAll wakes and unregisters every sleeper. The sends cannot block: each
// wake channel has one slot, and a token already in it means the subscriber
// is being woken anyway.
func (sh *shard) wakeAll() {
	sh.mu.Lock()
	for i, s := range sh.sleepers {
		s.idx = -1
		select {
		case s.wake <- struct{}{}:
		default:
		}
		sh.sleepers[i] = nil
	}
	sh.sleepers = sh.sleepers[:0]
	sh.sleeping.Store(0)
	sh.mu.Unlock()
}

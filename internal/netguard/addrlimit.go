package netguard

import (
	"hash/maphash"
	"net/netip"
	"sync"

	"golang.org/x/sys/cpu"
)

// shardCount is the number of independently locked parts of an
// AddrLimiter: enough that goroutines working on different addresses rarely
// share a lock on a machine with a few dozen cores.
const shardCount = 64

// shrinkFloor is the size under which a shard's map is never rebuilt: a
// small map costs less to keep than to make again.
const shrinkFloor = 64

// Limiter bounds how many slots (event streams, say) each key holds at once.
// Acquire takes a slot if the key holds fewer than the limit; Release gives
// it back. A limit of 0 turns the limiter off: Acquire always succeeds and
// nothing is counted.
//
// Counts are exact under concurrency: each key's count lives in one of
// several shards, chosen by a hash of the key, each with its own mutex
// (there is no global lock). A key that holds no slot takes no memory: its
// entry is deleted when its count drops to zero, and a shard whose map has
// shrunk to a quarter of its largest size is rebuilt, so the memory taken by
// a burst of distinct keys is given back when they leave.
//
// A Limiter is safe for concurrent use. Its methods do not block beyond a
// shard's short critical section. Acquire allocates only when a shard's map
// grows; Release only when it rebuilds a shrunk map.
type Limiter[K comparable] struct {
	seed   maphash.Seed
	limit  int32
	shards [shardCount]limiterShard[K]
}

// limiterShard is one lock and the counts it guards, padded so that two
// shards' mutexes never share a cache line.
type limiterShard[K comparable] struct {
	_      cpu.CacheLinePad
	counts map[K]int32
	// peak is the largest len(counts) since the map was made.
	peak int
	mu   sync.Mutex
}

// NewLimiter returns a limiter that lets each key hold at most limit slots;
// limit <= 0 turns it off.
func NewLimiter[K comparable](limit int) *Limiter[K] {
	return &Limiter[K]{seed: maphash.MakeSeed(), limit: int32(max(0, min(limit, 1<<31-1)))}
}

// Limit returns the most slots a key may hold, 0 when off.
func (l *Limiter[K]) Limit() int { return int(l.limit) }

// Acquire takes a slot for k and reports true, or reports false, taking
// nothing, when k already holds the limit. Every true must be matched by one
// Release(k). With the limiter off, Acquire reports true and counts nothing.
func (l *Limiter[K]) Acquire(k K) bool {
	if l.limit == 0 {
		return true
	}
	s := l.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counts[k]
	if n >= l.limit {
		return false
	}
	if s.counts == nil {
		s.counts = make(map[K]int32)
	}
	s.counts[k] = n + 1
	s.peak = max(s.peak, len(s.counts))
	return true
}

// Release gives back a slot taken by Acquire(k). Releasing a key that holds
// no slot does nothing (and is a bug in the caller); with the limiter off
// Release does nothing.
func (l *Limiter[K]) Release(k K) {
	if l.limit == 0 {
		return
	}
	s := l.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.counts[k]; n {
	case 0:
		return
	case 1:
		delete(s.counts, k)
		s.shrink()
	default:
		s.counts[k] = n - 1
	}
}

// shrink gives back the memory of a map much smaller than it has been: Go
// maps keep their largest size until dropped.
func (s *limiterShard[K]) shrink() {
	switch n := len(s.counts); {
	case n == 0:
		if s.peak > shrinkFloor {
			s.counts = nil
			s.peak = 0
		}
	case s.peak > shrinkFloor && n <= s.peak/4:
		m := make(map[K]int32, n)
		for k, c := range s.counts {
			m[k] = c
		}
		s.counts, s.peak = m, n
	}
}

// Count returns how many slots k holds now (0 when off).
func (l *Limiter[K]) Count(k K) int {
	if l.limit == 0 {
		return 0
	}
	s := l.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.counts[k])
}

// Len returns how many keys hold at least one slot now. It locks each shard
// in turn, so under concurrent use the total is not a snapshot.
func (l *Limiter[K]) Len() int {
	total := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		total += len(s.counts)
		s.mu.Unlock()
	}
	return total
}

func (l *Limiter[K]) shard(k K) *limiterShard[K] {
	return &l.shards[maphash.Comparable(l.seed, k)%shardCount]
}

// AddrLimiter is a Limiter of client addresses. Clients are counted by their
// address after unmapping and dropping the zone (::ffff:192.0.2.1 and
// 192.0.2.1 are one client), and IPv6 clients by their /64 network: a host
// is commonly given a whole /64, so counting addresses would let one client
// take as many slots as it has addresses. The invalid netip.Addr is counted
// like any other address. It is safe for concurrent use.
type AddrLimiter struct{ l *Limiter[netip.Addr] }

// NewAddrLimiter returns a limiter that lets each client hold at most limit
// slots; limit <= 0 turns it off.
func NewAddrLimiter(limit int) *AddrLimiter { return &AddrLimiter{NewLimiter[netip.Addr](limit)} }

// Limit returns the most slots a client may hold, 0 when off.
func (l *AddrLimiter) Limit() int { return l.l.Limit() }

// Acquire is Limiter.Acquire for a's client.
func (l *AddrLimiter) Acquire(a netip.Addr) bool { return l.l.Acquire(clientKey(a)) }

// Release is Limiter.Release for a's client.
func (l *AddrLimiter) Release(a netip.Addr) { l.l.Release(clientKey(a)) }

// Count returns how many slots a's client (a, or its /64 network) holds now
// (0 when off).
func (l *AddrLimiter) Count(a netip.Addr) int { return l.l.Count(clientKey(a)) }

// Len returns how many clients hold at least one slot now.
func (l *AddrLimiter) Len() int { return l.l.Len() }

// clientKey returns what a is counted as: the address, unmapped and without
// its zone, or for IPv6 its /64 network's first address.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

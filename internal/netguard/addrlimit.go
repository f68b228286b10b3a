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

// AddrLimiter bounds how many slots (event streams, say) each client
// address holds at once. Acquire takes a slot if the address holds fewer
// than the limit; Release gives it back. A limit of 0 turns the limiter off:
// Acquire always succeeds and nothing is counted.
//
// Counts are exact under concurrency: each address's count lives in one of
// several shards, chosen by a hash of the address, each with its own mutex
// (there is no global lock). An address that holds no slot takes no memory:
// its entry is deleted when its count drops to zero, and a shard whose map
// has shrunk to a quarter of its largest size is rebuilt, so the memory
// taken by a burst of distinct addresses is given back when they leave.
//
// Clients are counted by their address after unmapping and dropping the
// zone (::ffff:192.0.2.1 and 192.0.2.1 are one client), and IPv6 clients by
// their /64 network: a host is commonly given a whole /64, so counting
// addresses would let one client take as many slots as it has addresses.
// The invalid netip.Addr is counted like any other address.
//
// An AddrLimiter is safe for concurrent use. Its methods do not block
// beyond a shard's short critical section. Acquire allocates only when a
// shard's map grows; Release only when it rebuilds a shrunk map.
type AddrLimiter struct {
	seed   maphash.Seed
	limit  int32
	shards [shardCount]addrShard
}

// addrShard is one lock and the counts it guards, padded so that two
// shards' mutexes never share a cache line.
type addrShard struct {
	_      cpu.CacheLinePad
	counts map[netip.Addr]int32
	// peak is the largest len(counts) since the map was made.
	peak int
	mu   sync.Mutex
}

// NewAddrLimiter returns a limiter that lets each address hold at most
// limit slots; limit <= 0 turns it off.
func NewAddrLimiter(limit int) *AddrLimiter {
	return &AddrLimiter{seed: maphash.MakeSeed(), limit: int32(max(0, min(limit, 1<<31-1)))}
}

// Limit returns the most slots an address may hold, 0 when off.
func (l *AddrLimiter) Limit() int { return int(l.limit) }

// Acquire takes a slot for a and reports true, or reports false, taking
// nothing, when a already holds the limit. Every true must be matched by one
// Release(a). With the limiter off, Acquire reports true and counts nothing.
func (l *AddrLimiter) Acquire(a netip.Addr) bool {
	if l.limit == 0 {
		return true
	}
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counts[a]
	if n >= l.limit {
		return false
	}
	if s.counts == nil {
		s.counts = make(map[netip.Addr]int32)
	}
	s.counts[a] = n + 1
	s.peak = max(s.peak, len(s.counts))
	return true
}

// Release gives back a slot taken by Acquire(a). Releasing an address that
// holds no slot does nothing (and is a bug in the caller); with the limiter
// off Release does nothing.
func (l *AddrLimiter) Release(a netip.Addr) {
	if l.limit == 0 {
		return
	}
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.counts[a]; n {
	case 0:
		return
	case 1:
		delete(s.counts, a)
		s.shrink()
	default:
		s.counts[a] = n - 1
	}
}

// shrink gives back the memory of a map much smaller than it has been: Go
// maps keep their largest size until dropped.
func (s *addrShard) shrink() {
	switch n := len(s.counts); {
	case n == 0:
		if s.peak > shrinkFloor {
			s.counts = nil
			s.peak = 0
		}
	case s.peak > shrinkFloor && n <= s.peak/4:
		m := make(map[netip.Addr]int32, n)
		for a, c := range s.counts {
			m[a] = c
		}
		s.counts, s.peak = m, n
	}
}

// Count returns how many slots a's client (a, or its /64 network) holds now
// (0 when off).
func (l *AddrLimiter) Count(a netip.Addr) int {
	if l.limit == 0 {
		return 0
	}
	a = clientKey(a)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.counts[a])
}

// Len returns how many addresses hold at least one slot now. It locks each
// shard in turn, so under concurrent use the total is not a snapshot.
func (l *AddrLimiter) Len() int {
	total := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		total += len(s.counts)
		s.mu.Unlock()
	}
	return total
}

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

func (l *AddrLimiter) shard(a netip.Addr) *addrShard {
	return &l.shards[maphash.Comparable(l.seed, a)%shardCount]
}

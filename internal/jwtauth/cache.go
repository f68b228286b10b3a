package jwtauth

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
)

// cache holds verified tokens, keyed by their SHA-256 digest: the tokens
// themselves are not kept, and a lookup's timing tells nothing about them.
// It is a fixed number of shards, each a map and a ring of at most
// perShard entries; a full shard evicts its oldest insertion (FIFO). Only
// tokens that verified are inserted, so invalid tokens cannot evict valid
// ones.
type cache struct {
	shards   []shard
	perShard int
}

type shard struct {
	index  map[[sha256.Size]byte]int
	ring   []entry
	hits   atomic.Uint64
	misses atomic.Uint64
	mu     sync.RWMutex
	next   int      // the ring's oldest entry once it is full
	_      [48]byte // shards on separate cache lines (128 bytes in all on 64-bit)
}

type entry struct {
	grant *Grant
	until int64  // Unix nanoseconds: min(exp, insertion + TTL)
	gen   uint64 // the key generation it was verified under
	key   [sha256.Size]byte
}

// newCache returns a cache of at most size entries: 16 shards when there
// are at least 16 entries per shard, one otherwise.
func newCache(size int) *cache {
	n := 1
	if size >= 16*16 {
		n = 16
	}
	c := &cache{shards: make([]shard, n), perShard: size / n}
	for i := range c.shards {
		c.shards[i].index = make(map[[sha256.Size]byte]int)
	}
	return c
}

func (c *cache) shard(key *[sha256.Size]byte) *shard {
	return &c.shards[int(key[0])%len(c.shards)]
}

// get returns the grant cached for key if it is still valid at now and was
// verified under the key generation gen, or nil.
func (c *cache) get(key *[sha256.Size]byte, now int64, gen uint64) *Grant {
	s := c.shard(key)
	s.mu.RLock()
	var g *Grant
	if i, ok := s.index[*key]; ok {
		if e := &s.ring[i]; e.gen == gen && now < e.until {
			g = e.grant
		}
	}
	s.mu.RUnlock()
	if g == nil {
		s.misses.Add(1)
	} else {
		s.hits.Add(1)
	}
	return g
}

// put caches g for key until the Unix time until (nanoseconds), as
// verified under the key generation gen.
func (c *cache) put(key *[sha256.Size]byte, g *Grant, until int64, gen uint64) {
	e := entry{key: *key, grant: g, until: until, gen: gen}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[*key]; ok {
		s.ring[i] = e
		return
	}
	if len(s.ring) < c.perShard {
		s.index[*key] = len(s.ring)
		s.ring = append(s.ring, e)
		return
	}
	delete(s.index, s.ring[s.next].key)
	s.ring[s.next] = e
	s.index[*key] = s.next
	s.next = (s.next + 1) % len(s.ring)
}

// stats returns the hits, misses and entries of the cache.
func (c *cache) stats() (hits, misses uint64, entries int) {
	for i := range c.shards {
		s := &c.shards[i]
		hits += s.hits.Load()
		misses += s.misses.Load()
		s.mu.RLock()
		entries += len(s.ring)
		s.mu.RUnlock()
	}
	return hits, misses, entries
}

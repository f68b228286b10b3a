package filter

import (
	"math/bits"
	"slices"
	"sync"
)

// Set evaluates many filters at once. It is built by [NewSet] each time the
// live filters change, and is then immutable: safe for concurrent use by any
// number of goroutines, each matching its own events.
//
// Inside, the filters that have the same [Filter.Key] are one unit. Each
// unit with where terms is indexed under one of its paths, its anchor: the
// one whose values the fewest other units share (media.id:urn:1 rather than
// type:error). Each distinct path has a map from the text a field is
// compared with to the units anchored there that accept it. [Set.Match]
// locates the fields of every path in one pass over the event, looks each
// one up in its path's map, and checks the other paths of the units found
// (the sample, then each path's few values). The units of sample-only
// filters are sorted by their threshold, so the ones that keep an event are
// a suffix, found by binary search. So an event costs one pass over it, one
// look-up per distinct path present in it, and a few steps per unit whose
// anchor the event matches: the filters that an event does not concern,
// however many, cost nothing.
type Set struct {
	pool    sync.Pool  // of *scratch, sized for this Set
	nodes   []trieNode // the trie of the paths
	paths   []pathIndex
	units   []unit
	members []int // the indexes of the filters of each unit, by unit
	// The units of the filters with a sample and no where term, by
	// increasing cut, and their cuts.
	sampleUnits []int32
	sampleCuts  []uint64
	n           int   // len(filters) given to NewSet
	every       int32 // the unit of the filters that keep every event, or -1
	sampled     bool  // whether any unit has a sample
}

// pathIndex is one distinct path of a Set.
type pathIndex struct {
	anchors map[string][]int32 // value → the units anchored on this path that accept it
	node    int32              // where the path ends in the trie
}

// unit is the filters of a Set that have the same Key.
type unit struct {
	checks []check // the paths other than the anchor, and their values
	cut    uint64  // the sample's cut (all: no sample)
	lo, hi int32   // the filters' indexes: members[lo:hi], increasing
}

// check is a path that a unit's event must have, with one of the values.
type check struct {
	values []string // increasing (the Filter's)
	path   int32
}

// scratch is the state of one Match call, reused through the Set's pool.
type scratch struct {
	locator
	spans []span   // by path: the text of its field, if marked with this event
	marks []uint64 // by path: the event whose text spans holds
	vals  []byte   // the texts that had escapes, unescaped
	event uint64   // counts the calls that use the scratch
	hits  []int32  // the units that keep the event
	words []uint64 // a bitmap of filter indexes (zero between calls), made when first needed
}

// NewSet returns a Set of the filters. Their indexes in the slice are what
// [Set.Match] reports. Nil entries are allowed and never match (unlike a nil
// *Filter used alone, which keeps everything); the same filter, or equal
// ones, may appear several times, and each index is reported. NewSet costs
// time and memory in proportion to the filters' terms; the Set does not keep
// the slice, but keeps (immutable) parts of the filters.
func NewSet(filters []*Filter) *Set {
	s := &Set{n: len(filters), every: -1, nodes: []trieNode{{parent: -1, path: -1}}}
	reps, indexes := groupByKey(filters)
	s.units = make([]unit, len(reps))
	pathOf := make(map[string]int32)
	shared := make(map[[2]string]int) // {path, value} → the units with that term
	for _, f := range reps {
		for _, p := range f.paths {
			if _, ok := pathOf[p.path]; !ok {
				id := int32(len(s.paths))
				pathOf[p.path] = id
				var node int32
				s.nodes, node = addPath(s.nodes, p.keys, id)
				s.paths = append(s.paths, pathIndex{node: node})
			}
			for _, v := range p.values {
				shared[[2]string{p.path, v}]++
			}
		}
	}
	for u, f := range reps {
		un := &s.units[u]
		un.lo = int32(len(s.members))
		s.members = append(s.members, indexes[u]...)
		un.hi = int32(len(s.members))
		un.cut = all
		if f.sampled {
			un.cut = cut(f.fraction)
			s.sampled = true
		}
		switch {
		case len(f.paths) > 0:
			anchor, best := 0, -1
			for i, p := range f.paths {
				n := 0
				for _, v := range p.values {
					n += shared[[2]string{p.path, v}]
				}
				if best < 0 || n < best {
					anchor, best = i, n
				}
			}
			for i, p := range f.paths {
				id := pathOf[p.path]
				if i != anchor {
					un.checks = append(un.checks, check{values: p.values, path: id})
					continue
				}
				pi := &s.paths[id]
				if pi.anchors == nil {
					pi.anchors = make(map[string][]int32)
				}
				for _, v := range p.values {
					pi.anchors[v] = append(pi.anchors[v], int32(u))
				}
			}
		case f.sampled:
			s.sampleUnits = append(s.sampleUnits, int32(u))
		default:
			s.every = int32(u) // the one Key of filters without terms or sample
		}
	}
	slices.SortStableFunc(s.sampleUnits, func(a, b int32) int {
		return compareUint64(s.units[a].cut, s.units[b].cut)
	})
	s.sampleCuts = make([]uint64, len(s.sampleUnits))
	for i, u := range s.sampleUnits {
		s.sampleCuts[i] = s.units[u].cut
	}
	s.pool.New = func() any {
		return &scratch{
			locator: locator{seen: make([]uint64, len(s.nodes)), recs: make([]record, len(s.paths))},
			spans:   make([]span, len(s.paths)),
			marks:   make([]uint64, len(s.paths)),
		}
	}
	return s
}

// groupByKey returns a filter of each distinct Key among filters (nil
// entries left out), and the indexes of the filters of each, increasing.
func groupByKey(filters []*Filter) (reps []*Filter, indexes [][]int) {
	unitOf := make(map[string]int)
	for i, f := range filters {
		if f == nil {
			continue
		}
		u, ok := unitOf[f.key]
		if !ok {
			u = len(reps)
			unitOf[f.key] = u
			reps = append(reps, f)
			indexes = append(indexes, nil)
		}
		indexes[u] = append(indexes[u], i)
	}
	return reps, indexes
}

func compareUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len returns the number of filters given to NewSet, nil entries included
// (0 for a nil *Set).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Match appends to dst the indexes (into the slice given to [NewSet]), in
// increasing order, of the filters that keep the event with the given id,
// and returns dst, as append does. The event is a JSON object as the server
// stores it (see the package documentation); Match never panics or loops on
// any input, but what it reports for one that is not valid JSON is
// unspecified. Match reads the event once, and keeps neither it nor dst.
//
// Match is safe for concurrent use. It does not allocate once warm, when
// dst has room for the indexes.
func (s *Set) Match(event []byte, id uint64, dst []int) []int {
	if s == nil || len(s.units) == 0 {
		return dst
	}
	sc := s.pool.Get().(*scratch)
	hits := sc.hits[:0]
	if s.every >= 0 {
		hits = append(hits, s.every)
	}
	var pt uint64 // below every cut: kept, when no filter has a sample
	if s.sampled {
		pt = point(id)
		k, _ := slices.BinarySearch(s.sampleCuts, pt+1) // the first cut above pt
		hits = append(hits, s.sampleUnits[k:]...)
	}
	if len(s.paths) > 0 {
		hits = s.matchPaths(event, pt, sc, hits)
	}
	dst = s.appendMembers(dst, hits, sc)
	sc.hits = hits
	s.pool.Put(sc)
	return dst
}

// matchPaths locates the paths' fields in event and appends to hits the
// units with where terms that the event satisfies and whose sample keeps it
// (its point is pt).
func (s *Set) matchPaths(event []byte, pt uint64, sc *scratch, hits []int32) []int32 {
	locate(s.nodes, event, &sc.locator)
	sc.event++
	sc.vals = sc.vals[:0]
	found := sc.touched[:0] // the paths with a text, in place of those touched
	for _, p := range sc.touched {
		if !sc.current(s.nodes, p, s.paths[p].node) {
			continue
		}
		sp, vals, ok := fieldText(event, sc.recs[p], sc.vals)
		sc.vals = vals
		if ok {
			sc.spans[p], sc.marks[p] = sp, sc.event
			found = append(found, p)
		}
	}
	for _, p := range found {
		anchors := s.paths[p].anchors
		if len(anchors) == 0 {
			continue
		}
		for _, u := range anchors[string(sc.spans[p].of(event, sc.vals))] {
			if un := &s.units[u]; pt < un.cut && sc.pass(event, un.checks) {
				hits = append(hits, u)
			}
		}
	}
	return hits
}

// pass reports whether the event has, for each check, a field whose text is
// one of the check's values.
func (sc *scratch) pass(event []byte, checks []check) bool {
	for _, c := range checks {
		if sc.marks[c.path] != sc.event || !contains(c.values, sc.spans[c.path].of(event, sc.vals)) {
			return false
		}
	}
	return true
}

// contains reports whether the increasing values include text.
func contains(values []string, text []byte) bool {
	lo, hi := 0, len(values)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if values[m] < string(text) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(values) && values[lo] == string(text)
}

// appendMembers appends to dst, in increasing order, the indexes of the
// filters of the units in hits (each unit appears once). A few indexes are
// sorted; many are set in a bitmap of all the Set's indexes that is then
// read in order, which costs less than sorting them once they are more than
// a few words of the bitmap.
func (s *Set) appendMembers(dst []int, hits []int32, sc *scratch) []int {
	switch len(hits) {
	case 0:
		return dst
	case 1:
		un := &s.units[hits[0]]
		return append(dst, s.members[un.lo:un.hi]...)
	}
	m := 0
	for _, u := range hits {
		m += int(s.units[u].hi - s.units[u].lo)
	}
	words := (s.n + 63) / 64
	if m <= 8 || 4*m*bits.Len(uint(m)) < words {
		start := len(dst)
		for _, u := range hits {
			dst = append(dst, s.members[s.units[u].lo:s.units[u].hi]...)
		}
		slices.Sort(dst[start:])
		return dst
	}
	if sc.words == nil {
		sc.words = make([]uint64, words)
	}
	for _, u := range hits {
		for _, i := range s.members[s.units[u].lo:s.units[u].hi] {
			sc.words[i>>6] |= 1 << (i & 63)
		}
	}
	dst = slices.Grow(dst, m)
	for w, left := 0, m; left > 0 && w < len(sc.words); w++ { // the words after the last index are 0
		for word := sc.words[w]; word != 0; word &= word - 1 {
			dst = append(dst, w<<6|bits.TrailingZeros64(word))
			left--
		}
		sc.words[w] = 0
	}
	return dst
}

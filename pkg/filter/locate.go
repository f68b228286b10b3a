package filter

import "bytes"

// The locator finds, in one pass over an event, the fields of the paths a
// Set needs. It walks the event's top-level object with a tree of those
// paths (a trie, one node per distinct prefix of keys): a member whose key
// is a child of the current node is followed, its object value scanned
// with that child; any other value is skipped without being looked into.
// Keys are unescaped only when they have a backslash.
//
// "The last occurrence wins" is kept with a clock that ticks at every
// member the trie follows. seen[node] is the tick of the node's latest
// occurrence; a path's record keeps the tick of the occurrence it was read
// from. A record is current when it comes from this event (its tick is
// after the event's first tick) and no key above it occurred again after
// it (every proper ancestor's seen is below the record's tick):
//
//	{"a":{"b":1},"a":{"c":2}}     ticks: a=1 b=2 a=3 c=4
//	a.b: tick 2 < seen[a]=3: stale;   a.c: tick 4 > seen[a]=3: current
//
// The clock of a scratch space is never reset, so nothing has to be
// cleared between events.

// trieNode is a node of the trie of paths; node 0 is the root (the event's
// top-level object).
type trieNode struct {
	children map[string]int32 // unescaped key → node; nil for a leaf
	// The children again, when they are few: comparing a key with each
	// costs less than hashing it.
	keys   []string
	kids   []int32
	parent int32 // -1 for the root
	path   int32 // the path that ends here, or -1
}

// fewChildren is the most children a node looks up in keys.
const fewChildren = 8

// child returns the child of n for an unescaped key.
func (n *trieNode) child(key []byte) (int32, bool) {
	if n.keys != nil {
		for i, k := range n.keys {
			if k == string(key) {
				return n.kids[i], true
			}
		}
		return 0, false
	}
	c, ok := n.children[string(key)]
	return c, ok
}

// record is where a path's field was found in the event.
type record struct {
	tick       uint64
	start, end int // the value: event[start:end]
}

// locator is the per-goroutine state of a pass (part of a scratch).
type locator struct {
	seen    []uint64 // by node
	recs    []record // by path
	touched []int32  // the paths recorded in this event, each once
	buf     []byte   // an unescaped key or value
	clock   uint64
	first   uint64 // the clock before this event
}

// addPath adds a path, given by its keys, to the trie (creating nodes as
// needed), marks its last node as the end of path id, and returns the trie
// and that node.
func addPath(nodes []trieNode, keys []string, id int32) ([]trieNode, int32) {
	n := int32(0)
	for _, k := range keys {
		c, ok := nodes[n].children[k]
		if !ok {
			c = int32(len(nodes))
			if nodes[n].children == nil {
				nodes[n].children = make(map[string]int32, 1)
			}
			nodes[n].children[k] = c
			if len(nodes[n].children) <= fewChildren {
				nodes[n].keys = append(nodes[n].keys, k)
				nodes[n].kids = append(nodes[n].kids, c)
			} else {
				nodes[n].keys, nodes[n].kids = nil, nil
			}
			nodes = append(nodes, trieNode{parent: n, path: -1})
		}
		n = c
	}
	nodes[n].path = id
	return nodes, n
}

// locate records in l the fields of event that the trie's paths lead to.
func locate(nodes []trieNode, event []byte, l *locator) {
	l.first = l.clock
	l.touched = l.touched[:0]
	i := skipSpace(event, 0)
	if i < len(event) && event[i] == '{' {
		l.object(nodes, event, i, 0)
	}
}

// object reads the object that starts at event[i], whose node is n, and
// returns the index just after it, or -1 if it is malformed (the pass then
// stops, keeping what it recorded).
func (l *locator) object(nodes []trieNode, event []byte, i int, n int32) int {
	node := &nodes[n]
	i = skipSpace(event, i+1)
	if i < len(event) && event[i] == '}' {
		return i + 1
	}
	for i < len(event) && event[i] == '"' {
		end, escaped := stringEnd(event, i)
		if end < 0 {
			return -1
		}
		key := event[i+1 : end-1]
		i = skipSpace(event, end)
		if i >= len(event) || event[i] != ':' {
			return -1
		}
		i = skipSpace(event, i+1)
		c, follow := int32(0), false
		if !escaped {
			c, follow = node.child(key)
		} else if buf, ok := appendUnescaped(l.buf[:0], key); ok {
			l.buf = buf
			c, follow = node.child(buf)
		}
		if follow {
			i = l.member(nodes, event, i, c)
		} else {
			i = skipValue(event, i)
		}
		if i < 0 {
			return -1
		}
		i = skipSpace(event, i)
		if i >= len(event) {
			return -1
		}
		switch event[i] {
		case '}':
			return i + 1
		case ',':
			i = skipSpace(event, i+1)
		default:
			return -1
		}
	}
	return -1
}

// member reads the value that starts at event[i], of a member whose key
// is node c, records it if a path ends at c, and returns the index just
// after it, or -1.
func (l *locator) member(nodes []trieNode, event []byte, i int, c int32) int {
	l.clock++
	tick := l.clock
	l.seen[c] = tick
	var end int
	if i < len(event) && event[i] == '{' && nodes[c].children != nil {
		end = l.object(nodes, event, i, c)
	} else {
		end = skipValue(event, i)
	}
	if p := nodes[c].path; p >= 0 && end >= 0 {
		if l.recs[p].tick <= l.first {
			l.touched = append(l.touched, p)
		}
		l.recs[p] = record{tick: tick, start: i, end: end}
	}
	return end
}

// current reports whether the record of path p, which ends at node n, was
// not overridden by a later occurrence of a key above it.
func (l *locator) current(nodes []trieNode, p, n int32) bool {
	tick := l.recs[p].tick
	for a := nodes[n].parent; a > 0; a = nodes[a].parent {
		if l.seen[a] > tick {
			return false
		}
	}
	return true
}

// span is where the text of a field is: event[lo:hi], or vals[lo:hi] for
// a string that had escapes, unescaped into a buffer vals.
type span struct {
	lo, hi    int
	unescaped bool
}

// of returns the text sp locates.
func (sp span) of(event, vals []byte) []byte {
	if sp.unescaped {
		return vals[sp.lo:sp.hi]
	}
	return event[sp.lo:sp.hi]
}

// fieldText returns the span of the text a where value is compared with,
// for the field event[r.start:r.end]: a string's unescaped content, a
// literal's text as it is; false for an object, an array or a malformed
// string. A string with escapes is unescaped at the end of vals, which is
// returned.
func fieldText(event []byte, r record, vals []byte) (span, []byte, bool) {
	switch event[r.start] {
	case '{', '[':
		return span{}, vals, false
	case '"':
		lo, hi := r.start+1, r.end-1
		if hi < lo {
			return span{}, vals, false
		}
		if bytes.IndexByte(event[lo:hi], '\\') < 0 {
			return span{lo: lo, hi: hi}, vals, true
		}
		start := len(vals)
		vals, ok := appendUnescaped(vals, event[lo:hi])
		return span{lo: start, hi: len(vals), unescaped: true}, vals, ok
	}
	return span{lo: r.start, hi: r.end}, vals, true
}

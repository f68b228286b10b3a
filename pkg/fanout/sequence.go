package fanout

import "runtime"

// The sequencer makes committed frames visible, in sequence order, and numbers
// each within its topic.
//
// Publishers reserve sequence numbers concurrently and may commit them out of
// order; readers must see frames in sequence order, and a subscriber to some
// topics must be able to tell exactly how many frames of those topics it
// missed when it falls behind. So a frame becomes visible only once every
// frame before it is committed, and at that moment it is given its position
// in its topic (Frame.tseq): positions then follow sequence order within each
// topic, with no lock between publishers.
//
// There is no sequencer goroutine. After its commit, a publisher tries to take
// the sequencer role (one compare-and-swap); if it gets it, it advances
// visible over every frame committed in order, then gives the role back. If
// another publisher holds the role, it leaves at once: the holder, after
// giving the role back, looks again for a committed frame right after visible
// and takes the role again if there is one. The publisher's slot store comes
// before its failed compare-and-swap, which comes before the holder's release,
// which comes before the holder's look (all sequentially consistent atomics),
// so no committed frame is left invisible.

// sequence runs the sequencer if no other goroutine is running it.
func (r *Ring) sequence() {
	for {
		if !r.sequencing.CompareAndSwap(false, true) {
			return // the holder will see our frame (see above)
		}
		r.advance()
		r.sequencing.Store(false)
		if !r.committedAfter(r.visible.Load()) {
			return
		}
	}
}

// hold takes the sequencer role, waiting for its holder to give it back: until
// unhold, no frame becomes visible, so visible and every topic's count
// describe the same frames. For subscribers taking their bearings; not for
// the publish path.
func (r *Ring) hold() {
	for !r.sequencing.CompareAndSwap(false, true) {
		runtime.Gosched()
	}
}

// unhold gives the sequencer role back and, like a holder that advanced,
// looks for frames committed meanwhile by publishers that found the role
// taken (they left them to the holder: see above).
func (r *Ring) unhold() {
	r.sequencing.Store(false)
	if r.committedAfter(r.visible.Load()) {
		r.sequence()
	}
}

// committedAfter reports whether the frame after seq v is committed (or
// aborted, or its slot already lapped), that is, whether the sequencer has
// work.
func (r *Ring) committedAfter(v uint64) bool {
	f := r.slots[(v+1)&r.mask].Load()
	return f != nil && f.seq > v
}

// advance makes every frame committed in order visible. Only the sequencer
// role's holder calls it.
func (r *Ring) advance() {
	v := r.visible.Load()
	start := v
	var (
		woken     *Topic // the last topic woken in this batch, to skip repeats
		broadcast bool
		marked    bool // a frame matched a filter group
	)
	// Groups joined from now on belong to subscribers that take their
	// bearings after this batch, beyond its frames.
	fs := r.filters.cur.Load()
	for {
		next := v + 1
		f := r.slots[next&r.mask].Load()
		if f == nil || f.seq < next {
			break // not committed yet
		}
		if f.seq > next {
			// Lost: the ring lapped this number before it was visible (its
			// publisher was held up for a whole ring), so nobody will ever
			// read it. Pass this number only: the ones after it may still
			// be in flight, and a number made visible must hold its frame
			// or a later one, never an older one (readers rely on it).
			// Readers count what they lost when they find their slot
			// lapped; a lost frame has no place in its topic (no tseq).
			v = next
			continue
		}
		switch t := f.topic; {
		case f.aborted():
			// Nobody receives it: no place in a topic, nobody to wake.
		case t != nil:
			f.tseq = t.count.Load() + 1
			t.count.Store(f.tseq)
			if f.sel.generation() < fs.gen {
				fs.complete(f) // committed while a group was being created
			}
			if f.sel != nil {
				for i := range f.sel.marks {
					mk := &f.sel.marks[i]
					mk.n = mk.g.count.Load() + 1
					mk.g.count.Store(mk.n)
					marked = true
				}
			}
		default:
			broadcast = true
		}
		v = next
	}
	if v == start {
		return
	}
	// This store publishes the frames and their tseq to readers; wake-ups
	// come after it (see waitSet).
	r.visible.Store(v)
	r.root.wake(r)
	if broadcast {
		r.topics.each(func(t *Topic) { t.wakeSets(r) })
		r.topics.eachPattern(func(p *Topic) { p.wakeSets(r) })
		for _, g := range r.filters.cur.Load().groups {
			if g != nil {
				g.wakeSets(r)
			}
		}
		return
	}
	for seq := start + 1; seq <= v; seq++ {
		f := r.frameAt(seq)
		if f == nil || f.topic == nil {
			continue
		}
		if marked && f.sel != nil {
			for _, mk := range f.sel.marks {
				mk.g.wakeSets(r)
			}
		}
		if f.topic == woken {
			continue
		}
		woken = f.topic
		woken.wake(r)
		if woken.released.Load() {
			// Released while this frame was in flight: subscribers to its
			// name wait on the topic that replaced it, which lists the
			// live patterns that match the name. Without one, subscribers
			// to such a pattern wait on the pattern only, which the
			// released topic may not list (it may have come since).
			if t := r.topics.get(woken.name); t != nil {
				t.wake(r)
			} else if r.patternSleepers.Load() > 0 {
				r.topics.wakePatterns(r, woken.name)
			}
		}
	}
}

package fanout

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing/synctest"
	"time"
)

// The filters of the model test (see model_test.go): in the runs with
// filters, messages carry an event and subscribers may have a filter, on the
// event's letters or on the key's residue (modelFilters). The model restates
// the filters' semantics its own way:
//
//   - A group is the subscribers alive with one filter over the same topic
//     selection (every topic, or the same set of names and patterns, however
//     ordered or repeated); it comes with its first subscriber and goes with
//     its last. One that would exceed MaxFilters is refused, and every filter
//     without a Matcher; the subscriber's topics and patterns are then given
//     back.
//   - Each frame of a topic made visible counts for every group alive then
//     whose topics include its topic (by name: named, all, or matched by a
//     pattern) and whose filter selects it: the group numbers it among its
//     frames. Which filters were alive when it was committed plays no part:
//     a frame committed before a group came and made visible after counts
//     for it.
//   - A subscriber with a filter receives broadcast frames and the frames of
//     its topics its filter selects, and is told, at a frame its group
//     counted, how many of its group's frames it did not get since the last
//     one it read or passed over, or since its start. A frame its filter
//     selects that its group did not count (made visible before the group
//     came, reached by SubscribeFilterAfter) is received uncounted: lost to
//     a lap, nobody is told. A lap tells it nothing by itself.
//   - FilteredOut counts the frames of its topics its filter turned away,
//     among those Read looked at (not those a lap jumped over).
//   - Closed, it counts what it had lost of its group's frames, as a
//     subscriber to some topics does of a topic's.
//
// The live filters are compiled into one Matcher in the background (see
// filters in filter.go), and the model restates when, on the clock of the
// run's synctest bubble, which only moves when the model pauses (opPause):
//
//   - A new group's filter is compiled alone, for the group to be evaluated
//     apart until the next compilation of the live set; a group that goes
//     stays compiled in the set's Matcher (gone) until then.
//   - Every change (a group created or gone) schedules a compilation
//     compileDelay later, unless one is scheduled already; it compiles the
//     live filters if any group is evaluated apart or gone, and nothing if
//     no filter is alive. A group created while maxPending are evaluated
//     apart compiles the live set at once (and schedules nothing).
//   - Commit evaluates the live set's Matcher once per message of a topic
//     while a group is alive and the set has a Matcher (some groups
//     compiled), and each group apart with its own.
//
// Which groups a frame counts for does not depend on any of this.
//
// check compares, besides what the subscribers see, the ring's live filter
// set with the model's groups (each with its subscribers and frame count),
// those compiled and those evaluated apart, the scheduled compilation, the
// groups marked on every frame held, and how many times the ring compiled
// filters and evaluated the live set's Matcher.

// modelFilter is one of the model's filters: the frames whose event holds a
// letter, or whose key is rem modulo mod.
type modelFilter struct {
	name     string
	letter   byte
	mod, rem uint64 // without a letter
}

// modelFilters are the filters subscribers choose from; modelEvents the
// events messages carry ("": none).
var (
	modelFilters = []*modelFilter{
		{name: "x", letter: 'x'},
		{name: "y", letter: 'y'},
		{name: "odd", mod: 2, rem: 1},
		{name: "k3", mod: 3, rem: 0},
	}
	modelEvents = []string{"", "x", "y", "xy"}
)

// selects is the model's evaluation of the filter.
func (mf *modelFilter) selects(f *mFrame) bool {
	if mf.letter != 0 {
		return strings.IndexByte(f.event, mf.letter) >= 0
	}
	return f.key%mf.mod == mf.rem
}

// filter returns the Filter the ring is given for mf.
func (mf *modelFilter) filter() Filter {
	if mf.letter != 0 {
		return letterFilter(mf.letter)
	}
	return residueFilter{mod: mf.mod, rem: mf.rem}
}

// letterFilter and residueFilter are the Filters the model gives the ring,
// evaluated by modelMatcher.
type (
	letterFilter  byte
	residueFilter struct{ mod, rem uint64 }
)

func (l letterFilter) Key() string  { return "letter " + string(rune(l)) }
func (r residueFilter) Key() string { return fmt.Sprintf("key %% %d == %d", r.mod, r.rem) }

// modelMatchers is the ring's Options.Matcher in a run with filters: it
// compiles filters into modelMatchers, and counts the compilations and the
// evaluations of the live filter set's Matcher (Commit's), told apart from
// those of one group's own.
type modelMatchers struct {
	ring     *Ring
	compiles int
	setCalls int
}

// modelMatcher evaluates a list of the model's filters.
type modelMatcher struct {
	mx      *modelMatchers
	filters []Filter
}

func (mx *modelMatchers) compile(filters []Filter) Matcher {
	mx.compiles++
	return &modelMatcher{mx: mx, filters: slices.Clone(filters)}
}

func (mm *modelMatcher) Match(event []byte, key uint64, dst []int) []int {
	if mm.mx.ring.filters.cur.Load().m == Matcher(mm) {
		mm.mx.setCalls++
	}
	for i, f := range mm.filters {
		var ok bool
		switch f := f.(type) {
		case letterFilter:
			ok = bytes.IndexByte(event, byte(f)) >= 0
		case residueFilter:
			ok = key%f.mod == f.rem
		}
		if ok {
			dst = append(dst, i)
		}
	}
	return dst
}

// keys returns the keys of mm's filters.
func (mm *modelMatcher) keys() []string {
	keys := make([]string, len(mm.filters))
	for i, f := range mm.filters {
		keys[i] = f.Key()
	}
	return keys
}

// mGroup is a filter group of the model.
type mGroup struct {
	real     *Topic // the ring's group
	key      string // the model's: filter and topic selection
	filter   *modelFilter
	topics   []string // the topics named, sorted
	patterns []string // the patterns named, sorted
	subs     int
	born     int    // model.gens once it was created
	count    uint64 // the frames it counted
	all      bool
	gone     bool // its last subscriber left
}

// covers reports whether the group's subscribers receive frames of the topic
// name: every topic, a topic they named, or one their patterns match.
func (g *mGroup) covers(name string) bool {
	return g.all || slices.Contains(g.topics, name) ||
		slices.ContainsFunc(g.patterns, func(p string) bool { return matchName(p, name) })
}

// covers is mGroup.covers for s's topics.
func (s *mSub) covers(name string) bool {
	return s.all || slices.ContainsFunc(s.topics, func(t *mTopic) bool { return t.name == name }) || s.matches(name)
}

// chooseFilter returns the filter of a new subscriber, nil for none; only
// with filters.
func (m *model) chooseFilter(c choices) *modelFilter {
	if !m.filters {
		return nil
	}
	if i := c.intn(len(modelFilters) + 1); i > 0 {
		return modelFilters[i-1]
	}
	return nil
}

// chooseEvent returns the event of a message.
func (m *model) chooseEvent(c choices) string { return modelEvents[c.intn(len(modelEvents))] }

// join gives s (its topics taken) the group of filter mf over its topics,
// created if none is alive; or refuses it (without a Matcher, or when
// MaxFilters groups are alive), giving its topics and patterns back.
func (m *model) join(s *mSub, mf *modelFilter) error {
	g := &mGroup{filter: mf, all: s.all, patterns: slices.Sorted(slices.Values(s.patterns))}
	for _, t := range s.topics {
		g.topics = append(g.topics, t.name)
	}
	slices.Sort(g.topics)
	g.key = fmt.Sprintf("%s %v %q %q", mf.name, g.all, g.topics, g.patterns)
	if live := m.groups[g.key]; live != nil {
		m.cover("filter group shared")
		live.subs++
		s.group = live
		return nil
	}
	var err error
	switch {
	case m.matchers == nil:
		m.cover("filter refused (no Matcher)")
		err = errNoMatcher
	case len(m.groups) >= m.maxFilters:
		m.cover("filter refused (too many)")
		err = ErrTooManyFilters
	}
	if err != nil {
		for _, t := range s.topics {
			t.subs--
		}
		m.unsubscribePatterns(s)
		return err
	}
	m.gens++
	g.born, g.subs = m.gens, 1
	m.groups[g.key] = g
	s.group = g
	m.compiles++ // its filter alone
	if len(m.apart) >= maxPending {
		m.cover("filters compiled at once")
		m.apart = append(m.apart, g)
		m.compile()
	} else {
		m.apart = append(m.apart, g)
		m.schedule()
	}
	for seq := m.visible + 1; seq < uint64(len(m.frames)); seq++ {
		if f := m.frames[seq]; f != nil && !f.aborted && f.topic != nil {
			m.cover("group created with a frame in flight")
			break
		}
	}
	return nil
}

// joined checks the ring's group of s, a new subscriber: its group's, the
// first time.
func (m *model) joined(s *mSub) {
	switch g := s.real.group; {
	case g == nil:
		m.fail("%s has no group", s.name)
	case s.group.real == nil:
		s.group.real = g
	case g != s.group.real:
		m.fail("%s joined group %q (%p), want %q (%p)", s.name, g.name, g, s.group.real.name, s.group.real)
	}
}

// leave takes closed subscriber s out of its group, which goes with its last
// subscriber.
func (m *model) leave(s *mSub) {
	g := s.group
	if g == nil {
		return
	}
	if g.subs--; g.subs > 0 {
		return
	}
	m.cover("filter group gone")
	delete(m.groups, g.key)
	g.gone = true
	if i := slices.Index(m.apart, g); i >= 0 {
		m.apart = slices.Delete(m.apart, i, i+1)
	} else {
		m.cover("group gone, still compiled")
	}
	m.schedule()
}

// compile compiles the live filters into the live set's Matcher: the groups
// compiled and apart, but for those gone.
func (m *model) compile() {
	live := slices.DeleteFunc(slices.Concat(m.compiled, m.apart), func(g *mGroup) bool { return g.gone })
	if len(live) > 0 {
		m.compiles++
	}
	m.compiled, m.apart = live, nil
}

// schedule schedules a compilation, unless one is.
func (m *model) schedule() {
	if m.timer || m.closed {
		return
	}
	m.timer, m.timerAt = true, m.now+compileDelay
}

// modelPauses are the times opPause lets pass: short of a compilation
// scheduled at once, to the compilation's time, or well past it.
var modelPauses = []time.Duration{time.Millisecond, compileDelay - time.Millisecond, compileDelay, time.Second}

// pause lets d pass on the bubble's clock: the compilation scheduled for
// then or before runs (compiling only if some group is apart or gone).
func (m *model) pause(d time.Duration) {
	m.op = fmt.Sprintf("pause %v", d)
	time.Sleep(d)
	synctest.Wait() // the compilation due, if any, done
	m.now += d
	if !m.timer || m.timerAt > m.now {
		return
	}
	m.timer = false
	if len(m.apart) > 0 || slices.ContainsFunc(m.compiled, func(g *mGroup) bool { return g.gone }) {
		m.cover("filters compiled in the background")
		m.compile()
		m.op += ": compiled"
	}
}

// markGroups counts frame f (of a topic), made visible, for every group
// alive whose topics include f's and whose filter selects it.
func (m *model) markGroups(f *mFrame) {
	for _, g := range m.groups {
		if !g.covers(f.topic.name) || !g.filter.selects(f) {
			continue
		}
		g.count++
		if f.marks == nil {
			f.marks = map[*mGroup]uint64{}
		}
		f.marks[g] = g.count
		if f.gens < g.born {
			m.cover("frame in flight counted by a group created since")
		}
	}
}

// filterWants is whether s, a subscriber with a filter, receives f, and
// whether its group counted f; it counts in s.filtered a frame of its topics
// its filter turns away.
func (m *model) filterWants(s *mSub, f *mFrame) (want, counted bool) {
	switch {
	case f.aborted:
		return false, false
	case f.topic == nil:
		m.cover("broadcast to a filtered subscriber")
		return true, false
	case !s.covers(f.topic.name):
		return false, false
	case !s.group.filter.selects(f):
		m.cover("filtered out")
		s.filtered++
		return false, false
	}
	if _, ok := f.marks[s.group]; ok {
		return true, true
	}
	m.cover("frame visible before its group")
	return true, false
}

// readFiltered is readModel's step at frame f, held, for a subscriber with a
// filter; it reports whether the Read stops before f (to tell of a miss
// first).
func (m *model) readFiltered(s *mSub, f *mFrame, got *[]*mFrame, missed *uint64) (stop bool) {
	want, counted := m.filterWants(s, f)
	if !want {
		s.next++
		return false
	}
	if f.key <= s.skip {
		if counted {
			m.cover("skip (filter)")
			s.gref = f.seq
		}
		s.next++
		return false
	}
	if counted {
		if n := m.groupFrames(s.group, s.gref+1, f.seq-1); n > 0 {
			if len(*got) > 0 {
				m.cover("filter miss stops a batch")
				return true
			}
			m.cover("filter miss told")
			if s.gref < s.start {
				m.cover("filter miss from the start")
			}
			*missed += n
		}
		s.gref = f.seq
		switch {
		case s.all:
			m.cover("frame via a filter (every topic)")
		case !slices.ContainsFunc(s.topics, func(t *mTopic) bool { return t.name == f.topic.name }):
			m.cover("frame via a filter (pattern)")
		default:
			m.cover("frame via a filter")
		}
	}
	*got = append(*got, f)
	s.next++
	return false
}

// lapFiltered notes what a lap of s, a subscriber with a filter, jumps over:
// frames its filter selects that its group did not count are lost to it
// without a count.
func (m *model) lapFiltered(s *mSub) {
	m.cover("lap (filter)")
	for seq := s.next; seq < m.oldest(); seq++ {
		f := m.frames[seq]
		if f == nil || f.tseq == 0 || !s.covers(f.topic.name) || !s.group.filter.selects(f) {
			continue // never visible (or aborted, or broadcast), or not for s
		}
		if _, ok := f.marks[s.group]; !ok {
			m.cover("frame visible before its group, lost uncounted")
		}
	}
}

// groupFrames returns how many frames among sequence numbers from .. to
// group g counted.
func (m *model) groupFrames(g *mGroup, from, to uint64) uint64 {
	var n uint64
	for seq := from; seq <= to; seq++ {
		if f := m.frames[seq]; f != nil {
			if _, ok := f.marks[g]; ok {
				n++
			}
		}
	}
	return n
}

// lostOfGroup is, for a subscriber s with a filter that is behind, what it
// lost of its group's frames: those after the ones accounted for that are no
// longer held, up to the first one that is, unless that one is passed over
// with SkipThrough.
func (m *model) lostOfGroup(s *mSub) uint64 {
	var gone uint64
	for seq := s.gref + 1; seq <= m.visible; seq++ {
		f := m.frames[seq]
		if f == nil {
			continue // a lost number, never committed
		}
		if _, ok := f.marks[s.group]; !ok {
			continue
		}
		if m.held(seq) {
			if f.key <= s.skip && gone > 0 {
				m.cover("no loss before a skipped frame")
				gone = 0
			}
			break
		}
		gone++
	}
	return gone
}

// inFlight runs opInFlight: a reservation on one topic holds back a frame
// committed on another after it; a subscriber comes meanwhile (with a
// filter, a new group often); then the reservation is committed (evaluated
// against the filters alive now) or aborted, and the held frame (evaluated
// against the filters alive before the subscriber came) becomes visible
// with it, unless a reservation before them is still pending.
func (m *model) inFlight(c choices) {
	var ops []string
	defer func() { m.op = "in flight: " + strings.Join(ops, "; ") }()
	name := m.pubNames[c.intn(len(m.pubNames))]
	m.op = fmt.Sprintf("Reserve(%q, 1)", name)
	res, err := m.ring.Reserve(name, 1)
	t, ok := m.reserved(name, 1, res.Seq(), err)
	ops = append(ops, fmt.Sprintf("%s = %d, %v", m.op, res.Seq(), err))
	if !ok {
		return
	}
	hole := mPending{topic: t, res: res}
	m.publish(m.pubNames[c.intn(len(m.pubNames))], 1, c)
	ops = append(ops, m.op)
	after := c.intn(2) == 1
	var key uint64
	if after {
		key = m.chooseKey(c)
	}
	names := m.chooseTopics(c)
	m.subscribe(names, after, key, m.chooseFilter(c))
	ops = append(ops, m.op)
	if c.intn(2) == 0 {
		m.commit(hole, c, nil)
	} else {
		m.abort(hole)
	}
	ops = append(ops, m.op)
}

// checkFilters compares the ring's filters with the model's: the live
// groups (Filters, and the live filter set: each group's subscribers,
// filter, topics and frame count, in creation order, the set's Matcher over
// their filters), the groups marked on every frame held, the compilations
// and evaluations, and each subscriber's FilteredOut.
func (m *model) checkFilters() {
	m.t.Helper()
	r := m.ring
	subs := map[*mGroup]int{}
	for _, s := range m.subs {
		if s.group != nil {
			subs[s.group]++
		}
	}
	if len(subs) != len(m.groups) {
		m.fail("model: %d groups among the subscribers, %d alive", len(subs), len(m.groups))
	}
	for _, g := range m.groups {
		if subs[g] != g.subs {
			m.fail("model: group %s has %d subscribers, counts %d", g.key, subs[g], g.subs)
		}
	}
	if got := r.Filters(); got != len(m.groups) {
		m.fail("Filters %d, want %d", got, len(m.groups))
	}
	live := slices.SortedFunc(maps.Values(m.groups), func(a, b *mGroup) int { return cmp.Compare(a.born, b.born) })
	// The compilations run in the background, under the filters' lock.
	r.filters.mu.Lock()
	defer r.filters.mu.Unlock()
	if mx := m.matchers; mx != nil && (mx.compiles != m.compiles || mx.setCalls != m.evals) {
		m.fail("%d compilations, %d evaluations of the live filters; want %d, %d", mx.compiles, mx.setCalls, m.compiles, m.evals)
	}
	if timer := r.filters.timer != nil; timer != m.timer {
		m.fail("a compilation scheduled: %v, want %v (at %v, now %v)", timer, m.timer, m.timerAt, m.now)
	}
	fs := r.filters.cur.Load()
	set := slices.Concat(m.compiled, m.apart)
	if len(fs.groups) != len(set) || fs.nbase != len(m.compiled) || fs.live != len(live) || len(r.filters.byKey) != len(live) {
		m.fail("%d groups in the filter set (%d compiled, %d live), %d registered; want %d (%d, %d)",
			len(fs.groups), fs.nbase, fs.live, len(r.filters.byKey), len(set), len(m.compiled), len(live))
	}
	var alive []*Topic
	for i, g := range set {
		if t := fs.groups[i]; g.gone != (t == nil) || !g.gone && t != g.real {
			m.fail("group %d of the filter set: %p, want %s: %p (gone %v)", i, t, g.key, g.real, g.gone)
		}
		if !g.gone {
			alive = append(alive, fs.groups[i])
		}
	}
	keys := make([]string, len(m.compiled))
	for i, g := range m.compiled {
		keys[i] = g.filter.filter().Key()
	}
	for i, g := range live {
		t := alive[i]
		key := g.filter.filter().Key()
		if t != g.real || t.subs != g.subs || t.count.Load() != g.count || r.filters.byKey[t.name] != t {
			m.fail("group %d of the filter set: %p, %d subscribers, count %d, registered %v; want %s: %p, %d, %d",
				i, t, t.subs, t.count.Load(), r.filters.byKey[t.name] == t, g.key, g.real, g.subs, g.count)
		}
		own, _ := t.group.own.(*modelMatcher)
		if t.group.filter.Key() != key || t.group.all != g.all ||
			!slices.Equal(slices.Sorted(slices.Values(t.group.topics)), g.topics) ||
			!slices.Equal(slices.Sorted(slices.Values(t.group.pats)), g.patterns) ||
			own == nil || !slices.Equal(own.keys(), []string{key}) {
			m.fail("group %s: filter %q, all %v, topics %q, patterns %q, own %v", g.key,
				t.group.filter.Key(), t.group.all, t.group.topics, t.group.pats, own)
		}
	}
	if set, _ := fs.m.(*modelMatcher); (fs.m == nil) != (len(keys) == 0) || fs.m != nil && (set == nil || !slices.Equal(set.keys(), keys)) {
		m.fail("the filter set's Matcher is %v, want one of %q", fs.m, keys)
	}
	for seq := m.oldest(); seq <= m.visible; seq++ {
		mf := m.frames[seq]
		if !m.held(seq) || mf.aborted || mf.topic == nil {
			continue
		}
		got := map[*Topic]uint64{}
		if sel := r.frameAt(seq).sel; sel != nil {
			for _, mk := range sel.marks {
				if _, dup := got[mk.g]; dup {
					m.fail("frame %v marks group %q twice", mf, mk.g.name)
				}
				got[mk.g] = mk.n
			}
		}
		for _, g := range live {
			n, ok := got[g.real]
			if wn, wok := mf.marks[g]; ok != wok || n != wn {
				m.fail("frame %v: group %s marked %v (%d), want %v (%d)", mf, g.key, ok, n, wok, wn)
			}
		}
	}
	for _, s := range m.subs {
		if got := s.real.FilteredOut(); got != s.filtered {
			m.fail("%s.FilteredOut %d, want %d", s.name, got, s.filtered)
		}
	}
}

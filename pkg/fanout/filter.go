package fanout

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// Filters.
//
// A subscriber may narrow what its topics give it with a [Filter]: a
// predicate on each message's event (Message.Event) and key, that the
// publisher's side defines (the ring only sees its key) and compiles, with
// every other live filter, into one [Matcher] (Options.Matcher). Commit runs
// that Matcher once per message, for every live filter at once.
//
// Subscribers with the same filter and the same topics share one group: a
// Topic with a filter (Topic.group), which holds their wait sets and counts
// the frames it matched. Commit records on each frame the groups it matches
// (Frame.sel's marks); the sequencer numbers each mark within its group, as it
// numbers a frame within its topic (tseq), and wakes those groups only. So a
// filtered subscriber sleeps until a frame for it is visible, is told exactly
// how many frames for it it missed, and costs publishers one evaluation per
// message for all of its group, however many subscribers share it.
//
// The live groups are one immutable filterSet, replaced whole when a group
// comes or goes, with a generation (groups created so far): a frame records
// the generation it was evaluated against, so a group created later knows the
// frame did not consider it. No frame made visible after a group's subscriber
// took its bearings is left unconsidered: before making such a frame visible,
// the sequencer evaluates the groups created since (each with its own
// one-filter Matcher: rare, only frames in flight while a group is created).
// Frames made visible before their group existed, which a subscriber resuming
// with SubscribeFilterAfter reads, are evaluated by that subscriber itself;
// what it misses of those is not counted.

// ErrTooManyFilters is returned by the SubscribeFilter methods when a new
// filter would exceed Options.MaxFilters.
var ErrTooManyFilters = errors.New("fanout: too many filters")

// errNoMatcher is returned by the SubscribeFilter methods of a ring created
// without Options.Matcher.
var errNoMatcher = errors.New("fanout: filter given to a ring without Options.Matcher")

// Filter selects, among the frames of a subscriber's topics, those it
// receives. The ring never looks inside one: Options.Matcher compiles filters
// and evaluates them.
type Filter interface {
	// Key identifies the filter: two filters with the same key select the
	// same frames, and subscribers with the same key and the same topics
	// share one evaluation per frame.
	Key() string
}

// Matcher evaluates a list of filters against one message: Match appends to
// dst the indexes, in that list, of the filters the message matches (event is
// Message.Event, key the frame's key), and returns dst. It must be safe for
// concurrent use, and should cost the same however many filters do not match:
// Commit calls it once per message, for every live filter.
type Matcher interface {
	Match(event []byte, key uint64, dst []int) []int
}

// DefaultMaxFilters is the default for Options.MaxFilters.
const DefaultMaxFilters = 10000

// group is what a filter group (a Topic with group set) knows besides its
// wait sets and count: its filter and the topics it covers.
type group struct {
	filter Filter
	own    Matcher  // the filter alone, for frames evaluated without it
	all    bool     // every topic
	topics []string // the topic names it covers
	pats   []string // the topic patterns it covers
}

// covers reports whether the group's subscribers receive frames of t.
func (g *group) covers(t *Topic) bool {
	return g.all || slices.Contains(g.topics, t.name) ||
		slices.ContainsFunc(g.pats, func(p string) bool { return topic.Match(p, t.name) })
}

// matches evaluates the group's filter alone against an event.
func (g *group) matches(event []byte, key uint64) bool {
	var buf [1]int
	return len(g.own.Match(event, key, buf[:0])) > 0
}

// selected is what is known of a frame's filters: the generation of the
// filter set it was evaluated against, and the groups it matched. Immutable
// once its frame is visible.
type selected struct {
	gen   uint64
	marks []mark
}

// mark is a group a frame matched, and the frame's position among the group's
// frames (1, 2, ...), set by the sequencer before it makes the frame visible.
type mark struct {
	g *Topic
	n uint64
}

// filterSet is the live groups, immutable: the ring's filters replace it
// whole. The first nbase groups are compiled into m (a group that left since
// is a nil entry); the others, joined since m was compiled, are evaluated
// each with its own Matcher until the next compilation (see filters).
type filterSet struct {
	gen    uint64   // groups created so far when it was built
	groups []*Topic // in creation order
	nbase  int      // groups[:nbase] are m's filters, in order
	live   int      // non-nil groups
	m      Matcher  // nil when nbase is 0
	none   *selected
}

// Compiling the live filters into one Matcher costs time in proportion to
// them (about a microsecond per filter), so it is not done at every join and
// leave: a new group is evaluated with its own Matcher, and a group that
// left stays in the compiled one as a nil entry, until the next compilation.
// That runs in the background after compileDelay, or longer after a
// compilation that took long (ten times its duration: at most a tenth of a
// core however fast listeners come and go), or at once, in a join, when
// maxPending groups are evaluated apart (so that an event never costs more
// than that many extra evaluations).
const (
	compileDelay = 20 * time.Millisecond
	maxPending   = 32
)

// filters is the ring's registry of filter groups.
type filters struct {
	cur   atomic.Pointer[filterSet] // never nil once the ring is created
	mu    sync.Mutex
	byKey map[string]*Topic // guarded by mu
	gen   uint64            // groups created so far; guarded by mu
	// timer runs the next compilation; nil when none is scheduled.
	// Guarded by mu.
	timer  *time.Timer
	delay  time.Duration // before the next scheduled compilation; guarded by mu
	closed bool          // the ring is closed: no more compilations; guarded by mu
}

func (fr *filters) init() {
	fr.byKey = make(map[string]*Topic)
	fr.delay = compileDelay
	fr.cur.Store(&filterSet{none: &selected{}})
}

// join returns the group of filter f over s's topics, created if needed, with
// one more subscriber.
func (fr *filters) join(r *Ring, f Filter, s *Subscriber) (*Topic, error) {
	g := &group{filter: f, all: s.all}
	for _, t := range s.topics {
		g.topics = append(g.topics, t.name)
	}
	for _, p := range s.patterns {
		g.pats = append(g.pats, p.name)
	}
	key := groupKey(f.Key(), g)
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if t := fr.byKey[key]; t != nil {
		t.subs++
		return t, nil
	}
	switch {
	case r.opts.Matcher == nil:
		return nil, errNoMatcher
	case len(fr.byKey) >= r.opts.MaxFilters:
		return nil, ErrTooManyFilters
	}
	g.own = r.opts.Matcher([]Filter{f})
	fr.gen++
	t := newTopic(key, len(r.shards))
	t.gen = fr.gen
	t.group = g
	t.subs = 1
	fr.byKey[key] = t
	old := fr.cur.Load()
	groups := append(slices.Clip(old.groups), t)
	if len(groups)-old.nbase > maxPending {
		fr.compile(r, groups)
		return t, nil
	}
	fr.publish(old, groups, old.nbase)
	fr.schedule(r)
	return t, nil
}

// leave removes a subscriber from group t; a group left without subscribers
// is removed.
func (fr *filters) leave(r *Ring, t *Topic) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if t.subs--; t.subs > 0 {
		return
	}
	delete(fr.byKey, t.name)
	old := fr.cur.Load()
	groups := slices.Clone(old.groups)
	i := slices.Index(groups, t)
	if i < old.nbase {
		groups[i] = nil // in the compiled Matcher until the next compilation
	} else {
		groups = slices.Delete(groups, i, i+1)
	}
	fr.publish(old, groups, old.nbase)
	fr.schedule(r)
}

// publish replaces the filter set with groups, the first nbase of them
// compiled in old's Matcher. The caller holds mu.
func (fr *filters) publish(old *filterSet, groups []*Topic, nbase int) {
	fs := &filterSet{gen: fr.gen, groups: groups, nbase: nbase, m: old.m, none: old.none}
	if fs.none.gen != fr.gen {
		fs.none = &selected{gen: fr.gen}
	}
	for _, g := range groups {
		if g != nil {
			fs.live++
		}
	}
	fr.cur.Store(fs)
}

// compile replaces the filter set with groups (nil entries left out), all
// compiled into one Matcher. The caller holds mu.
func (fr *filters) compile(r *Ring, all []*Topic) {
	start := time.Now()
	old := fr.cur.Load()
	groups := make([]*Topic, 0, len(fr.byKey))
	for _, g := range all {
		if g != nil {
			groups = append(groups, g)
		}
	}
	fs := &filterSet{gen: fr.gen, groups: groups, nbase: len(groups), live: len(groups), none: old.none}
	if fs.none.gen != fr.gen {
		fs.none = &selected{gen: fr.gen}
	}
	if len(groups) > 0 {
		list := make([]Filter, len(groups))
		for i, g := range groups {
			list[i] = g.group.filter
		}
		fs.m = r.opts.Matcher(list)
	}
	fr.cur.Store(fs)
	fr.delay = max(compileDelay, 10*time.Since(start))
}

// schedule makes sure a compilation will run, unless the set is compiled.
// The caller holds mu.
func (fr *filters) schedule(r *Ring) {
	if fr.timer != nil || fr.closed {
		return
	}
	fr.timer = time.AfterFunc(fr.delay, func() {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		fr.timer = nil
		if fs := fr.cur.Load(); !fr.closed && (fs.nbase != len(fs.groups) || fs.live != len(fs.groups)) {
			fr.compile(r, fs.groups)
		}
	})
}

// close stops the compilations, for Ring.Close.
func (fr *filters) close() {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.closed = true
	if fr.timer != nil {
		fr.timer.Stop()
		fr.timer = nil
	}
}

// groupKey identifies a group: the filter's key and the topics it covers,
// each length-prefixed so that no two groups share a key.
func groupKey(filter string, g *group) string {
	var b strings.Builder
	add := func(kind byte, s string) {
		b.WriteByte(kind)
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	add('f', filter)
	if g.all {
		b.WriteByte('*')
	}
	for _, name := range slices.Sorted(slices.Values(g.topics)) {
		add('t', name)
	}
	for _, p := range slices.Sorted(slices.Values(g.pats)) {
		add('p', p)
	}
	return b.String()
}

// evaluate returns what is known of the filters of a message committed on
// topic t with key: the groups of fs it matches. idx is scratch space.
func (fs *filterSet) evaluate(t *Topic, event []byte, key uint64, idx *[]int) *selected {
	switch {
	case t == nil:
		return nil // a broadcast frame: every subscriber receives it
	case fs.live == 0:
		return fs.none
	}
	var marks []mark
	if fs.m != nil {
		*idx = fs.m.Match(event, key, (*idx)[:0])
		for _, i := range *idx {
			if g := fs.groups[i]; g != nil && g.group.covers(t) {
				marks = append(marks, mark{g: g})
			}
		}
	}
	for _, g := range fs.groups[fs.nbase:] {
		if g.group.covers(t) && g.group.matches(event, key) {
			marks = append(marks, mark{g: g})
		}
	}
	if marks == nil {
		return fs.none
	}
	return &selected{gen: fs.gen, marks: marks}
}

// generation returns the generation of the filter set a frame was evaluated
// against: 0 if none (no group was alive at its commit, or it is a broadcast
// frame).
func (sel *selected) generation() uint64 {
	if sel == nil {
		return 0
	}
	return sel.gen
}

// complete evaluates, for f (committed, not yet visible), the groups of fs
// created after the filter set it was evaluated against. Only the
// sequencer's holder calls it.
func (fs *filterSet) complete(f *Frame) {
	old := f.sel
	gen := old.generation()
	sel := &selected{gen: fs.gen}
	if old != nil {
		sel.marks = slices.Clone(old.marks)
	}
	for _, g := range fs.groups {
		if g != nil && g.gen > gen && g.group.covers(f.topic) && g.group.matches(f.event, f.key) {
			sel.marks = append(sel.marks, mark{g: g})
		}
	}
	f.sel = sel
}

// Filters returns the number of filter groups alive: distinct filters with
// distinct topics among the live filtered subscribers.
func (r *Ring) Filters() int {
	return r.filters.cur.Load().live
}

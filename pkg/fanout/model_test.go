package fanout

// The model test: a plain reference model of the ring's semantics, checked
// step by step against the real ring under random, reproducible sequences of
// operations driven from one goroutine.
//
// The model keeps every frame ever reserved in a slice indexed by sequence
// number, and, per slot, the greatest sequence number stored in it (a slot
// only moves forward): a frame is held when its slot still holds it. On top
// of that it restates, from the package's documentation, when frames become
// visible, which frames each subscriber reads, what it is told it missed,
// where SubscribeAfter starts and with which status, how topics are created,
// pinned, evicted to make room and released (permanent ones never), what a
// subscriber had lost when it is closed, and what Ring.Missed, Subscribers
// and Topics return.
//
// A subscriber to some topics accounts for each topic's frames from its
// start: what it is told it missed at a frame of the topic is how many of
// the topic's frames that became visible (the sequencer numbered them)
// come between the last one it read or passed over, or its start, and this
// one. Which topic a full table evicts is the ring's clock's business: the
// model checks that it is one without subscribers nor pins, and that the
// table refuses a new topic only when there is none.
//
// Each seed runs three times (the third with filters, below): on the topics
// a .. d, and with patterns, on topics of one to three segments of a and b,
// subscribers naming those and patterns that match some (a.*, *.b, a.>, >,
// *, b.>; the model matches them its own way). A subscriber receives, besides broadcast frames and its named
// topics' frames, those of every topic one of its patterns matches, whenever
// the topic was created, and accounts for each such topic from its start as
// for a named one (a topic created later had no frame before); but a topic
// released before it subscribed, whose frames may still be in the ring or in
// flight, reaches it uncounted, as a released topic of a name it gave does.
// A topic it names and a pattern matches is one topic. When it is closed, it
// counts what it had lost of the topics alive then: a topic released since it
// subscribed is gone from the registry, and it may never have met one of its
// frames, so what it lost of that one is not counted (it is told of it only
// at a frame of that topic still held, as Read does for any topic). The model
// also checks the ring's patterns: the live ones are those with subscribers,
// each live topic lists exactly the live patterns that match it, and Topics
// counts none. Wake-ups, which a model driven from one goroutine does not
// see, are tested in pattern_internal_test.go and pattern_test.go.
//
// The third run of a seed adds filters to the run with patterns
// (model_filter_test.go restates their semantics): messages carry an event,
// subscribers (to every topic, to topics, to patterns, resuming or not) may
// have one of four filters, on the event's letters or the key's residue,
// shared in groups by subscribers with the same filter and topics, and an
// in-flight operation lets a subscriber come between the commit of a frame
// held back by a reservation and its visibility. Its choices come after the
// others', so the first two runs of a seed are what they were before filters
// came. Wake-ups of filter groups are tested in filter_test.go.
//
// Run more seeds, or one seed, with
//
//	go test -run TestModel ./pkg/fanout -args -model.seeds=5000
//	go test -run TestModel ./pkg/fanout -args -model.seed=1234 -model.trace
//
// Mutations tried, each reverted (go test ./pkg/fanout; the first failing
// seed and step as of the commit that updated this note; FuzzRing's seeds
// are its corpus: the scripts, then four runs of random choices):
//
//   - Read's lap branch resumes at oldest+1: TestModel (seed 0, step 15),
//     FuzzRing's "lap over a reservation", TestStalledSubscriberMissedCount,
//     TestLapOnlyHurtsTheLaggard, TestTopicMissedCountIsExact, the tests of
//     lap_test.go and more.
//   - Read's lap branch no longer stops a batch that has frames (Bug 2):
//     TestModel (seed 0, step 114), TestLapReportedBeforeTheFramesAfterIt.
//   - store without its old.seq > f.seq check (a late commit moves its slot
//     backwards): TestModel (seed 0, step 14: the slot), FuzzRing's "lap
//     over a reservation", TestReservationLappedWhileSubscribersKeepUp.
//   - advance without its lapped branch (the newer frame taken for the
//     number's own): TestModel (seed 0, step 6: a topic's count), FuzzRing's
//     "lap over a reservation", TestReservationLappedWhileSubscribers*.
//   - advance stopping at a lapped number as if it were in flight: Publish
//     spins in sequence (committedAfter sees work that advance refuses), so
//     TestModel and the lap tests hang: caught by the test timeout only.
//   - advance jumping to oldest(head)-1 again (Bug 1): TestModel (seed 0,
//     step 169: a topic's count), TestSequencerLappedWithReservationsInFlight,
//     TestLappedNumberDoesNotHideLaterTopicMisses.
//   - the sequencer failing to number every 7th frame in its topic:
//     TestModel (seed 0, step 13), FuzzRing, TestTopicMissedCountIsExact...
//   - a topic miss counted only past a gap of two (tseq > last+2): TestModel
//     (seed 0, step 24), FuzzRing seeds, TestSkipThroughIsNotAMiss.
//   - a topic miss no longer stopping a batch that has frames: TestModel
//     (seed 0, step 76), FuzzRing seeds, TestTopicMissedCountIsExact.
//   - SkipThrough no longer moving a topic's reference (Bug 3): TestModel
//     (seed 0, step 173), TestSkipThroughIsNotAMiss,
//     TestCloseCountsNoLossBeforeASkippedFrame.
//   - Subscribe taking no bearings (s.last left at 0): TestModel (seed 0,
//     step 48), FuzzRing's "a full table makes room",
//     TestTopicMissesCountedBeforeFirstFrame.
//   - place not taking off the frames from the start on: TestModel (seed 0,
//     step 378), FuzzRing seeds, TestResumedTopicMissesExact.
//   - Abort not unpinning its topic: TestModel (seed 0, step 58), FuzzRing,
//     TestAbortUnpinsTopic, TestAbortLetsAFullTableMakeRoom.
//   - SubscribeAfter's search probing frameAt(mid), fillers and all:
//     TestModel (seed 2, step 143), TestResumeAcrossAbortedNumbers.
//   - ResumeNewer only from two above the newest key: TestModel (seed 0,
//     step 293), FuzzRing seeds, TestSubscribeAfter.
//   - Close counting no loss: TestModel (seed 0, step 20), FuzzRing seeds,
//     TestMissedIncludesClosedSubscribersLosses.
//   - shard.drop not adding a closed subscriber's loss to the ring's count:
//     TestModel (seed 0, step 24), FuzzRing seeds,
//     TestMissedIncludesClosedSubscribersLosses.
//   - Ring.Missed counting below oldest(head), frames not overwritten yet:
//     TestModel (seed 0, step 5), FuzzRing seeds,
//     TestMissedCountsOverwrittenFramesOnly.
//   - Close's lost, for a subscriber to every topic, counting below
//     oldest(head): TestModel (seed 0, step 142), FuzzRing seeds.
//   - Close's lost, for a subscriber to some topics, ignoring the first
//     frame still held: TestModel (seed 0, step 154), FuzzRing seeds,
//     TestMissedIncludesClosedSubscribersLosses.
//   - Close's lost counting the frames before one SkipThrough passes over:
//     TestModel (seed 88, step 102), TestCloseCountsNoLossBeforeASkippedFrame.
//   - releaseIdle releasing after one idle sweep instead of two: TestModel
//     (seed 0, step 23), FuzzRing's "topics refused, kept and released".
//   - evict releasing a topic with subscribers: TestModel (seed 2, step
//     68), FuzzRing's "topics refused, kept and released",
//     TestFullTableMakesRoom.
//   - release ignoring pins: TestModel (seed 2, step 19), FuzzRing's
//     "topics refused, kept and released", TestAbortUnpinsTopic,
//     TestAbortLetsAFullTableMakeRoom.
//   - evict never making room: TestModel (seed 2, step 16), FuzzRing's "a
//     full table makes room", TestFullTableMakesRoom,
//     TestAbortLetsAFullTableMakeRoom.
//   - evict making one turn of the clock only (a topic with recent frames
//     is then never taken): TestModel (seed 2, step 19), FuzzRing's "a full
//     table makes room", TestFullTableMakesRoom.
//   - permanent topics counted against MaxTopics: TestModel (seed 0, step
//     9), FuzzRing's "a full table makes room", TestFullTableMakesRoom.
//   - wants no longer excluding aborted numbers: nothing fails, rightly: a
//     filler's key, 0, is never above SkipThrough's, so Read passes it over
//     anyway (an equivalent mutant; the explicit check stays, for clarity).
//   - Ring.Missed without missedHigh: nothing fails, rightly here: from one
//     goroutine Missed is exact and never goes down; missedHigh is for a
//     subscriber that reads or closes while Missed walks the shards.
//
// Mutations of the pattern code, tried the same way (go test -race
// ./pkg/fanout; the seeds' runs with patterns; FuzzRing's "patterns: topics
// created later, misses, releases" and "patterns come and go, shared,
// refused, skipped" are its pattern scripts, "topics created later" and
// "come and go" below). The model sees no wake-up: the tests of
// pattern_internal_test.go and pattern_test.go do, in synctest bubbles.
//
//   - wants ignoring the patterns a released topic lists (its frames then
//     reach a subscriber uncounted, as if released before it started):
//     TestModel (seed 0 with patterns, step 394), FuzzRing's "topics
//     created later".
//   - wants' fallback for a released topic ignoring patterns (the frames
//     of a topic released before the pattern came no longer delivered):
//     TestModel (seed 17 with patterns, step 210),
//     TestReleasedTopicFrameWakesAPatternCreatedSince.
//   - wants taking any pattern a topic lists for one of the subscriber's:
//     TestModel (seed 0 with patterns, step 75), FuzzRing's "topics created
//     later", TestPatternWakeUps.
//   - matches looking at a subscriber's first pattern only: TestModel (seed
//     0 with patterns, step 94), FuzzRing (a random-choices seed).
//   - newTopic attaching no live pattern to a new topic: TestModel (seed 0
//     with patterns, step 42: the topic's list), FuzzRing's "topics created
//     later", TestPatternWakeUps, TestPatternWakesOnlyItsSubscribers,
//     TestPatternSubscriber, TestPatternMissesAreExact, TestPatternResume,
//     TestPatternNotCountedAsTopic, TestPatternGoesWithItsLastSubscriber.
//   - newTopic attaching every live pattern, matching or not: TestModel
//     (seed 0 with patterns, step 29), FuzzRing's "topics created later",
//     TestPatternWakeUps, TestPatternWakesOnlyItsSubscribers,
//     TestPatternSubscriber, TestPatternMissesAreExact,
//     TestPatternGoesWithItsLastSubscriber.
//   - subscribePattern not attaching a new pattern to the topics alive:
//     TestModel (seed 0 with patterns, step 28), FuzzRing's "topics created
//     later", TestPatternWakeUps, TestPatternSubscriber,
//     TestPatternMissesAreExact, TestPatternResume,
//     TestPatternGoesWithItsLastSubscriber.
//   - unsubscribe leaving a gone pattern in the topics' lists (nothing a
//     subscriber sees: the next subscriber to that text gets a new pattern;
//     it costs memory and wake-ups of empty sets): TestModel (seed 0 with
//     patterns, step 142), FuzzRing's "topics created later",
//     TestPatternGoesWithItsLastSubscriber.
//   - unsubscribe removing a pattern other subscribers still name:
//     TestModel (seed 0 with patterns, step 70), FuzzRing's "topics created
//     later", TestPatternGoesWithItsLastSubscriber.
//   - a refused subscription keeping its patterns: TestModel (seed 0 with
//     patterns, step 253), FuzzRing's "come and go",
//     TestPatternGoesWithItsLastSubscriber.
//   - Close keeping its patterns: TestModel (seed 0 with patterns, step
//     70), FuzzRing's "topics created later",
//     TestPatternGoesWithItsLastSubscriber.
//   - a pattern named twice by one subscriber subscribed twice: TestModel
//     (seed 0 with patterns, step 308: its subscriber count), FuzzRing (a
//     random-choices seed).
//   - Topics counting the live patterns: TestModel (seed 0 with patterns,
//     step 28), FuzzRing's "topics created later",
//     TestPatternNotCountedAsTopic, TestPatternGoesWithItsLastSubscriber.
//   - bearings taking no count of the topics the patterns match (misses of
//     those then go untold): TestModel (seed 0 with patterns, step 40),
//     FuzzRing's "topics created later", TestPatternMissesAreExact.
//   - bearings not taking off the frames of those topics from the start on
//     (SubscribeAfter): TestModel (seed 0 with patterns, step 123).
//   - bearings taking the registry's generation plus one (the next topic
//     created is then taken for one released before the start): TestModel
//     (seed 1 with patterns, step 402), TestPatternMissesAreExact.
//   - lastOf taking a topic created before the start (and released before
//     it) for one created after, counted from its first frame: TestModel
//     (seed 17 with patterns, step 234), FuzzRing's "topics created later".
//   - lastOf comparing generations with < for <= (the topic created last
//     before the start, released before it, taken for a new one): FuzzRing's
//     "topics created later" (step 22) only; no seed releases the last topic
//     created right before a pattern subscribes, with its frames still held.
//   - Close counting no loss of the topics the patterns match: TestModel
//     (seed 0 with patterns, step 70), FuzzRing's "topics created later",
//     TestPatternMissesAreExact.
//   - Close counting a topic named and matched by a pattern twice (the bug
//     fixed by "fix(fanout): count once a topic a subscriber names and its
//     pattern matches", both halves reverted): TestModel (seed 1 with
//     patterns, step 171), FuzzRing's "topics created later",
//     TestCloseCountsATopicNamedAndMatchedOnce. Either half alone (the
//     bearings keeping a pattern position for a named topic, or Close
//     counting named topics among the pattern ones): nothing fails, rightly:
//     each is enough.
//   - the sequencer not waking the patterns that match a late frame of a
//     released topic with no live topic of its name (the bug fixed by
//     "fix(fanout): wake pattern subscribers for a released topic's late
//     frame"): TestReleasedTopicFrameWakesAPatternCreatedSince.
//   - broadcast frames waking no pattern: TestPatternWakeUps.
//   - the patternSleepers shortcut wanting two sleepers:
//     TestPatternWakesOnlyItsSubscribers (TestPatternWakeUps has several
//     asleep at once).
//   - addSleepers not counting sleepers on patterns (the shortcut then
//     skips every pattern): TestPatternWakeUps,
//     TestPatternWakesOnlyItsSubscribers,
//     TestReleasedTopicFrameWakesAPatternCreatedSince.

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var (
	modelSeeds = flag.Int("model.seeds", 300, "how many seeds TestModel runs")
	modelSeed  = flag.Int64("model.seed", -1, "run TestModel with this seed only")
	modelTrace = flag.Bool("model.trace", false, "log every step of TestModel")
)

// modelSteps is how many operations one seed runs.
const modelSteps = 400

func TestModel(t *testing.T) {
	t.Parallel()
	first, n := int64(0), int64(*modelSeeds)
	if *modelSeed >= 0 {
		first, n = *modelSeed, 1
	}
	seen := map[string]int{}
	for seed := first; seed < first+n; seed++ {
		// Each seed runs three times: on single-segment topics (as before
		// patterns came: the mutation notes above refer to these runs), on
		// topics of one to three segments with patterns, and on those with
		// filters. Each run takes its choices from the same generator: a
		// mode only adds choices of its own, so the first two runs are
		// what they were before filters came.
		for _, mode := range []modelMode{{}, {patterns: true}, {patterns: true, filters: true}} {
			c := seeded{rand.New(rand.NewPCG(uint64(seed), 0x5eed))}
			run := fmt.Sprintf("seed %d%s (-model.seed=%d)", seed, mode, seed)
			for what, k := range runModel(t, c, run, modelSteps, mode) {
				seen[what] += k
			}
		}
	}
	// The seeds must reach every case the model distinguishes (but those
	// only FuzzRing's scripts reach); if a change of the generator made one
	// rare, raise -model.seeds or the weights.
	cases := make([]string, 0, len(coverage))
	for _, what := range coverage {
		cases = append(cases, fmt.Sprintf("%s %d", what, seen[what]))
		if seen[what] == 0 && n > 1 && !slices.Contains(scriptCoverage, what) {
			t.Errorf("no seed reached %q", what)
		}
	}
	t.Logf("cases reached: %s", strings.Join(cases, ", "))
}

// coverage names the cases a model run counts (model.cover), so that
// TestModel can tell that its seeds reach them all.
var coverage = []string{
	"commit out of order", "commit after a lap (frame dropped)", "abort", "abort of a batch",
	"sequencer passes a lost number", "refused topic", "topic evicted", "topic released",
	"topic kept by a pin", "permanent topic", "lap told (every topic)", "lap stops a batch",
	"lap (some topics)", "topic miss told", "topic miss from the start", "topic miss stops a batch",
	"frame of a released topic", "skip", "resume exact", "resume older", "resume newer",
	"close with a loss (every topic)", "close with a loss (some topics)", "no loss before a skipped frame",
	// Patterns.
	"pattern shared", "pattern gone", "pattern refused with a topic", "topic named and matched",
	"frame via a pattern", "frame via a pattern of a topic created later", "frame via two patterns",
	"pattern miss told", "pattern miss of a topic created later", "pattern miss of a topic released since",
	"frame of a topic released before the start (pattern)", "skip (pattern)",
	"close with a loss (pattern)", "close: loss of a released topic not counted",
	// Filters.
	"filter group shared", "filter group gone", "filter refused (too many)", "filter refused (no Matcher)",
	"filter refused with a topic", "group created with a frame in flight",
	"frame in flight counted by a group created since", "frame via a filter", "frame via a filter (every topic)",
	"frame via a filter (pattern)", "broadcast to a filtered subscriber", "filtered out",
	"frame visible before its group", "frame visible before its group, lost uncounted",
	"filter miss told", "filter miss from the start", "filter miss stops a batch", "lap (filter)",
	"skip (filter)", "close with a loss (filter)",
	"filters compiled in the background", "filters compiled at once", "group gone, still compiled",
	"frame evaluated with groups apart",
}

// scriptCoverage are the cases of coverage the seeds of TestModel do not
// reach, and FuzzRing's scripts do (TestRingScripts checks it): a live set of
// filters compiled at once needs more than maxPending groups created with no
// time passing between them.
var scriptCoverage = []string{"filters compiled at once"}

// choices is where a model run takes its decisions: a seeded generator, or
// the fuzzer's bytes.
type choices interface {
	// intn returns a number in [0, n). (From bytes, only the first 256 of
	// more than 256 choices are reachable: enough for a fuzzer.)
	intn(n int) int
	// exhausted reports whether the choices ran out (never for a generator).
	exhausted() bool
}

type seeded struct{ r *rand.Rand }

func (s seeded) intn(n int) int  { return s.r.IntN(n) }
func (s seeded) exhausted() bool { return false }

// fuzzBytes takes one byte per choice; 0 once they run out.
type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) intn(n int) int {
	if f.i >= len(f.b) {
		return 0
	}
	v := int(f.b[f.i]) % n
	f.i++
	return v
}

func (f *fuzzBytes) exhausted() bool { return f.i >= len(f.b) }

// Operations, with the choices each one takes after its code, in order.
const (
	opPublish        = iota // topic
	opReserve               // topic, n-1 (0..2)
	opCommit                // pending reservation
	opAbort                 // pending reservation
	opSubscribe             // how many topics (0: every topic), then each topic (0..3)
	opSubscribeAfter        // key, then as opSubscribe
	opRead                  // subscriber, capacity-1 (0..3)
	opClose                 // subscriber
	opSkip                  // subscriber, key
	opRelease               // (none)
	opBurst                 // topic, n - Size (0..Size)
	// With filters only (see filterOpTable): the hole's topic, the held
	// frame's topic, after (0..1), then as opSubscribeAfter or
	// opSubscribe, then commit or abort the hole (0..1); see
	// model.inFlight.
	opInFlight
	// With filters only: the time that passes (modelPauses); see
	// model.pause.
	opPause
	opCount
)

// With filters, opSubscribe and opSubscribeAfter take one more choice after
// the topics: the filter (0: none, else modelFilters[i-1]); and every
// message committed (opPublish, opCommit, opBurst, ...) one after its key's:
// its event (modelEvents), one per Publish or burst.

var opNames = [opCount]string{"publish", "reserve", "commit", "abort", "subscribe", "subscribe-after",
	"read", "close", "skip", "release", "burst", "in-flight", "pause"}

// opTable weighs the operations: a run picks an entry at random.
var opTable = []int{
	opPublish, opPublish, opPublish, opPublish, opPublish, opPublish,
	opReserve, opReserve, opReserve,
	opCommit, opCommit, opCommit,
	opAbort,
	opSubscribe, opSubscribe,
	opSubscribeAfter, opSubscribeAfter,
	opRead, opRead, opRead, opRead, opRead, opRead, opRead,
	opClose,
	opSkip,
	opRelease, opRelease,
	opBurst,
}

// filterOpTable weighs the operations of a run with filters: opTable's, in
// the same places, the in-flight subscription, and time passing (for the
// compilation of the live filters, in the background).
var filterOpTable = append(slices.Clip(opTable), opInFlight, opInFlight, opPause)

// topicNames are the topics a run publishes and subscribes to; "" (choice 0)
// broadcasts.
var topicNames = []string{"", "a", "b", "c", "d"}

// With patterns, a run publishes on topics of one to three segments of a
// and b ("" broadcasts), and subscribes to those and to patterns that match
// some of them: a.* (a.a a.b), *.b (a.b), a.> (a.a a.b a.b.b), > (all),
// * (a b), b.> (b.a).
var (
	patternPubNames = []string{"", "a", "b", "a.a", "a.b", "b.a", "a.b.b"}
	patternSubNames = []string{"a", "b", "a.a", "a.b", "b.a", "a.b.b", "a.*", "*.b", "a.>", ">", "*", "b.>"}
)

// isPatternName reports whether a name a subscriber gives is a pattern: it
// has a wildcard segment.
func isPatternName(name string) bool {
	return slices.ContainsFunc(strings.Split(name, "."), func(seg string) bool { return seg == "*" || seg == ">" })
}

// matchName is NATS subject matching, the slow way: a "*" segment matches
// any one segment, a final ">" one or more.
func matchName(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	for i, p := range ps {
		switch {
		case p == ">":
			return len(ns) > i
		case i >= len(ns), p != "*" && p != ns[i]:
			return false
		}
	}
	return len(ps) == len(ns)
}

// The model's state.

type mTopic struct {
	real      *Topic // the ring's topic, for frames' identity
	name      string
	count     uint64 // frames numbered: the last one's tseq
	lastCount uint64 // count at the previous releaseIdle
	pins      int
	subs      int
	idle      int
	born      int // model.born when it was created
	gone      int // model.releases when it was released; 0 while alive
	released  bool
	permanent bool // in Options.Permanent: never released, not counted
}

type mFrame struct {
	topic          *mTopic // nil: broadcast (or an aborted number)
	data           string
	event          string // Message.Event ("": none)
	seq, key, tseq uint64
	stamp          int64
	// marks are the filter groups that counted it, each with its
	// position among the group's frames (see model.markGroups).
	marks   map[*mGroup]uint64
	gens    int // model.gens when it was committed
	aborted bool
}

func (f *mFrame) String() string {
	if f.aborted {
		return fmt.Sprintf("%d(aborted)", f.seq)
	}
	name := "*"
	if f.topic != nil {
		name = f.topic.name
	}
	return fmt.Sprintf("%d/%s/k%d/t%d", f.seq, name, f.key, f.tseq)
}

// topicOrNil is f's topic, nil for nil.
func (f *mFrame) topicOrNil() *mTopic {
	if f == nil {
		return nil
	}
	return f.topic
}

func frameString(f *Frame) string {
	name := "*"
	if f.topic != nil {
		name = f.topic.name
	}
	return fmt.Sprintf("%d/%s/k%d/t%d", f.seq, name, f.key, f.tseq)
}

type mPending struct {
	topic *mTopic
	res   Reservation
}

type mSub struct {
	real     *Subscriber
	topics   []*mTopic // the topics it named; with no patterns either, nil: every topic
	patterns []string  // the patterns it named
	// ref is, per topic it counts, the sequence number up to which the
	// topic's frames are accounted for: the one before its start (absent),
	// then the last frame of the topic it read or passed over with
	// SkipThrough.
	ref   map[*mTopic]uint64
	name  string
	since int    // model.releases when it subscribed
	born  int    // model.born when it subscribed
	start uint64 // the first sequence number it looked at
	next  uint64 // the next sequence number to look at
	skip  uint64 // SkipThrough's key
	total uint64 // misses told
	// group is its filter's group, nil without a filter; gref is the
	// sequence number up to which the group's frames are accounted for
	// (start-1, then the last one read or passed over).
	group    *mGroup
	gref     uint64
	filtered uint64 // FilteredOut
	all      bool
}

// every reports whether s receives every frame: every topic, no filter.
func (s *mSub) every() bool { return s.all && s.group == nil }

// matches reports whether one of s's patterns matches the topic name.
func (s *mSub) matches(name string) bool {
	return slices.ContainsFunc(s.patterns, func(p string) bool { return matchName(p, name) })
}

// counts reports whether s accounts for t's frames: a topic it named, or
// one its patterns match unless it was released before s subscribed (its
// frames reach s by name, uncounted, as those of a released topic of a name
// s gave: see wants).
func (s *mSub) counts(t *mTopic) bool {
	if slices.Contains(s.topics, t) {
		return true
	}
	return s.matches(t.name) && (t.gone == 0 || t.gone > s.since)
}

// refOf is ref[t], the sequence number before its start if absent.
func (s *mSub) refOf(t *mTopic) uint64 {
	if ref, ok := s.ref[t]; ok {
		return ref
	}
	return s.start - 1
}

type model struct {
	t        testing.TB
	ring     *Ring
	topics   map[string]*mTopic // alive
	patterns map[string]int     // live patterns: how many subscribers name each
	pubNames []string           // the topics publishers choose from ("" broadcasts)
	subNames []string           // the topics and patterns subscribers choose from
	releases int                // topics released so far
	born     int                // topics created so far
	frames   []*mFrame          // by sequence number; nil: reserved, not committed
	slots    []uint64           // per slot: the greatest sequence number stored (0: none)
	pending  []mPending
	subs     []*mSub // live
	run      string
	op       string
	note     string // what the step did besides op (evictions)
	size     uint64
	head     uint64 // last reserved
	visible  uint64 // last made visible
	told     uint64 // misses counted for subscribers, closed ones included
	missed   uint64 // Ring.Missed at the previous check
	step     int
	msgs     int // messages published, for unique bytes
	nsubs    int // subscribers created, for names
	max      int // Options.MaxTopics
	cov      map[string]int
	keys     bool
	trace    bool
	// With filters (see model_filter_test.go).
	filters    bool
	groups     map[string]*mGroup // the live groups, by the model's key
	gens       int                // groups created so far
	maxFilters int                // Options.MaxFilters
	matchers   *modelMatchers     // nil without Options.Matcher
	compiles   int                // Matcher compilations expected
	evals      int                // evaluations of the live filter set expected
	// The live filter set: the groups compiled into its Matcher (gone
	// ones too, until the next compilation), and those joined since,
	// evaluated apart; a compilation scheduled at timerAt (timer), on the
	// clock of the run's synctest bubble (now: the time passed since the
	// run began); none once the ring is closed.
	compiled []*mGroup
	apart    []*mGroup
	now      time.Duration
	timerAt  time.Duration
	timer    bool
	closed   bool
}

// cover counts a case the run reached (see coverage).
func (m *model) cover(what string) { m.cov[what]++ }

func (m *model) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s, step %d (%s%s): %s", m.run, m.step, m.op, m.note, fmt.Sprintf(format, args...))
}

// modelMode is what a model run adds to single-segment topics: patterns
// (the names of patternPubNames and patternSubNames), filters (subscribers
// with filters, messages with events: see model_filter_test.go).
type modelMode struct{ patterns, filters bool }

func (mode modelMode) String() string {
	switch {
	case mode.filters && mode.patterns:
		return " with patterns and filters"
	case mode.filters:
		return " with filters"
	case mode.patterns:
		return " with patterns"
	}
	return ""
}

// runModel runs one model check: a ring with options taken from c, then
// steps operations (fewer if c runs out), then the end of the run; with
// patterns, on the names of patternPubNames and patternSubNames, else on
// topicNames. It returns how many times it reached each case of coverage.
//
// A run with filters runs in a synctest bubble: the ring compiles the live
// filters in the background, on a timer, which then fires only when the
// model lets time pass (opPause), at times the model knows.
func runModel(t *testing.T, c choices, run string, steps int, mode modelMode) map[string]int {
	t.Helper()
	if !mode.filters {
		return runModelIn(t, c, run, steps, mode)
	}
	var cov map[string]int
	synctest.Test(t, func(t *testing.T) {
		cov = runModelIn(t, c, run, steps, mode)
	})
	if t.Failed() {
		t.FailNow()
	}
	return cov
}

// runModelIn is runModel, in a synctest bubble with filters.
func runModelIn(t *testing.T, c choices, run string, steps int, mode modelMode) map[string]int {
	t.Helper()
	opts := Options{
		Size:      []int{4, 8, 16}[c.intn(3)],
		Shards:    1 + c.intn(2),
		MaxTopics: []int{2, 3, 8}[c.intn(3)],
		// The janitor never runs during a test: the model calls
		// releaseIdle itself, deterministically.
		TopicIdle: 24 * time.Hour,
	}
	keys := c.intn(2) == 1
	// Permanent topics: none, one, one named twice and "" (which New
	// ignores), or two.
	permanent := [][]string{nil, {"d"}, {"a", "", "a"}, {"b", "d"}}
	if mode.patterns {
		permanent = [][]string{nil, {"a.b"}, {"a", "", "a"}, {"b", "a.b.b"}}
	}
	opts.Permanent = permanent[c.intn(4)]
	var matchers *modelMatchers
	if mode.filters {
		// MaxFilters 2, 4 or the default; one run in eight without a
		// Matcher, which refuses every filter.
		opts.MaxFilters = []int{2, 4, 0}[c.intn(3)]
		if c.intn(8) != 0 {
			matchers = &modelMatchers{}
			opts.Matcher = matchers.compile
		}
	}
	r := New(opts)
	defer r.Close()
	if matchers != nil {
		matchers.ring = r
	}
	m := &model{
		t: t, ring: r, run: run, trace: *modelTrace,
		topics:   map[string]*mTopic{},
		patterns: map[string]int{},
		pubNames: topicNames,
		subNames: topicNames[1:],
		cov:      map[string]int{},
		frames:   []*mFrame{nil}, // sequence numbers start at 1
		slots:    make([]uint64, opts.Size),
		size:     uint64(opts.Size),
		max:      opts.MaxTopics,
		keys:     keys,
		filters:  mode.filters,
		groups:   map[string]*mGroup{},
		matchers: matchers,
		// The ring's default when 0.
		maxFilters: cmp.Or(opts.MaxFilters, DefaultMaxFilters),
	}
	if mode.patterns {
		m.pubNames, m.subNames = patternPubNames, patternSubNames
	}
	m.op = fmt.Sprintf("New(%+v), sparse keys %v", opts, m.keys)
	if mode.filters {
		m.op += fmt.Sprintf(", Matcher %v", matchers != nil)
	}
	for _, name := range opts.Permanent {
		if name != "" && m.topics[name] == nil {
			m.born++
			t := &mTopic{name: name, permanent: true, born: m.born}
			m.topics[name] = t
			m.realTopic(t)
		}
	}
	if m.trace {
		t.Logf("%s: %s", run, m.op)
	}
	for m.step = 1; m.step <= steps && !c.exhausted(); m.step++ {
		m.note = ""
		m.do(c)
		if m.trace {
			t.Logf("step %d: %s%s", m.step, m.op, m.note)
		}
		m.check()
	}
	m.finish(c)
	return m.cov
}

// do runs one operation chosen by c, on the ring and on the model.
func (m *model) do(c choices) {
	table := opTable
	if m.filters {
		table = filterOpTable
	}
	op := table[c.intn(len(table))]
	m.op = opNames[op]
	switch op {
	case opPublish:
		m.publish(m.pubNames[c.intn(len(m.pubNames))], 1, c)
	case opReserve:
		name := m.pubNames[c.intn(len(m.pubNames))]
		m.reserve(name, 1+c.intn(3))
	case opCommit, opAbort:
		if len(m.pending) == 0 {
			m.op += " (none pending)"
			return
		}
		i := c.intn(len(m.pending))
		p := m.pending[i]
		if i > 0 { // an earlier reservation is still pending
			m.cover("commit out of order")
		}
		m.pending = slices.Delete(m.pending, i, i+1)
		if op == opCommit {
			m.commit(p, c, nil)
		} else {
			m.abort(p)
		}
	case opSubscribe:
		names := m.chooseTopics(c)
		m.subscribe(names, false, 0, m.chooseFilter(c))
	case opSubscribeAfter:
		key := m.chooseKey(c)
		names := m.chooseTopics(c)
		m.subscribe(names, true, key, m.chooseFilter(c))
	case opRead:
		if s := m.chooseSub(c); s != nil {
			m.read(s, 1+c.intn(4))
		}
	case opClose:
		if s := m.chooseSub(c); s != nil {
			m.close(s)
		}
	case opSkip:
		if s := m.chooseSub(c); s != nil {
			key := m.chooseKey(c)
			m.op = fmt.Sprintf("%s.SkipThrough(%d)", s.name, key)
			s.real.SkipThrough(key)
			s.skip = key
		}
	case opRelease:
		m.release()
	case opBurst:
		m.publish(m.pubNames[c.intn(len(m.pubNames))], int(m.size)+c.intn(int(m.size)+1), c)
	case opInFlight:
		m.inFlight(c)
	case opPause:
		m.pause(modelPauses[c.intn(len(modelPauses))])
	}
}

// chooseTopics returns the topics of a new subscriber: none (every topic)
// or one to three names (and patterns), possibly repeated.
func (m *model) chooseTopics(c choices) []string {
	n := c.intn(4)
	if n == 0 {
		return nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = m.subNames[c.intn(len(m.subNames))]
	}
	return names
}

// chooseKey returns a key to resume after or skip through: 0, the key of a
// frame committed (held or not) or of a frame held, one below or above
// that, or one above every key given out.
func (m *model) chooseKey(c choices) uint64 {
	kind := c.intn(6)
	var keys []uint64
	for seq, f := range m.frames {
		if f != nil && !f.aborted && (kind == 1 || kind == 5 || uint64(seq) >= m.oldest() && m.held(uint64(seq))) {
			keys = append(keys, f.key)
		}
	}
	if kind == 0 || len(keys) == 0 {
		return 0
	}
	if kind == 5 {
		return slices.Max(keys) + 1 + uint64(c.intn(3))
	}
	k := keys[c.intn(len(keys))]
	switch kind {
	case 3:
		return k - 1
	case 4:
		return k + 1
	}
	return k
}

func (m *model) chooseSub(c choices) *mSub {
	if len(m.subs) == 0 {
		m.op += " (no subscriber)"
		return nil
	}
	return m.subs[c.intn(len(m.subs))]
}

// oldest is the smallest sequence number the ring may still hold: the last
// Size reserved ones.
func (m *model) oldest() uint64 {
	if m.head < m.size {
		return 1
	}
	return m.head - m.size + 1
}

// held reports whether frame seq is still in its slot.
func (m *model) held(seq uint64) bool { return m.slots[seq%m.size] == seq }

// lapped reports whether seq's slot holds a frame a whole ring ahead of it.
func (m *model) lapped(seq uint64) bool { return m.slots[seq%m.size] > seq }

// create is the topic lookup of Reserve and of the Subscribe methods, called
// after the ring's: the live topic of that name, or a new one. Topics but the
// permanent ones count against MaxTopics: when that many are alive, a new
// topic takes the place of one that has neither a subscriber nor a pin (a
// publisher between Reserve and the end of its Commit or Abort), and is
// refused when there is none. Permanent topics are never evicted. later are
// the names the same call looks up after this one (see evict).
func (m *model) create(name string, later []string) (*mTopic, error) {
	if t := m.topics[name]; t != nil {
		return t, nil
	}
	counted := 0
	for _, t := range m.topics {
		if !t.permanent {
			counted++
		}
	}
	if counted >= m.max {
		if err := m.evict(later); err != nil {
			return nil, err
		}
	}
	m.born++
	t := &mTopic{name: name, born: m.born}
	m.topics[name] = t
	m.realTopic(t)
	return t, nil
}

// evict makes room for a new topic: which of the topics it may evict the
// ring chose (its clock's business), the model learns from the ring's
// registry, where that one is no longer the live topic of its name.
func (m *model) evict(later []string) error {
	var may, gone []*mTopic
	for _, t := range m.topics {
		evictable := !t.permanent && t.subs == 0 && t.pins == 0
		if evictable {
			may = append(may, t)
		}
		if m.ring.topics.get(t.name) != t.real {
			if !evictable {
				m.fail("topic %q evicted, with %d subscribers, %d pins, permanent %v", t.name, t.subs, t.pins, t.permanent)
			}
			gone = append(gone, t)
		}
	}
	if len(may) == 0 {
		return ErrTooManyTopics
	}
	if len(gone) == 0 {
		m.fail("the table is full, the ring could evict one of %v, and evicted none", namesOf(may))
	}
	// Several are gone when one Subscribe made room for several topics:
	// each of its creations evicted one, and the others are still topics it
	// may evict. But one whose name the call looked up later was gone by
	// then: the earliest such is this creation's. check makes sure that the
	// ring evicted no more.
	t := slices.MinFunc(gone, func(a, b *mTopic) int {
		return cmp.Compare(laterIndex(later, a.name), laterIndex(later, b.name))
	})
	if !t.real.released.Load() {
		m.fail("topic %q evicted, but not marked released", t.name)
	}
	m.cover("topic evicted")
	m.releases++
	t.released, t.gone = true, m.releases
	delete(m.topics, t.name)
	m.note += fmt.Sprintf(" (evicted %q)", t.name)
	return nil
}

// laterIndex is the index of name in later, len(later) if it is not there.
func laterIndex(later []string, name string) int {
	if i := slices.Index(later, name); i >= 0 {
		return i
	}
	return len(later)
}

func namesOf(ts []*mTopic) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	slices.Sort(names)
	return names
}

// realTopic fills in the ring's topic for a model topic just created.
func (m *model) realTopic(t *mTopic) {
	if t.real == nil {
		if t.real = m.ring.topics.get(t.name); t.real == nil {
			m.fail("topic %q not in the ring's registry", t.name)
		}
	}
}

// reserved checks what Reserve(name, n) (or Publish) returned against the
// model: an error, or the next n numbers; it takes them and pins the topic.
func (m *model) reserved(name string, n int, first uint64, err error) (*mTopic, bool) {
	var t *mTopic
	var wantErr error
	if name != "" {
		if t, wantErr = m.create(name, nil); t != nil {
			t.pins++
			if t.permanent {
				m.cover("permanent topic")
			}
		}
	}
	if !errors.Is(err, wantErr) {
		m.fail("error %v, want %v", err, wantErr)
	}
	if err != nil {
		m.cover("refused topic")
		return nil, false
	}
	if first != m.head+1 {
		m.fail("reserved from %d, want %d", first, m.head+1)
	}
	m.head += uint64(n)
	for range n {
		m.frames = append(m.frames, nil)
	}
	return t, true
}

func (m *model) reserve(name string, n int) {
	m.op = fmt.Sprintf("Reserve(%q, %d)", name, n)
	res, err := m.ring.Reserve(name, n)
	t, ok := m.reserved(name, n, res.Seq(), err)
	if !ok {
		return
	}
	if res.Len() != n {
		m.fail("reserved %d numbers, want %d", res.Len(), n)
	}
	m.pending = append(m.pending, mPending{topic: t, res: res})
	m.op += fmt.Sprintf(" = %d..%d", res.Seq(), m.head)
}

// publish publishes n frames on name, one at a time: with Publish when keys
// are the sequence numbers, else with Reserve and Commit, and so with
// filters, all with one event.
func (m *model) publish(name string, n int, c choices) {
	desc := fmt.Sprintf("publish %d on %q", n, name)
	var event []string
	if m.filters {
		event = []string{m.chooseEvent(c)}
		desc += fmt.Sprintf(", event %q", event[0])
	}
	for range n {
		if m.keys || m.filters {
			res, err := m.ring.Reserve(name, 1)
			t, ok := m.reserved(name, 1, res.Seq(), err)
			if !ok {
				break
			}
			m.commit(mPending{topic: t, res: res}, c, event)
			continue
		}
		m.msgs++
		f := &mFrame{data: fmt.Sprintf("m%d", m.msgs)}
		seq, err := m.ring.Publish(name, []byte(f.data))
		t, ok := m.reserved(name, 1, seq, err)
		if !ok {
			break
		}
		f.topic, f.seq, f.key = t, seq, seq
		m.store(f)
		m.committed(mPending{topic: t})
	}
	m.op = fmt.Sprintf("%s, head %d visible %d", desc, m.head, m.visible)
}

// commit commits a pending reservation; keys are the sequence numbers, or,
// for sparse keys, 3*seq plus 0..2: strictly increasing with seq. With
// filters, each message has an event: event[0] if given, else one chosen
// per message.
func (m *model) commit(p mPending, c choices, event []string) {
	msgs := make([]Message, p.res.Len())
	for i := range msgs {
		seq := p.res.Seq() + uint64(i)
		m.msgs++
		f := &mFrame{topic: p.topic, seq: seq, key: seq, data: fmt.Sprintf("m%d", m.msgs), stamp: int64(m.msgs), gens: m.gens}
		if m.keys {
			f.key = 3*seq + uint64(c.intn(3))
			msgs[i].Key = f.key
		}
		if m.filters {
			if event != nil {
				f.event = event[0]
			} else {
				f.event = m.chooseEvent(c)
			}
			if f.event != "" {
				msgs[i].Event = []byte(f.event)
			}
		}
		msgs[i].Data, msgs[i].Stamp = []byte(f.data), f.stamp
		m.store(f)
	}
	m.op = fmt.Sprintf("Commit(%d+%d)", p.res.Seq(), p.res.Len())
	// With filters alive, Commit evaluates each message of a topic once
	// against all of them.
	// (Groups joined since the last compilation are evaluated each apart,
	// with its own Matcher; see model.compile.)
	if p.topic != nil && len(m.groups) > 0 && len(m.compiled) > 0 {
		m.evals += p.res.Len()
	}
	if p.topic != nil && len(m.apart) > 0 {
		m.cover("frame evaluated with groups apart")
	}
	m.ring.Commit(p.res, msgs...)
	m.committed(p)
}

// abort gives a pending reservation up.
func (m *model) abort(p mPending) {
	m.cover("abort")
	if p.res.Len() > 1 {
		m.cover("abort of a batch")
	}
	for i := range p.res.Len() {
		m.store(&mFrame{seq: p.res.Seq() + uint64(i), aborted: true})
	}
	m.op = fmt.Sprintf("Abort(%d+%d)", p.res.Seq(), p.res.Len())
	m.ring.Abort(p.res)
	m.committed(p)
}

// store is Ring.store: a slot only moves forward.
func (m *model) store(f *mFrame) {
	if f.seq < m.slots[f.seq%m.size] {
		m.cover("commit after a lap (frame dropped)")
	}
	m.frames[f.seq] = f
	if i := f.seq % m.size; f.seq > m.slots[i] {
		m.slots[i] = f.seq
	}
}

// committed makes visible what the commit or abort of p allows, and unpins
// its topic.
func (m *model) committed(p mPending) {
	m.advance()
	if p.topic != nil {
		p.topic.pins--
	}
	m.op += fmt.Sprintf(", visible %d", m.visible)
}

// advance is the sequencer: the next number becomes visible once its frame
// is stored (numbered within its topic unless it is an aborted number), or
// when it is lost (its slot already holds a frame a ring ahead: nobody will
// ever read it); it stops at a number still in flight.
func (m *model) advance() {
	for {
		next := m.visible + 1
		if next >= uint64(len(m.frames)) || m.slots[next%m.size] < next {
			return
		}
		if m.lapped(next) {
			m.cover("sequencer passes a lost number")
		}
		if f := m.frames[next]; m.held(next) && !f.aborted && f.topic != nil {
			f.topic.count++
			f.tseq = f.topic.count
			m.markGroups(f)
		}
		m.visible = next
	}
}

// subscribe is Subscribe, or SubscribeAfter(key); with a filter (mf not
// nil), SubscribeFilter or SubscribeFilterAfter.
func (m *model) subscribe(names []string, after bool, key uint64, mf *modelFilter) {
	m.nsubs++
	s := &mSub{name: fmt.Sprintf("sub%d%q", m.nsubs, names), all: len(names) == 0}
	if mf != nil {
		s.name = fmt.Sprintf("sub%d%q/%s", m.nsubs, names, mf.name)
	}
	var (
		sub     *Subscriber
		resume  Resume
		err     error
		wantErr error
	)
	switch {
	case after && mf != nil:
		m.op = fmt.Sprintf("SubscribeFilterAfter(%d, %s, %q)", key, mf.name, names)
		sub, resume, err = m.ring.SubscribeFilterAfter(key, mf.filter(), names...)
	case after:
		m.op = fmt.Sprintf("SubscribeAfter(%d, %q)", key, names)
		sub, resume, err = m.ring.SubscribeAfter(key, names...)
	case mf != nil:
		m.op = fmt.Sprintf("SubscribeFilter(%s, %q)", mf.name, names)
		sub, err = m.ring.SubscribeFilter(mf.filter(), names...)
	default:
		m.op = fmt.Sprintf("Subscribe(%q)", names)
		sub, err = m.ring.Subscribe(names...)
	}
	// newSubscriber: each name once, created if needed (a pattern creates
	// no topic, and is live while it has subscribers); on a refusal, the
	// topics and patterns already taken are given back (topics created
	// stay).
	for i, name := range names {
		if isPatternName(name) {
			if !slices.Contains(s.patterns, name) {
				if m.patterns[name] > 0 {
					m.cover("pattern shared")
				}
				m.patterns[name]++
				s.patterns = append(s.patterns, name)
			}
			continue
		}
		if slices.ContainsFunc(s.topics, func(t *mTopic) bool { return t.name == name }) {
			continue
		}
		t, err := m.create(name, names[i+1:])
		if err != nil {
			wantErr = err
			for _, t := range s.topics {
				t.subs--
			}
			if len(s.patterns) > 0 {
				m.cover("pattern refused with a topic")
			}
			m.unsubscribePatterns(s)
			break
		}
		if t.permanent {
			m.cover("permanent topic")
		}
		t.subs++
		t.idle = 0
		s.topics = append(s.topics, t)
	}
	// Then its filter's group, once its topics are taken.
	topicErr := wantErr
	switch {
	case mf != nil && wantErr == nil:
		wantErr = m.join(s, mf)
	case mf != nil:
		m.cover("filter refused with a topic")
	}
	if !errors.Is(err, wantErr) {
		m.fail("error %v, want %v", err, wantErr)
	}
	if err != nil {
		if topicErr != nil {
			m.cover("refused topic")
		}
		return
	}
	for _, t := range s.topics {
		if s.matches(t.name) {
			m.cover("topic named and matched")
		}
	}
	s.real = sub
	s.since, s.born = m.releases, m.born
	s.next = m.visible + 1
	if after {
		next, want := m.locate(key)
		if resume != want {
			m.fail("resume %+v, want %+v", resume, want)
		}
		s.next = next
		m.cover("resume " + want.Status.String())
		m.op += fmt.Sprintf(" = %s, at %d", want.Status, next)
	}
	// It accounts for its topics' frames from its start: every one before
	// it is none of its business, every one from there on is received,
	// passed over or counted as missed. So for its group's frames.
	s.start = s.next
	s.ref = map[*mTopic]uint64{}
	s.gref = s.start - 1
	if s.group != nil {
		m.joined(s)
	}
	m.subs = append(m.subs, s)
	m.op += " -> " + s.name
}

// unsubscribePatterns gives s's patterns back: one without subscribers is
// no longer live.
func (m *model) unsubscribePatterns(s *mSub) {
	for _, p := range s.patterns {
		if m.patterns[p]--; m.patterns[p] == 0 {
			m.cover("pattern gone")
			delete(m.patterns, p)
		}
	}
}

// firstHeldFrom returns the first visible frame from seq on that is not an
// aborted number; nil if there is none, or if a frame before it is no longer
// held.
func (m *model) firstHeldFrom(seq uint64) *mFrame {
	for ; seq <= m.visible; seq++ {
		if !m.held(seq) {
			return nil
		}
		if f := m.frames[seq]; !f.aborted {
			return f
		}
	}
	return nil
}

// locate is SubscribeAfter's documented search, the slow way: the frames
// held are the visible ones among the last Size reserved, aborted numbers
// aside. It returns where the subscriber starts, and the resume.
func (m *model) locate(key uint64) (uint64, Resume) {
	var held []*mFrame
	for seq := m.oldest(); seq <= m.visible; seq++ {
		if !m.held(seq) {
			m.fail("model: frame %d among the last Size reserved and visible, but not held", seq)
		}
		if f := m.frames[seq]; !f.aborted {
			held = append(held, f)
		}
	}
	if len(held) == 0 {
		return m.visible + 1, Resume{Status: ResumeNewer}
	}
	var below, above *mFrame // greatest key <= key, smallest > key
	for _, f := range held {
		if f.key <= key {
			below = f
		} else if above == nil {
			above = f
		}
	}
	// The subscriber starts at the first frame above key, after the newest
	// when there is none.
	start := m.visible + 1
	if above != nil {
		start = above.seq
	}
	switch {
	case below == nil:
		return start, Resume{Status: ResumeOlder, Oldest: held[0].key}
	case above == nil && below.key < key:
		return start, Resume{Status: ResumeNewer}
	}
	return start, Resume{Status: ResumeExact}
}

// wants is whether s receives f: every frame but aborted numbers for a
// subscriber to every topic; else broadcast frames, the frames of the very
// topics it named, of every topic one of its patterns matches (existing when
// it subscribed, created later, or released: frames still in the ring keep
// their topic's name), and of a released topic of a name it gave. And
// whether s accounts for f's topic's frames (see counts).
func (s *mSub) wants(f *mFrame) (want, counted bool) {
	switch {
	case f.aborted:
		return false, false
	case s.all || f.topic == nil:
		return true, false
	case s.counts(f.topic):
		return true, true
	}
	byName := f.topic.released && slices.ContainsFunc(s.topics, func(t *mTopic) bool { return t.name == f.topic.name })
	return byName || s.matches(f.topic.name), false
}

// readModel is Subscriber.Read as documented: the frames for s in sequence
// order, up to capacity, aborted numbers and frames up to SkipThrough's key
// passed over; a subscriber to every topic is told at once how many numbers
// it lost to a lap (before any frame after them: a Read stops at the lap if
// it already has frames), and resumes at the oldest still held; a subscriber
// to some topics is told, at a topic's next frame (as the first frame of a
// Read), how many of that topic's numbered frames it did not get since the
// last one it read or passed over with SkipThrough, or since its start;
// frames of a released topic of one of its names, and of a topic its
// patterns match that was released before it subscribed, count for nothing.
// A subscriber with a filter is told of a lap as one to some topics is, of
// its group's frames (see readFiltered).
func (m *model) readModel(s *mSub, capacity int) (got []*mFrame, missed uint64) {
	for len(got) < capacity && s.next <= m.visible {
		if !m.held(s.next) {
			if !m.lapped(s.next) {
				m.fail("model: %s at %d <= visible %d, slot holds %d", s.name, s.next, m.visible, m.slots[s.next%m.size])
			}
			if s.every() && len(got) > 0 {
				m.cover("lap stops a batch")
				break
			}
			switch {
			case s.every():
				m.cover("lap told (every topic)")
				missed += m.oldest() - s.next
			case s.group != nil:
				m.lapFiltered(s)
			default:
				m.cover("lap (some topics)")
			}
			s.next = m.oldest()
			continue
		}
		f := m.frames[s.next]
		if s.group != nil {
			if m.readFiltered(s, f, &got, &missed) {
				break
			}
			continue
		}
		want, counted := s.wants(f)
		if !want {
			s.next++
			continue
		}
		viaPattern := !s.all && f.topic != nil && !slices.Contains(s.topics, f.topic) && s.matches(f.topic.name)
		if !s.all && f.topic != nil && !counted {
			if viaPattern {
				m.cover("frame of a topic released before the start (pattern)")
			} else {
				m.cover("frame of a released topic")
			}
		}
		if f.key <= s.skip {
			m.cover("skip")
			if counted {
				if viaPattern {
					m.cover("skip (pattern)")
				}
				s.ref[f.topic] = f.seq
			}
			s.next++
			continue
		}
		if counted {
			ref := s.refOf(f.topic)
			if n := m.numbered(f.topic, ref+1, f.seq-1); n > 0 {
				if len(got) > 0 {
					m.cover("topic miss stops a batch")
					break
				}
				m.cover("topic miss told")
				if ref < s.start {
					m.cover("topic miss from the start")
				}
				if viaPattern {
					m.cover("pattern miss told")
					if f.topic.born > s.born {
						m.cover("pattern miss of a topic created later")
					}
					if f.topic.released {
						m.cover("pattern miss of a topic released since")
					}
				}
				missed += n
			}
			s.ref[f.topic] = f.seq
		}
		if viaPattern {
			m.cover("frame via a pattern")
			if f.topic.born > s.born {
				m.cover("frame via a pattern of a topic created later")
			}
			if len(slices.DeleteFunc(slices.Clone(s.patterns), func(p string) bool { return !matchName(p, f.topic.name) })) > 1 {
				m.cover("frame via two patterns")
			}
		}
		got = append(got, f)
		s.next++
	}
	s.total += missed
	m.told += missed
	return got, missed
}

func (m *model) read(s *mSub, capacity int) {
	m.op = fmt.Sprintf("%s.Read(cap %d) from %d", s.name, capacity, s.next)
	batch, missed := s.real.Read(make([]*Frame, 0, capacity))
	want, wantMissed := m.readModel(s, capacity)
	m.op += fmt.Sprintf(": %v, missed %d", want, wantMissed)
	if missed != wantMissed || !m.sameFrames(batch, want) {
		got := make([]string, len(batch))
		for i, f := range batch {
			got[i] = frameString(f)
		}
		m.fail("got [%s], missed %d", strings.Join(got, " "), missed)
	}
}

func (m *model) sameFrames(got []*Frame, want []*mFrame) bool {
	if len(got) != len(want) {
		return false
	}
	for i, f := range got {
		w := want[i]
		var topic *Topic
		if w.topic != nil {
			topic = w.topic.real
		}
		if f.Seq() != w.seq || f.Key() != w.key || string(f.Bytes()) != w.data || f.Stamp() != w.stamp ||
			f.Topic() != topic || f.tseq != w.tseq || string(f.event) != w.event {
			return false
		}
	}
	return true
}

// numbered returns how many frames of topic t among sequence numbers from
// .. to the sequencer numbered in their topic: those that became visible.
func (m *model) numbered(t *mTopic, from, to uint64) uint64 {
	var n uint64
	for seq := from; seq <= to; seq++ {
		if f := m.frames[seq]; f != nil && f.topic == t && f.tseq != 0 {
			n++
		}
	}
	return n
}

// lost is how many frames a subscriber has lost for sure without being told
// yet, once its position is below the oldest frame a visible one has
// overwritten for sure (the visible frame a ring after it): for a
// subscriber to every topic, the numbers from its position to there; for
// one to some topics, per topic, the numbered frames after those accounted
// for that are no longer held, up to the first one that is, unless that one
// is passed over with SkipThrough (the lost ones, with smaller keys, are
// then no loss: Read would pass them over too). The topics are those it
// counts (see counts) that are alive: a topic its patterns match that was
// released since it subscribed is no longer known to it (it may have met
// none of its frames), so what it lost of that one is not counted.
func (m *model) lost(s *mSub) uint64 {
	if !m.behind(s) {
		return 0
	}
	switch {
	case s.every():
		return m.sure() - s.next
	case s.group != nil:
		return m.lostOfGroup(s)
	}
	var n uint64
	for _, t := range m.topics {
		if s.counts(t) {
			gone := m.lostOf(s, t)
			if gone > 0 && !slices.Contains(s.topics, t) {
				m.cover("close with a loss (pattern)")
			}
			n += gone
		}
	}
	return n
}

// sure is the oldest sequence number not overwritten for sure.
func (m *model) sure() uint64 {
	if m.visible > m.size {
		return m.visible - m.size + 1
	}
	return 1
}

// behind reports whether s's position is below sure: it may have lost
// frames without being told.
func (m *model) behind(s *mSub) bool { return s.next < m.sure() }

// lostOf is, for a subscriber s to some topics that is behind, what it lost
// of topic t.
func (m *model) lostOf(s *mSub, t *mTopic) uint64 {
	var gone uint64
	for seq := s.refOf(t) + 1; seq <= m.visible; seq++ {
		if f := m.frames[seq]; f != nil && f.topic == t && f.tseq != 0 {
			if m.held(seq) {
				if f.key <= s.skip && gone > 0 {
					m.cover("no loss before a skipped frame")
					gone = 0
				}
				break
			}
			gone++
		}
	}
	return gone
}

func (m *model) close(s *mSub) {
	m.op = s.name + ".Close()"
	if err := s.real.Close(); err != nil {
		m.fail("Close: %v", err)
	}
	// What it had lost is counted in its Missed and Ring.Missed.
	if n := m.lost(s); n > 0 {
		switch {
		case s.every():
			m.cover("close with a loss (every topic)")
		case s.group != nil:
			m.cover("close with a loss (filter)")
		default:
			m.cover("close with a loss (some topics)")
		}
		m.told += n
		s.total += n
	}
	if got := s.real.Missed(); got != s.total {
		m.fail("%s.Missed %d after Close, want %d", s.name, got, s.total)
	}
	if len(s.patterns) > 0 && s.group == nil && m.behind(s) {
		seen := map[*mTopic]bool{}
		for _, f := range m.frames {
			if t := f.topicOrNil(); t != nil && t.released && !seen[t] && s.counts(t) {
				seen[t] = true
				if m.lostOf(s, t) > 0 {
					m.cover("close: loss of a released topic not counted")
				}
			}
		}
	}
	for _, t := range s.topics {
		t.subs--
	}
	m.unsubscribePatterns(s)
	m.leave(s)
	m.subs = slices.DeleteFunc(m.subs, func(x *mSub) bool { return x == s })
}

// release is the janitor's sweep: a topic is released at the second sweep
// in a row without subscribers nor new frames, unless a publisher holds it
// or it is permanent.
func (m *model) release() {
	m.ring.topics.releaseIdle()
	var gone []string
	for name, t := range m.topics {
		if t.permanent {
			continue
		}
		if t.subs > 0 || t.count != t.lastCount {
			t.idle, t.lastCount = 0, t.count
			continue
		}
		if t.idle++; t.idle < 2 {
			continue
		}
		if t.pins > 0 {
			m.cover("topic kept by a pin")
			t.idle = 0
			continue
		}
		m.cover("topic released")
		m.releases++
		t.released, t.gone = true, m.releases
		delete(m.topics, name)
		gone = append(gone, name)
	}
	slices.Sort(gone)
	m.op = fmt.Sprintf("releaseIdle: released %q", gone)
}

// check compares everything observable (and the ring's internals the model
// pins down) with the model.
func (m *model) check() {
	m.t.Helper()
	r := m.ring
	if got := r.Last(); got != m.head {
		m.fail("Last %d, want %d", got, m.head)
	}
	if got := r.visible.Load(); got != m.visible {
		m.fail("visible %d, want %d", got, m.visible)
	}
	for i := range r.slots {
		f := r.slots[i].Load()
		want := m.slots[i]
		switch {
		case want == 0 && f != nil:
			m.fail("slot %d holds %d, want nothing", i, f.seq)
		case want != 0 && f == nil:
			m.fail("slot %d holds nothing, want %v", i, m.frames[want])
		case want != 0 && (f.seq != want || f.key != m.frames[want].key):
			m.fail("slot %d holds %s, want %v", i, frameString(f), m.frames[want])
		}
	}
	if got := r.Subscribers(); got != len(m.subs) {
		m.fail("Subscribers %d, want %d", got, len(m.subs))
	}
	alive := 0
	r.topics.each(func(*Topic) { alive++ })
	if got := r.Topics(); got != len(m.topics) || alive != len(m.topics) {
		m.fail("Topics %d (%d in the registry), want %d", got, alive, len(m.topics))
	}
	for name, t := range m.topics {
		got := r.topics.get(name)
		if got == nil {
			m.fail("topic %q not alive", name)
		}
		if got != t.real || got.pins.Load() != int64(t.pins) || got.count.Load() != t.count {
			m.fail("topic %q: %p pins %d count %d, want %p pins %d count %d", name,
				got, got.pins.Load(), got.count.Load(), t.real, t.pins, t.count)
		}
	}
	m.checkPatterns()
	m.checkFilters()
	// Ring.Missed: what subscribers were told or lost before they closed,
	// and what live subscribers to every topic have lost for sure.
	missed := m.told
	for _, s := range m.subs {
		if s.every() {
			missed += m.lost(s)
		}
	}
	if got := r.Missed(); got != missed || got < m.missed {
		m.fail("Ring.Missed %d, want %d (it was %d)", got, missed, m.missed)
	}
	m.missed = missed
	for _, s := range m.subs {
		var behind uint64
		if m.visible >= s.next {
			behind = m.visible - s.next + 1
		}
		var key uint64
		f := m.firstHeldFrom(s.next)
		if f != nil {
			key = f.key
		}
		gotKey, ok := s.real.NextKey()
		if s.real.Next() != s.next || s.real.Missed() != s.total || s.real.Behind() != behind ||
			gotKey != key || ok != (f != nil) {
			m.fail("%s: next %d missed %d behind %d nextkey %d,%v; want %d %d %d %d,%v", s.name,
				s.real.Next(), s.real.Missed(), s.real.Behind(), gotKey, ok, s.next, s.total, behind, key, f != nil)
		}
	}
}

// checkPatterns compares the ring's patterns with the model's: the live
// patterns are those with subscribers, each with as many, and each live
// topic lists exactly the live patterns that match it (which its frames
// wake). Patterns are no topics: check has already seen that Topics and the
// registry count none.
func (m *model) checkPatterns() {
	m.t.Helper()
	live := map[string]*Topic{}
	m.ring.topics.eachPattern(func(p *Topic) { live[p.name] = p })
	if len(live) != len(m.patterns) {
		m.fail("live patterns %q, want %v", slices.Sorted(maps.Keys(live)), m.patterns)
	}
	for name, subs := range m.patterns {
		if p := live[name]; p == nil || !p.pattern || p.subs != subs {
			m.fail("pattern %q: %+v, want %d subscribers", name, p, subs)
		}
	}
	for name, t := range m.topics {
		var got, want []string
		for _, p := range t.real.patternList() {
			if live[p.name] != p {
				m.fail("topic %q lists pattern %q (%p), not the live one", name, p.name, p)
			}
			got = append(got, p.name)
		}
		for p := range m.patterns {
			if matchName(p, name) {
				want = append(want, p)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			m.fail("topic %q lists patterns %q, want %q", name, got, want)
		}
	}
}

// finish ends a run: every pending reservation is committed or aborted,
// every subscriber reads all it can, is checked and closed, then the ring.
func (m *model) finish(c choices) {
	m.step++
	for len(m.pending) > 0 {
		i := c.intn(len(m.pending))
		p := m.pending[i]
		m.pending = slices.Delete(m.pending, i, i+1)
		if c.intn(2) == 0 {
			m.commit(p, c, nil)
		} else {
			m.abort(p)
		}
		m.check()
	}
	for _, s := range slices.Clone(m.subs) {
		for {
			m.read(s, 4)
			m.check()
			if s.next > m.visible {
				break
			}
		}
		m.close(s)
		m.check()
	}
	m.op = "Close"
	if err := m.ring.Close(); err != nil {
		m.fail("Close: %v", err)
	}
	m.closed, m.timer = true, false
	if m.filters {
		m.checkFilters()
	}
	if _, err := m.ring.Reserve("a", 1); !errors.Is(err, ErrClosed) {
		m.fail("Reserve after Close: %v", err)
	}
	if _, err := m.ring.Subscribe(); !errors.Is(err, ErrClosed) {
		m.fail("Subscribe after Close: %v", err)
	}
	if m.filters {
		if _, err := m.ring.SubscribeFilter(modelFilters[0].filter(), "a"); !errors.Is(err, ErrClosed) {
			m.fail("SubscribeFilter after Close: %v", err)
		}
	}
}

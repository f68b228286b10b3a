package fanout

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzRing runs the model check of model_test.go on operations decoded from
// the fuzzer's bytes: one byte per choice the run makes (the options, then
// each operation's code and its choices; see the op constants and
// model.do), zeros once the bytes run out. The first byte's high bit picks
// the names: set, topics of one to three segments and patterns
// (patternPubNames, patternSubNames); clear, topicNames. Its next bit adds
// filters (see model_filter_test.go): two more option choices (MaxFilters,
// Matcher), a filter choice per subscription, an event per message, and
// the in-flight subscription (filterOpTable).
//
//	go test -run '^$' -fuzz '^FuzzRing$' -fuzztime 20000x ./pkg/fanout
//
// TestRingScripts checks that the scripts of its seed corpus reach what
// they are meant to.
func FuzzRing(f *testing.F) {
	for _, seed := range ringScripts {
		f.Add(seed.build())
	}
	// And a few runs of random choices: four as before filters came (the
	// first byte, its filter bit cleared, still picks the same options), and
	// four with filters.
	for i := range 8 {
		r := rand.New(rand.NewPCG(uint64(i), 0xf022))
		input := make([]byte, 400)
		for k := range input {
			input[k] = byte(r.Uint32())
		}
		if i < 4 && input[0]&modeFilters != 0 {
			input[0] = input[0]&modePatterns | (input[0]&^modePatterns)%3 // Size's choice
		}
		if i >= 4 {
			input[0] |= modeFilters
		}
		f.Add(input)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		const maxInput = 1024 // a run's cost grows with its length squared
		if len(input) > maxInput {
			input = input[:maxInput]
		}
		runFuzzInput(t, input, "fuzz input")
	})
}

// TestRingScripts runs FuzzRing's scripts, each checked to reach the cases
// it is meant to (a run with filters needs a *testing.T for its synctest
// bubble, so this is not done in FuzzRing itself).
func TestRingScripts(t *testing.T) {
	t.Parallel()
	for _, seed := range ringScripts {
		reached := runFuzzInput(t, seed.build(), "seed corpus: "+seed.name)
		for _, what := range seed.reaches {
			if reached[what] == 0 {
				t.Fatalf("seed corpus: %s does not reach %q (the encoding changed?)", seed.name, what)
			}
		}
	}
}

// runFuzzInput runs the model check on a FuzzRing input (see FuzzRing).
func runFuzzInput(tb *testing.T, input []byte, run string) map[string]int {
	tb.Helper()
	var mode modelMode
	if len(input) > 0 {
		mode = modelMode{patterns: input[0]&modePatterns != 0, filters: input[0]&modeFilters != 0}
		input = slices.Clone(input)
		input[0] &^= modePatterns | modeFilters
		run += mode.String()
	}
	return runModel(tb, &fuzzBytes{b: input}, run, len(input), mode)
}

// The bits of a FuzzRing input's first byte that pick its mode.
const (
	modePatterns = 0x80
	modeFilters  = 0x40
)

// ringScript is a FuzzRing input written by hand: options, then operations
// with their choices, and the cases (see coverage) it is meant to reach.
type ringScript struct {
	name    string
	reaches []string
	// opts are the choices Size 4/8/16, Shards-1, MaxTopics 2/3/8, sparse
	// keys, Permanent, and with filters MaxFilters 2/4/default, Matcher
	// (0: none) (see runModel).
	opts     []byte
	ops      [][]int
	patterns bool // on patternPubNames and patternSubNames
	filters  bool // with filters
}

// build encodes the script: each operation's code is its first entry in
// filterOpTable (opTable's for those of opTable).
func (s ringScript) build() []byte {
	b := slices.Clone(s.opts)
	for _, op := range s.ops {
		b = append(b, byte(slices.Index(filterOpTable, op[0])))
		for _, c := range op[1:] {
			b = append(b, byte(c))
		}
	}
	if s.patterns {
		b[0] |= modePatterns
	}
	if s.filters {
		b[0] |= modeFilters
	}
	return b
}

// Topic choices: topicNames[i] for publishing, topicNames[1+i] for
// subscribing.
const (
	pubAll, pubA, pubB, pubC, pubD = 0, 1, 2, 3, 4
	subA, subB, subC               = 0, 1, 2
)

// With patterns: patternPubNames[i] for publishing, patternSubNames[i] for
// subscribing.
const (
	ppA, ppB, ppAA, ppAB, ppBA, ppABB                 = 1, 2, 3, 4, 5, 6
	psA, psB, psAA, psAB, psBA, psABB                 = 0, 1, 2, 3, 4, 5
	psAStar, psStarB, psATail, psAll, psStar, psBTail = 6, 7, 8, 9, 10, 11
	keyAboveAll                                       = 5 // chooseKey: above every key given out
)

// With filters: the filter choice (0: none, else modelFilters[i-1]), the
// event choice (modelEvents[i]), and the hole's end in opInFlight.
const (
	fNone, fX, fY, fOdd, fK3   = 0, 1, 2, 3, 4
	evNone, evX, evY, evXY     = 0, 1, 2, 3
	holeCommitted, holeAborted = 0, 1
	// opPause: modelPauses[i].
	pause1ms, pauseShort, pauseDue, pause1s = 0, 1, 2, 3
)

// manyGroups returns n subscriptions, each with a group of its own: a
// filter (x, y, odd, k3 in turn) over one or two patterns, none of them
// with fX over a.* alone.
func manyGroups(n int) [][]int {
	pats := []int{psAStar, psStarB, psATail, psAll, psStar, psBTail}
	var sels [][]int
	for i, p := range pats {
		sels = append(sels, []int{1, p})
		for _, q := range pats[i+1:] {
			sels = append(sels, []int{2, p, q})
		}
	}
	ops := make([][]int, 0, n)
	for i := range n {
		op := append([]int{opSubscribe}, sels[1+i/4]...)
		ops = append(ops, append(op, fX+i%4))
	}
	return ops
}

var ringScripts = []ringScript{
	{
		name: "lap over a reservation",
		reaches: []string{"commit after a lap (frame dropped)", "sequencer passes a lost number",
			"lap told (every topic)", "lap (some topics)"},
		opts: []byte{0, 0, 2, 0, 0}, // Size 4, 1 shard, 8 topics, keys = sequence numbers, none permanent
		ops: [][]int{
			{opSubscribe, 0},         // sub 0: every topic
			{opSubscribe, 1, subA},   // sub 1: a
			{opPublish, pubA},        // 1
			{opRead, 0, 3},           // cap 4
			{opRead, 1, 3},           //
			{opReserve, pubA, 0},     // 2, in flight
			{opBurst, pubAll, 1},     // 3 .. 7: a ring ahead of 2
			{opRead, 0, 3},           // lapped at 2
			{opRead, 1, 3},           //
			{opCommit, 0},            // 2: too late
			{opRead, 0, 3},           //
			{opRead, 1, 3},           //
			{opPublish, pubA},        //
			{opRead, 1, 3},           //
			{opSubscribeAfter, 0, 0}, // after key 0, every topic
			{opRead, 2, 3},           //
			{opReserve, pubB, 2},     // 9 .. 11
			{opBurst, pubA, 4},       // 12 .. 19: the batch is lapped
			{opAbort, 0},             // too late as well
			{opRead, 0, 1},           //
			{opRead, 1, 1},           //
			{opRead, 2, 1},           //
		},
	},
	{
		name:    "commits out of order, and aborts",
		reaches: []string{"commit out of order", "abort", "abort of a batch", "resume exact"},
		opts:    []byte{1, 1, 2, 1, 0}, // Size 8, 2 shards, 8 topics, sparse keys, none permanent
		ops: [][]int{
			{opSubscribe, 0},                  // sub 0: every topic
			{opSubscribe, 2, subA, subB},      // sub 1: a, b
			{opReserve, pubA, 1},              // 1, 2
			{opReserve, pubB, 0},              // 3
			{opReserve, pubAll, 2},            // 4 .. 6
			{opCommit, 2, 0, 1, 2},            // 4 .. 6, keys jittered
			{opRead, 0, 1},                    // nothing: 1 .. 3 in flight
			{opAbort, 0},                      // 1, 2
			{opRead, 0, 1},                    // nothing: 3 in flight
			{opCommit, 0, 2},                  // 3
			{opRead, 0, 1},                    // cap 2
			{opRead, 1, 3},                    //
			{opPublish, pubA, 1},              // 7
			{opSubscribeAfter, 2, 1, 1, subA}, // after a key held, on a
			{opRead, 2, 3},                    //
			{opRead, 0, 3},                    //
			{opRead, 1, 3},                    //
		},
	},
	{
		name:    "topics refused, kept and released",
		reaches: []string{"refused topic", "topic kept by a pin", "topic released", "frame of a released topic", "resume older"},
		opts:    []byte{0, 0, 0, 0, 0}, // Size 4, 1 shard, 2 topics, keys = sequence numbers, none permanent
		ops: [][]int{
			{opSubscribe, 1, subA},         // sub 0: a
			{opPublish, pubA},              // 1
			{opReserve, pubB, 0},           // 2: pins b
			{opPublish, pubC},              // refused: a has a subscriber, b a pin
			{opClose, 0},                   // a has no subscriber now
			{opRelease},                    //
			{opRelease},                    //
			{opRelease},                    // a released; b kept by its pin
			{opSubscribeAfter, 0, 1, subA}, // after key 0, on a new a
			{opRead, 0, 3},                 // reads 1, of the released a
			{opAbort, 0},                   // 2: unpins b
			{opRelease},                    //
			{opRelease},                    //
			{opRelease},                    // b released
			{opPublish, pubC},              // c alive
			{opRead, 0, 3},                 //
		},
	},
	{
		name: "a full table makes room, permanent topics aside",
		reaches: []string{"topic evicted", "permanent topic", "refused topic", "frame of a released topic",
			"resume older"},
		opts: []byte{1, 0, 0, 0, 1}, // Size 8, 1 shard, 2 topics, keys = sequence numbers, d permanent
		ops: [][]int{
			{opSubscribe, 1, subA},         // sub 0: a
			{opPublish, pubC},              // 1: a and c alive
			{opPublish, pubB},              // 2: b takes c's place (no subscriber)
			{opPublish, pubD},              // 3: d is permanent, not counted
			{opSubscribeAfter, 0, 1, subC}, // sub 1: after key 0 on c, which takes b's place
			{opRead, 1, 3},                 // 1, of the evicted c
			{opPublish, pubB},              // refused: a and c have subscribers
			{opRelease},                    //
			{opRelease},                    //
			{opRelease},                    // d stays
			{opSubscribe, 1, 3},            // sub 2: d
			{opPublish, pubD},              // 4
			{opRead, 2, 3},                 //
			{opRead, 0, 3},                 //
		},
	},
	{
		name:     "patterns: topics created later, misses, releases",
		patterns: true,
		reaches: []string{"topic named and matched", "frame via a pattern", "frame via a pattern of a topic created later",
			"pattern miss told", "pattern miss of a topic created later", "pattern miss of a topic released since",
			"close with a loss (pattern)", "frame of a topic released before the start (pattern)",
			"close: loss of a released topic not counted", "resume older"},
		opts: []byte{0, 0, 2, 0, 0}, // Size 4, 1 shard, 8 topics, keys = sequence numbers, none permanent
		ops: [][]int{
			{opPublish, ppAA},                 // 1: before the subscribers
			{opSubscribe, 1, psATail},         // sub 0: a.>
			{opSubscribe, 2, psAB, psAStar},   // sub 1: a.b, and a.* that matches it
			{opSubscribe, 1, psATail},         // sub 2: a.>
			{opPublish, ppAA},                 // 2
			{opPublish, ppAB},                 // 3
			{opPublish, ppABB},                // 4: a topic created after them
			{opRead, 0, 3},                    // 2, 3, 4
			{opRead, 1, 3},                    // 2, 3
			{opPublish, ppABB},                // 5
			{opPublish, ppAA},                 // 6
			{opPublish, ppAB},                 // 7
			{opBurst, pubAll, 0},              // 8 .. 11, broadcast: the ring holds 8 .. 11
			{opClose, 1},                      // sub 1 lost 6 of a.a and 7 of a.b, each counted once; sub 2 is now 1
			{opPublish, ppABB},                // 12
			{opRelease},                       //
			{opRelease},                       //
			{opRelease},                       // a.a, a.b, a.b.b released: no topic created since a.b.b
			{opRead, 0, 3},                    // 9 .. 11: it stops before a miss
			{opRead, 0, 3},                    // 12, told it lost 5 (a.b.b); 6 and 7 never (released)
			{opSubscribeAfter, 0, 1, psATail}, // sub 2: a.>, from the oldest held (9)
			{opRead, 2, 3},                    // 9 .. 12: 12 of a topic released before it, uncounted
			{opClose, 1},                      // it lost frames of a.a, a.b, a.b.b: released since, not counted
		},
	},
	{
		name:     "patterns come and go, shared, refused, skipped",
		patterns: true,
		reaches: []string{"pattern shared", "pattern gone", "pattern refused with a topic", "frame via two patterns",
			"skip (pattern)", "permanent topic", "topic evicted", "refused topic"},
		opts: []byte{1, 0, 0, 0, 1}, // Size 8, 1 shard, 2 topics, keys = sequence numbers, a.b permanent
		ops: [][]int{
			{opSubscribe, 1, psStar},                // sub 0: *
			{opSubscribe, 2, psStar, psAStar},       // sub 1: * (shared), a.*
			{opPublish, ppA},                        // 1: a created
			{opPublish, ppAA},                       // 2: a.a created: the table is full
			{opPublish, ppAB},                       // 3: a.b, permanent
			{opSubscribe, 2, psAStar, psBA},         // sub 2: a.*, b.a, which takes a's or a.a's place
			{opSubscribe, 3, psStarB, psAStar, psB}, // sub 3: *.b, a.*, b, which takes the other's
			{opSubscribe, 2, psATail, psAA},         // refused: b.a and b have subscribers; a.> given back
			{opPublish, ppAB},                       // 4: for sub 3 through two patterns
			{opRead, 3, 3},                          //
			{opSkip, 1, keyAboveAll, 2},             // sub 1 skips through 7
			{opPublish, ppAB},                       // 5: passed over by sub 1
			{opPublish, ppAA},                       // 6, on a new a.a: refused, the table is full
			{opRead, 1, 3},                          //
			{opRead, 2, 3},                          //
			{opClose, 0},                            // * still has sub 1
			{opClose, 0},                            // sub 1: * gone, a.* still has subs 2 and 3
			{opClose, 0},                            //
			{opClose, 0},                            // a.* gone
		},
	},
	{
		name:     "filters: groups shared, frames in flight, misses",
		patterns: true,
		filters:  true,
		reaches: []string{"filter group shared", "frame via a filter", "frame via a filter (every topic)",
			"filtered out", "broadcast to a filtered subscriber", "lap (filter)", "filter miss told",
			"filter miss from the start", "group created with a frame in flight",
			"frame in flight counted by a group created since", "close with a loss (filter)", "filter group gone"},
		opts: []byte{0, 0, 2, 0, 0, 1, 1}, // Size 4, 1 shard, 8 topics, keys = sequence numbers, none permanent, 4 filters, a Matcher
		ops: [][]int{
			{opSubscribe, 0, fX},        // sub 0: every topic, x
			{opSubscribe, 1, psA, fX},   // sub 1: a, x
			{opSubscribe, 1, psA, fX},   // sub 2: a, x: sub 1's group
			{opPublish, ppA, evX},       // 1: for all three
			{opPublish, ppA, evY},       // 2: turned away
			{opPublish, pubAll, evNone}, // 3: broadcast
			{opRead, 0, 3},              // 1, 3; 2 filtered out
			{opRead, 1, 3},              // 1, 3
			{opBurst, ppA, 0, evX},      // 4 .. 7
			{opRead, 2, 0},              // lapped at 1: 4, told it missed 1
			{opInFlight, ppB, ppA, evX, 0, 1, psA, fOdd, holeCommitted, evNone},
			// 8 on b holds back 9 on a, committed before sub 3 (a, odd)
			// subscribed: the sequencer counts 9 (odd) for its new group.
			{opBurst, ppA, 0, evX}, // 10 .. 13: sub 2 (at 5) falls behind
			{opClose, 2},           // sub 2 lost 5, 6, 7, 9
			{opClose, 1},           // sub 1: the group of a and x goes
			{opRead, 1, 3},         // sub 3, lapped: 11, 13, told it missed 9
		},
	},
	{
		name:     "filters: resumed before the group, refused, skipped",
		patterns: true,
		filters:  true,
		reaches: []string{"frame visible before its group", "frame via a filter (pattern)",
			"frame visible before its group, lost uncounted", "filter refused (too many)", "skip (filter)",
			"filter group shared", "filter group gone", "resume older"},
		opts: []byte{0, 0, 2, 0, 0, 0, 1}, // Size 4, 1 shard, 8 topics, keys = sequence numbers, none permanent, 2 filters, a Matcher
		ops: [][]int{
			{opPublish, ppAB, evX},                // 1, before any group
			{opPublish, ppAA, evX},                // 2
			{opSubscribe, 1, psAStar, fX},         // sub 0: a.*, x: a new group, after 1 and 2
			{opSubscribeAfter, 0, 1, psAStar, fX}, // sub 1: from the oldest (1), in sub 0's group
			{opRead, 1, 1},                        // 1, 2: visible before the group, uncounted
			{opPublish, ppAB, evX},                // 3: counted
			{opRead, 1, 3},                        // 3
			{opSubscribeAfter, 0, 1, psAA, fX},    // sub 2: a.a, x, from 1: a second group
			{opBurst, ppB, 0, evNone},             // 4 .. 7 on b
			{opRead, 2, 3},                        // lapped: 2 (for it, uncounted) lost, not told
			{opSubscribe, 1, psB, fY},             // refused: two groups alive
			{opSkip, 0, keyAboveAll, 0},           // sub 0 skips through 8
			{opPublish, ppAB, evXY},               // 8: passed over
			{opRead, 0, 3},                        // 3 and 8 passed over
			{opClose, 0},                          //
			{opClose, 0},                          // the group of a.* and x goes
		},
	},
	{
		name:     "filters: compiled in the background, and at once",
		patterns: true,
		filters:  true,
		reaches: []string{"frame evaluated with groups apart", "filters compiled in the background",
			"filters compiled at once", "group gone, still compiled", "frame via a filter (pattern)"},
		opts: []byte{2, 0, 2, 0, 0, 2, 1}, // Size 16, 1 shard, 8 topics, keys = sequence numbers, none permanent, default MaxFilters, a Matcher
		ops: slices.Concat([][]int{
			{opSubscribe, 1, psAStar, fX}, // sub 0: a.*, x: a group evaluated apart
			{opPublish, ppAB, evX},        // 1: through sub 0's own Matcher
			{opPause, pauseShort},         // not yet
			{opPublish, ppAB, evXY},       // 2: still apart
			{opPause, pause1ms},           // due: the live set compiled
			{opPublish, ppAA, evX},        // 3: the set's Matcher
			{opRead, 0, 3},                // 1, 2, 3
		}, manyGroups(33), [][]int{ // 32 groups apart, the 33rd compiles them all at once
			{opClose, 0},           // sub 0's group goes, still compiled
			{opPublish, ppAB, evX}, // 4: for nobody now
			{opPause, pause1s},     // the live set compiled, without it
			{opPublish, ppAA, evY}, // 5
			{opRead, 0, 3},         //
			{opPause, pause1s},     // nothing to compile
		}),
	},
	{
		name:    "filters refused without a Matcher, or with a topic",
		filters: true,
		reaches: []string{"filter refused (no Matcher)", "filter refused with a topic", "refused topic"},
		opts:    []byte{0, 0, 0, 0, 0, 0, 0}, // Size 4, 1 shard, 2 topics, keys = sequence numbers, none permanent, 2 filters, no Matcher
		ops: [][]int{
			{opSubscribe, 1, subA, fX},    // refused: no Matcher (a created all the same)
			{opSubscribe, 1, subA, fNone}, // sub 0: a
			{opSubscribe, 1, subB, fNone}, // sub 1: b
			{opSubscribe, 1, subC, fX},    // refused: c finds no room
			{opPublish, pubA, evX},        //
			{opRead, 0, 3},                //
		},
	},
}

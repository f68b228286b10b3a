package fanout

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzRing runs the model check of model_test.go on operations decoded from
// the fuzzer's bytes: one byte per choice the run makes (the options, then
// each operation's code and its choices; see the op constants and
// model.do), zeros once the bytes run out.
//
//	go test -run '^$' -fuzz '^FuzzRing$' -fuzztime 20000x ./pkg/fanout
func FuzzRing(f *testing.F) {
	for _, seed := range ringScripts {
		input := seed.build()
		reached := runModel(f, &fuzzBytes{b: input}, "seed corpus: "+seed.name, len(input))
		for _, what := range seed.reaches {
			if reached[what] == 0 {
				f.Fatalf("seed corpus: %s does not reach %q (the encoding changed?)", seed.name, what)
			}
		}
		f.Add(input)
	}
	// And a few runs of random choices.
	for i := range 4 {
		r := rand.New(rand.NewPCG(uint64(i), 0xf022))
		input := make([]byte, 400)
		for k := range input {
			input[k] = byte(r.Uint32())
		}
		f.Add(input)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		const maxInput = 1024 // a run's cost grows with its length squared
		if len(input) > maxInput {
			input = input[:maxInput]
		}
		runModel(t, &fuzzBytes{b: input}, "fuzz input", len(input))
	})
}

// ringScript is a FuzzRing input written by hand: options, then operations
// with their choices, and the cases (see coverage) it is meant to reach.
type ringScript struct {
	name    string
	reaches []string
	opts    []byte // choices: Size 4/8/16, Shards-1, MaxTopics 2/3/8, sparse keys, Permanent (see runModel)
	ops     [][]int
}

// build encodes the script: each operation's code is its first entry in
// opTable.
func (s ringScript) build() []byte {
	b := slices.Clone(s.opts)
	for _, op := range s.ops {
		b = append(b, byte(slices.Index(opTable, op[0])))
		for _, c := range op[1:] {
			b = append(b, byte(c))
		}
	}
	return b
}

// Topic choices: topicNames[i] for publishing, topicNames[1+i] for
// subscribing.
const (
	pubAll, pubA, pubB, pubC, pubD = 0, 1, 2, 3, 4
	subA, subB, subC               = 0, 1, 2
)

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
}

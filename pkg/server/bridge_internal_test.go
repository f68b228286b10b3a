package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// joinedBridge is a Bridge that has joined a stream and is never asked to
// publish or replay here: the tests below only look at resume plans.
type joinedBridge struct{ id natsbridge.Identity }

func (b joinedBridge) Publish(context.Context, natsbridge.Message) (uint64, error) { return 0, nil }
func (b joinedBridge) PublishBatch(context.Context, []natsbridge.Message) (int, error) {
	return 0, nil
}
func (b joinedBridge) FirstSeq(context.Context, natsbridge.Identity) (uint64, error) { return 1, nil }
func (b joinedBridge) Replay(context.Context, natsbridge.Identity, uint64, uint64, []string,
	func(natsbridge.Delivery) error) (uint64, error) {
	return 0, nil
}
func (b joinedBridge) Status() natsbridge.Status {
	return natsbridge.Status{State: natsbridge.StateReady, Identity: b.id}
}

// TestResumePlanOnASharedStream checks what a listener resuming with the id
// of sequence n is planned to get from the stream before the ring's frames,
// on an instance that joined the stream after sequence 45 and has consumed
// some of it, including while Deliver is between recording a sequence and
// making its frame visible.
func TestResumePlanOnASharedStream(t *testing.T) {
	t.Parallel()
	id := natsbridge.Identity{Stream: "S", Created: time.Unix(1_700_000_000, 0).UTC()}
	type want struct {
		from, to uint64
		replay   bool
	}
	tests := []struct {
		name      string
		delivered []uint64 // consumed and in the ring
		pending   uint64   // being delivered when the listener resumes (0: none)
		n         uint64   // the listener's last id
		want      want
	}{
		{"nothing consumed yet", nil, 0, 40, want{41, math.MaxUint64, true}},
		{"first event being delivered", nil, 46, 40, want{41, 46, true}},
		{"older than what was consumed", []uint64{46, 47}, 0, 40, want{41, 46, true}},
		{"older, the next event being delivered", []uint64{46, 47}, 48, 40, want{41, 46, true}},
		{"up to date", []uint64{46, 47}, 0, 47, want{}},
		{"up to date, the next event being delivered", []uint64{46, 47}, 48, 47, want{}},
		{"ahead of this instance", []uint64{46, 47}, 0, 50, want{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ring := fanout.New(fanout.Options{Size: 64})
			defer ring.Close()
			cfg := DefaultConfig()
			cfg.Addr = "127.0.0.1:0"
			s, err := New(&cfg, Deps{Ring: ring, Bridge: joinedBridge{id: id}})
			if err != nil {
				t.Fatal(err)
			}
			deliver := func(seq uint64) {
				s.Deliver(natsbridge.Delivery{Identity: id, Stored: time.Now(), Topic: DefaultTopic, Data: []byte(`{}`), Seq: seq})
			}
			for _, seq := range tc.delivered {
				deliver(seq)
			}
			var plan resumePlan
			resume := func() {
				lastID := s.adoptIdentity().space.appendID(nil, tc.n)
				sub, p, err := s.subscribe(lastID, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				_ = sub.Close()
				plan = p
			}
			if tc.pending == 0 {
				resume()
			} else {
				// The listener resumes while Deliver has recorded the
				// pending sequence and not yet made its frame visible.
				s.testHook = func(where string) {
					if where == "deliver" {
						resume()
					}
				}
				deliver(tc.pending)
			}
			var got want
			if r := plan.replay; r != nil {
				got = want{r.from, r.to, true}
			}
			if got != tc.want {
				t.Errorf("replay %+v, want %+v", got, tc.want)
			}
		})
	}
}
